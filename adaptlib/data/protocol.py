"""The few-shot protocol of the literature (CoOp / Dassl), shared by every dataset.

K shots per class are sampled without replacement from train with a seed; a few-shot val of min(K, 4) per class
is sampled after train with the same generator; the full test split is used for evaluation. Base-to-new sorts
the classes, takes the first ceil(n/2) as base and the rest as new, and relabels each part from 0.
The sampled subset is cached on disk per (dataset, K, seed), so every method sees exactly the same images.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from ..utils.atomic import save_json_cache
from ..utils.names import unknown_name_error
from ..utils.paths import cache_dir
from .dataset import ClassificationDataset, Sample

SUBSETS = ("all", "base", "new")


class NotEnoughShotsError(ValueError):
    """A class has fewer images than the requested number of shots."""


@dataclass
class FewShotTask:
    """What one run trains and evaluates on: classes, few-shot train/val, full test."""

    dataset: ClassificationDataset
    classnames: list[str]
    train: list[Sample]
    val: list[Sample]
    test: list[Sample]
    shots: int
    seed: int
    subset: str = "all"

    @property
    def num_classes(self) -> int:
        return len(self.classnames)

    @property
    def templates(self) -> list[str]:
        return self.dataset.templates

    def load_image(self, sample: Sample):
        return self.dataset.load_image(sample)


def _by_label(samples: list[Sample]) -> dict[int, list[Sample]]:
    groups: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[s.label].append(s)
    return groups


def _sample_per_class(samples: list[Sample], k: int, rng: random.Random, dataset: str, split: str,
                      classnames: list[str], folders: list[str | None] | None = None) -> list[Sample]:
    """``k`` samples of each class; ``folders`` (folder datasets) says where to add images to a class that has
    too few."""
    groups = _by_label(samples)
    out: list[Sample] = []
    for label in range(len(classnames)):
        items = groups.get(label, [])
        if len(items) < k:
            folder = folders[label] if folders and label < len(folders) else None
            more = f", or add images to {folder}" if folder else ""
            raise NotEnoughShotsError(
                f"class {classnames[label]!r} (label {label}) of dataset {dataset!r} has {len(items)} {split} "
                f"images, fewer than the {k} requested: lower --shots to at most {len(items)}{more}"
            )
        out.extend(rng.sample(items, k))
    return out


def few_shot_path(dataset: ClassificationDataset, shots: int, seed: int) -> Path:
    safe = dataset.name.replace("/", "_").replace("@", "_").replace(",", "_").replace("=", "-").replace(":", "_")
    return cache_dir("fewshot", f"{safe[-80:]}-{dataset.fingerprint[:12]}", f"shots_{shots}-seed_{seed}.json")


def sample_few_shot(dataset: ClassificationDataset, shots: int, seed: int, use_cache: bool = True) -> FewShotTask:
    """K shots per class from train and min(K, 4) per class from val (sampled after train), full test.

    ``shots <= 0`` means the full train and val splits (zero-shot evaluation and the 'all data' setting).
    """
    if dataset.target_only:
        raise ValueError(f"dataset {dataset.name!r} is target-only (test split only): train on its source "
                         f"dataset and evaluate on it with --eval-datasets")
    train_all, val_all = dataset.split("train"), dataset.split("val")
    if shots <= 0:
        return FewShotTask(dataset, list(dataset.classnames), train_all, val_all, dataset.split("test"), shots, seed)
    path = few_shot_path(dataset, shots, seed)
    if use_cache and path.is_file():
        cached = _read_cached(path, dataset)
        if cached is not None:
            train, val = cached
            return FewShotTask(dataset, list(dataset.classnames), train, val, dataset.split("test"), shots, seed)
    rng = random.Random(seed)
    folders = dataset.info.get("class_folders") or {}  # folder datasets: where each class's images are
    train = _sample_per_class(train_all, shots, rng, dataset.name, "train", dataset.classnames, folders.get("train"))
    val = _sample_per_class(val_all, min(shots, 4), rng, dataset.name, "val", dataset.classnames, folders.get("val"))
    if use_cache:  # a cache that cannot be written is a warning: the subset is the same without it
        save_json_cache(path, {"dataset": dataset.name, "fingerprint": dataset.fingerprint, "shots": shots,
                               "seed": seed, "train": [s.key for s in train], "val": [s.key for s in val]},
                        "few-shot subset cache")
    return FewShotTask(dataset, list(dataset.classnames), train, val, dataset.split("test"), shots, seed)


def _read_cached(path: Path, dataset: ClassificationDataset) -> tuple[list[Sample], list[Sample]] | None:
    """The cached subset, or None (and the file is resampled) when it is unreadable or names unknown images."""
    try:
        blob = json.loads(path.read_text())
        index = {s.key: s for split in ("train", "val") for s in dataset.split(split)}
        return [index[k] for k in blob["train"]], [index[k] for k in blob["val"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def base_new_classes(num_classes: int) -> tuple[list[int], list[int]]:
    """Sorted labels split as CoOp does: base = first ceil(n/2), new = the rest."""
    m = math.ceil(num_classes / 2)
    labels = list(range(num_classes))
    return labels[:m], labels[m:]


def subsample_classes(task: FewShotTask, subset: str) -> FewShotTask:
    """Restrict a task to its base or new classes, relabelled from 0 (``all`` returns it unchanged)."""
    if subset not in SUBSETS:
        raise unknown_name_error("class subset", subset, SUBSETS)
    if subset == "all":
        return task
    base, new = base_new_classes(task.num_classes)
    keep = base if subset == "base" else new
    relabel = {old: new_label for new_label, old in enumerate(keep)}

    def convert(samples: list[Sample]) -> list[Sample]:
        return [replace(s, label=relabel[s.label]) for s in samples if s.label in relabel]

    return replace(task, classnames=[task.classnames[i] for i in keep], train=convert(task.train),
                   val=convert(task.val), test=convert(task.test), subset=subset)
