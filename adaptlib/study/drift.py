"""The parameter and representation drift question (CLIPFit).

Claims tested:
1. CLIPFit beats zero-shot CLIP in base-to-new (harmonic mean of base and new accuracy);
2. among CLIPFit's text FFN biases, the low-level (early) layers change most;
3. among the image LayerNorms, the first one changes most;
4. the text-feature regulariser keeps the class text features close to the frozen ones (drift falls as its
   weight grows).

The per-tensor drift and the per-layer CKA of the saved runs come from the measures stage
(``adaptlib.measures.drift``: tables ``drift`` and ``cka``); this module reads them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ..analysis import drift_by_layer


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
