"""Measures of the runs that saved their adapted state: per-tensor parameter drift (frozen -> adapted backbone
weights, LoRA merged) and per-layer linear CKA of the image tower between the frozen and the adapted model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from ..analysis import image_layer_activations, layerwise_cka, parameter_drift

DRIFT_KEYS = ("method", "dataset", "seed", "key")
DRIFT_COLUMNS = tuple(parameter_drift({"x": torch.zeros(1)}, {"x": torch.zeros(1)}).columns)  # of a tensor


def run_drift(state) -> pd.DataFrame:
    """Per-tensor drift (squared L2, relative L2, RMS, ...) of one saved run: every backbone weight the adaptation
    changed, as adapted against as frozen. ``state``: a state file or a loaded ``AdaptedState``."""
    from ..methods.state import AdaptedState, load_adapted_state

    if not isinstance(state, AdaptedState):
        state = load_adapted_state(state)
    if not state.initial:  # only new tensors (prompts, adapters): no backbone weight has a frozen value to leave
        return empty_drift()[list(DRIFT_COLUMNS)]
    return parameter_drift(state.initial, state.final)


def row_drift(row) -> pd.DataFrame:
    """:func:`run_drift` of one row of the results table, with its method label, dataset, seed and key."""
    return run_drift(row["state_file"]).assign(method=row["method_label"], dataset=row["dataset"], seed=row["seed"],
                                               key=row["key"])


def drift_tables(runs: pd.DataFrame) -> pd.DataFrame:
    """Per-tensor drift of every run of ``runs`` (rows of the results table) that saved its state, in the table's
    order, with the run's method label, dataset, seed and key."""
    rows = runs[runs["state_file"].notna()] if "state_file" in runs.columns else runs.iloc[0:0]
    return concat_drift(row_drift(r) for _, r in rows.iterrows())


def concat_drift(frames) -> pd.DataFrame:
    """One drift table of the runs' tables (runs that changed no backbone weight add no rows)."""
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else empty_drift()


def empty_drift() -> pd.DataFrame:
    """The drift table of no run: its columns, no rows."""
    return pd.DataFrame(columns=[*DRIFT_COLUMNS, *DRIFT_KEYS])


def has_visual_prompt(model) -> bool:
    return any(part.is_visual_prompt for part in model.parts)


def frozen_activations(state, images: torch.Tensor) -> list[torch.Tensor]:
    """Per-layer image-tower activations of the frozen backbone a saved run adapted (loaded afresh), on ``images``."""
    from ..backbones import load_backbone

    spec = state.backbone
    backbone = load_backbone(spec["name"], spec.get("pretrained"), quick_gelu=spec.get("quick_gelu"), seed=0)
    return image_layer_activations(backbone.model, images)


@torch.no_grad()
def cka_profile(state, images: torch.Tensor, frozen: list[torch.Tensor] | None = None) -> list[float]:
    """Per-layer linear CKA of the image tower's CLS token between the frozen and the adapted model of a saved
    run (rebuilt from its state) on a fixed probe set of ``images``.

    The frozen side is the frozen backbone's own forward pass: ``frozen`` (:func:`frozen_activations`, the same for
    every run of a backbone), else computed here. The rebuilt model's ``frozen_view`` computes the same function,
    but LoRA's wrapped attention computes it with another kernel (equal up to float rounding), so the backbone's
    own pass is the reference."""
    from ..methods.state import AdaptedState, load_adapted_state, rebuild_model

    if not isinstance(state, AdaptedState):
        state = load_adapted_state(state)
    model = rebuild_model(state)
    if has_visual_prompt(model):  # visual prompts act inside encode_image, which the hooks of CLIP's forward miss
        raise ValueError("CKA of visual-prompt methods needs their prompts in the forward pass; not supported")
    if frozen is None:
        frozen = frozen_activations(state, images)
    return layerwise_cka(frozen, image_layer_activations(model.clip, images))


def probe_images(backbone, dataset: str, n: int = 256, data_root: str | None = None) -> torch.Tensor:
    """The first ``n`` test images of ``dataset`` with the backbone's test transform: the CKA probe set."""
    from ..data.protocol import sample_few_shot
    from ..data.registry import get_dataset
    from ..data.transforms import TransformConfig, image_batches

    task = sample_few_shot(get_dataset(dataset, data_root), 1, 1)
    batches = image_batches(task, task.test[:n], TransformConfig.for_backbone(backbone), False, n)
    return torch.cat([x for x, _ in batches])


def cka_runs(runs: pd.DataFrame) -> tuple[str | None, pd.DataFrame]:
    """(probe task, the runs CKA is measured on): the first task, alphabetically, of the runs that saved their
    state, and there one run per method label (the first in the table's order)."""
    saved = runs[runs["state_file"].notna()] if "state_file" in runs.columns else runs.iloc[0:0]
    if saved.empty:
        return None, saved
    probe = sorted(saved["dataset"].unique())[0]
    return probe, saved[saved["dataset"] == probe].drop_duplicates("method_label")


def cka_row(row, images: torch.Tensor, probe: str, frozen: dict | None = None) -> dict:
    """One row of the CKA table: method, dataset, key, images, note (why no values), then one column per block.
    ``frozen``: a cache of the frozen backbones' activations on ``images`` (by backbone), filled as needed."""
    import json

    from ..methods.state import load_adapted_state

    out = {"method": row["method_label"], "dataset": probe, "key": row["key"], "images": len(images), "note": ""}
    state = load_adapted_state(Path(row["state_file"]))
    frozen = {} if frozen is None else frozen
    backbone = json.dumps(state.backbone, sort_keys=True)
    try:
        if backbone not in frozen:
            frozen[backbone] = frozen_activations(state, images)
        values = cka_profile(state, images, frozen[backbone])
    except ValueError as err:
        out["note"] = str(err)
        values = []
    out.update({str(i): v for i, v in enumerate(values)})
    return out
