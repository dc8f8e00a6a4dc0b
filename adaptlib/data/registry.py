"""One entry point for every dataset: embedded tasks by name, real benchmarks by name and root folder."""

from __future__ import annotations

import os
from pathlib import Path

from .dataset import ClassificationDataset


def embedded_names() -> list[str]:
    from .embedded import TASKS

    return list(TASKS)


def benchmark_names() -> list[str]:
    try:
        from .benchmarks import BENCHMARKS
    except ImportError:  # readers not installed in this checkout
        return []
    return list(BENCHMARKS)


def dataset_names() -> list[str]:
    return embedded_names() + benchmark_names()


def is_embedded(name: str) -> bool:
    return name.split("@")[0] in embedded_names()


def get_dataset(name: str, root: str | os.PathLike | None = None) -> ClassificationDataset:
    """Load ``name``: an embedded task (``shape``, ``shape@inter=0.5``) or a benchmark under ``root``
    (``$ADAPTLIB_DATA_ROOT`` when not given)."""
    if is_embedded(name):
        from .embedded import load_embedded_task

        return load_embedded_task(name)
    if name in benchmark_names():
        from .benchmarks import load_benchmark

        root = root or os.environ.get("ADAPTLIB_DATA_ROOT")
        if not root:
            raise FileNotFoundError(f"dataset {name!r} is a real benchmark: pass --data-root DIR (or set "
                                    f"ADAPTLIB_DATA_ROOT); data/DATASETS.md says how to get it")
        return load_benchmark(name, Path(root))
    from ..utils.names import unknown_name_error

    raise unknown_name_error("dataset", name, dataset_names())
