"""One entry point for every dataset: embedded tasks by name, real benchmarks by name and root folder, your own
images as ``folder:PATH`` (``adaptlib/data/folder.py``)."""

from __future__ import annotations

import os
from pathlib import Path

from ..utils.names import unknown_name_error
from .benchmarks import BENCHMARKS, load_benchmark
from .dataset import ClassificationDataset
from .embedded import TASKS, load_embedded_task
from .embedded.tasks import FAR_TASKS
from .folder import check_folder_name, is_folder_name, load_folder


def embedded_names() -> list[str]:
    return list(TASKS)


def benchmark_names() -> list[str]:
    return list(BENCHMARKS)


def dataset_names() -> list[str]:
    return embedded_names() + benchmark_names()


def is_embedded(name: str) -> bool:
    return name.split("@")[0] in embedded_names()


def is_folder_dataset(name: str) -> bool:
    """Whether ``name`` is ``folder:PATH``: a dataset of the user's own images, needing no data root."""
    return is_folder_name(name)


def check_folder_dataset(name: str) -> None:
    """``folder:PATH`` names an existing folder or split file (a ``ValueError`` naming it otherwise); nothing is
    read, so a run or profile can check its dataset names before anything loads."""
    check_folder_name(name)


def dataset_group(name: str) -> str:
    """'far' for the embedded world's far and out-of-domain tasks (any dial setting of them), else 'main'."""
    return "far" if is_embedded(name) and name.split("@")[0] in FAR_TASKS else "main"


def dataset_description(name: str) -> str:
    """What a task is, in a line (the embedded tasks'; empty for others)."""
    return TASKS[name.split("@")[0]].description if is_embedded(name) else ""


def get_dataset(name: str, root: str | os.PathLike | None = None) -> ClassificationDataset:
    """Load ``name``: an embedded task (``shape``, ``shape@inter=0.5``), your own images (``folder:PATH``, no root
    needed) or a benchmark under ``root`` (``$ADAPTLIB_DATA_ROOT`` when not given)."""
    if is_folder_name(name):
        return load_folder(name)
    if is_embedded(name):
        return load_embedded_task(name)
    if name in benchmark_names():
        root = root or os.environ.get("ADAPTLIB_DATA_ROOT")
        if not root:
            raise FileNotFoundError(f"dataset {name!r} is a real benchmark: pass --data-root DIR (or set "
                                    f"ADAPTLIB_DATA_ROOT); data/DATASETS.md says how to get it")
        return load_benchmark(name, Path(root))
    raise unknown_name_error("dataset", name, dataset_names())
