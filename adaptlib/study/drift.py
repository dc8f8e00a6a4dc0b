"""The parameter and representation drift question (CLIPFit).

Claims tested:
1. CLIPFit beats zero-shot CLIP in base-to-new (harmonic mean of base and new accuracy);
2. among CLIPFit's text FFN biases, the low-level (early) layers change most;
3. among the image LayerNorms, the first one changes most;
4. the text-feature regulariser keeps the class text features close to the frozen ones (drift falls as its
   weight grows).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from ..analysis import drift_by_layer, layerwise_cka, parameter_drift


def load_state(path: str | Path) -> tuple[dict, dict]:
    """(initial, final) backbone tensors of a saved run, named as in open_clip; LoRA runs give their merged
    in-projection weights as 'final' and the frozen backbone's as 'initial'."""
    from safetensors.torch import load_file

    state = load_file(str(path))
    initial, final = {}, {}
    for key, value in state.items():
        kind, _, name = key.partition("/")
        if not name.startswith("clip."):
            continue
        name = name.removeprefix("clip.").replace(".attn.attn.", ".attn.")
        if ".lora_" in name:
            continue
        if kind == "initial":
            initial[name] = value
        elif kind == "final":
            final[name] = value
    merged = {k.partition("/")[2]: v for k, v in state.items() if k.startswith("merged/")}
    return initial, {**final, **merged}


def run_drift(path: str | Path, backbone=None) -> pd.DataFrame:
    """Per-tensor drift (squared L2, relative L2, RMS) of one saved run against the frozen backbone."""
    initial, final = load_state(path)
    missing = [k for k in final if k not in initial]
    if missing:
        if backbone is None:
            raise ValueError(f"{path} holds merged weights {missing[:2]}...: pass the frozen backbone")
        frozen = dict(backbone.model.state_dict())
        initial.update({k: frozen[k] for k in missing})
    return parameter_drift(initial, final)


def drift_tables(df: pd.DataFrame, backbone=None) -> pd.DataFrame:
    """Per-tensor drift of every run that saved its state, with method and dataset columns."""
    rows = df[df["state_file"].notna()] if "state_file" in df.columns else df.iloc[0:0]
    frames = []
    for _, r in rows.iterrows():
        d = run_drift(r["state_file"], backbone)
        frames.append(d.assign(method=r["method_label"], dataset=r["dataset"], seed=r["seed"]))
    if not frames:
        raise ValueError("no run saved its state (profile group 'drift' with save_state: true)")
    return pd.concat(frames, ignore_index=True)


def layer_profile(drift: pd.DataFrame, method: str, tower: str, module: str | None = None,
                  measure: str = "rel_l2") -> pd.DataFrame:
    """Mean over tasks of the per-layer drift of ``method`` in ``tower`` (optionally one module kind)."""
    sel = drift[(drift["method"] == method) & (drift["tower"] == tower)]
    if module is not None:
        sel = sel[sel["module"].str.startswith(module)]
    per_task = []
    for dataset, g in sel.groupby("dataset"):
        layers = drift_by_layer(g)
        per_task.append(layers.assign(dataset=dataset))
    if not per_task:
        return pd.DataFrame()
    table = pd.concat(per_task)
    return table.groupby("layer")[measure].agg(["mean", "std"]).reset_index()


def early_layers_change_most(profile: pd.DataFrame) -> dict:
    """Spearman correlation of drift with depth; the claim holds when drift falls with depth (rho < 0) and the
    first third of the layers drifts more than the last third."""
    blocks = profile[profile["layer"] >= 0].sort_values("layer")
    rho = float(spearmanr(blocks["layer"], blocks["mean"]).statistic)
    third = max(1, len(blocks) // 3)
    first, last = blocks["mean"].iloc[:third].mean(), blocks["mean"].iloc[-third:].mean()
    return {"spearman_rho_with_depth": rho, "first_third": float(first), "last_third": float(last),
            "supported": bool(rho < 0 and first > last)}


def first_layernorm_changes_most(drift: pd.DataFrame, method: str = "clipfit", measure: str = "rel_l2") -> dict:
    """Which image LayerNorm (ln_pre, ln_1/ln_2 of each block, ln_post) drifts most, averaged over tasks."""
    sel = drift[(drift["method"] == method) & (drift["tower"] == "image") & drift["module"].str.startswith("ln")]
    per_module = sel.groupby(["layer", "module"])[measure].mean().sort_values(ascending=False)
    top_layer, top_module = per_module.index[0]
    first = per_module.index.min()
    return {"most_changed": f"layer {top_layer} {top_module}", "first": f"layer {first[0]} {first[1]}",
            "ranking": [f"{layer}:{module}" for layer, module in per_module.index[:5]],
            "supported": bool((top_layer, top_module) == first)}


@torch.no_grad()
def cka_profile(state_path: str | Path, spec: dict, images: torch.Tensor) -> list[float]:
    """Per-layer linear CKA of the image tower's CLS token between the frozen and the adapted model of a saved
    run (rebuilt from its config and trained parameters) on a fixed probe set of images."""
    from safetensors.torch import load_file

    from ..analysis import image_layer_activations
    from ..backbones import load_backbone
    from ..methods import build_model
    from ..runs.run import recipe_for
    from ..runs.spec import RunSpec

    run = RunSpec.from_dict(spec)
    backbone = load_backbone(run.backbone, run.pretrained, quick_gelu=run.quick_gelu)
    frozen = load_backbone(run.backbone, run.pretrained, quick_gelu=run.quick_gelu)
    model = build_model(backbone, ["a", "b"], ["{}"], recipe_for(run), run.setting, run.dataset,
                        run.part_overrides())
    state = load_file(str(state_path))
    params = dict(model.named_parameters())
    for key, value in state.items():
        kind, _, name = key.partition("/")
        if kind == "final" and name in params and params[name].shape == value.shape:
            params[name].data.copy_(value)
    prompt = model.visual_prompt
    if prompt is not None:  # visual prompts act inside encode_image, which the hooks of CLIP's forward miss
        raise ValueError("CKA of visual-prompt methods needs their prompts in the forward pass; not supported")
    acts_a = image_layer_activations(frozen.model, images)
    acts_b = image_layer_activations(model.clip, images)
    return layerwise_cka(acts_a, acts_b)


def regulariser_table(df: pd.DataFrame, prefix: str = "clipfit@lambda=") -> pd.DataFrame:
    """Per regulariser weight: text-feature drift, base, new and HM (means over tasks, %)."""
    rows = df[df["method_label"].astype(str).str.startswith(prefix) & (df["setting"] == "base_to_new")]
    if rows.empty:
        raise ValueError(f"no runs labelled {prefix}<weight> in the results")
    rows = rows.assign(weight=rows["method_label"].str.removeprefix(prefix).astype(float))
    g = rows.groupby("weight")
    table = pd.DataFrame({
        "text_feature_drift": g["text_feature_drift"].mean(),
        "base": 100 * g["base_accuracy"].mean(), "new": 100 * g["new_accuracy"].mean()})
    table["hm"] = 2 * table["base"] * table["new"] / (table["base"] + table["new"])
    return table.sort_index()


def regulariser_claim(table: pd.DataFrame) -> dict:
    rho = float(spearmanr(table.index, table["text_feature_drift"]).statistic) if len(table) > 2 else \
        float(np.sign(table["text_feature_drift"].iloc[-1] - table["text_feature_drift"].iloc[0]))
    return {"spearman_rho_weight_vs_drift": rho, "supported": bool(rho < 0)}
