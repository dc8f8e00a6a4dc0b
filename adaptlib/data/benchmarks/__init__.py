"""Readers for the 11 datasets of the few-shot CLIP protocol and the four ImageNet variants (CoOp/Dassl layouts).

``BENCHMARKS`` describes each one (folder, split file, class-name convention, CoOp template, target-only flag,
source dataset); ``load_benchmark(name, root)`` reads it from DATA_ROOT. Nothing is downloaded: see data/DATASETS.md.
The nine datasets with CoOp's split file are records of one table (``split_file``), as are the four ImageNet
variants (``imagenet``); ImageNet and FGVC-Aircraft have readers of their own.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...utils.names import unknown_name_error
from ..dataset import ClassificationDataset
from . import fgvc_aircraft, imagenet
from .base import (BenchmarkInfo, DatasetNotFoundError, SplitFileError, TargetOnlyDataset, TargetOnlySplitError,
                   data_root)
from .split_file import SPLIT_FILE_BENCHMARKS
from .templates import COOP_TEMPLATES, IMAGENET_TEMPLATES

_INFOS = {info.name: info for info in (imagenet.INFO, fgvc_aircraft.INFO,
                                       *(r.info for r in SPLIT_FILE_BENCHMARKS + imagenet.VARIANTS))}
# the protocol's order (CoOp's table), then the variants
BENCHMARKS: dict[str, BenchmarkInfo] = {name: _INFOS[name] for name in (
    "imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101", "fgvc_aircraft", "sun397",
    "dtd", "eurosat", "ucf101", "imagenet_v2", "imagenet_sketch", "imagenet_a", "imagenet_r")}
FEW_SHOT_BENCHMARKS: tuple[str, ...] = tuple(n for n, i in BENCHMARKS.items() if not i.target_only)
IMAGENET_VARIANTS: tuple[str, ...] = tuple(n for n, i in BENCHMARKS.items() if i.target_only)

__all__ = ["BENCHMARKS", "FEW_SHOT_BENCHMARKS", "IMAGENET_VARIANTS", "BenchmarkInfo", "COOP_TEMPLATES",
           "IMAGENET_TEMPLATES", "DatasetNotFoundError", "SplitFileError", "TargetOnlyDataset",
           "TargetOnlySplitError", "benchmark_info", "load_benchmark"]


def benchmark_info(name: str) -> BenchmarkInfo:
    """The description of ``name``; an unknown name is an error suggesting the nearest one."""
    if name not in BENCHMARKS:
        raise unknown_name_error("benchmark dataset", name, BENCHMARKS)
    return BENCHMARKS[name]


def load_benchmark(name: str, root: str | os.PathLike) -> ClassificationDataset:
    """Read benchmark ``name`` from the data root ``root`` (the folder holding ``caltech-101/``, ``imagenet/``...)."""
    info = benchmark_info(name)
    return info.reader(data_root(Path(root)))
