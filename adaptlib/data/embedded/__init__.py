"""The embedded world: a procedural image-caption world, its pretraining corpus and its downstream tasks."""

from __future__ import annotations

import numpy as np

from ...utils.atomic import remove_damaged, save_cache
from ...utils.paths import cache_dir
from ..dataset import SPLITS, ArrayImageLoader, ClassificationDataset, Sample
from .tasks import DIAL_ALIASES, TASKS, Dials, TaskSpec, generate_split, parse_task_name

__all__ = ["TASKS", "Dials", "TaskSpec", "DIAL_ALIASES", "load_embedded_task", "parse_task_name", "task_arrays"]


def task_arrays(spec: TaskSpec, use_cache: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Images and labels of every split, generated once and cached under ``data/cache/embedded``."""
    path = cache_dir("embedded", f"{spec.name.split('@')[0]}-{spec.key()}.npz")
    if use_cache and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                return {s: (z[f"{s}_images"], z[f"{s}_labels"]) for s in SPLITS}
        except Exception:  # noqa: BLE001 - truncated (BadZipFile, EOFError, zlib.error), garbage, wrong content
            remove_damaged(path)  # a broken cache file is regenerated, never used
    out = {s: generate_split(spec, s) for s in SPLITS}
    if use_cache:
        arrays = {f"{s}_{part}": a for s, (x, y) in out.items() for part, a in (("images", x), ("labels", y))}

        def save(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

        save_cache(path, save, "embedded-task cache")  # cannot be written: a warning, the arrays stay in memory
    return out


def load_embedded_task(name: str, use_cache: bool = True) -> ClassificationDataset:
    """An embedded task (optionally with dials: ``shape@inter=0.5``) behind the common dataset interface."""
    spec = parse_task_name(name)
    arrays = task_arrays(spec, use_cache)
    splits = {
        split: [Sample(f"{split}/{i}", int(y), spec.classes[int(y)]) for i, y in enumerate(labels)]
        for split, (_, labels) in arrays.items()
    }
    return ClassificationDataset(
        name=spec.name,
        classnames=list(spec.classes),
        templates=list(spec.templates),
        splits=splits,
        loader=ArrayImageLoader({s: x for s, (x, _) in arrays.items()}),
        fingerprint=f"embedded-{spec.key()}",
        info={"kind": spec.kind, "dials": spec.dials, "description": spec.description, "world": "embedded",
              "arrays": {s: x for s, (x, _) in arrays.items()}},
    )
