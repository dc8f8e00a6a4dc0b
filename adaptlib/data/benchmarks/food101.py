"""Food-101 as CoOp reads it: ``food-101/images`` + ``split_zhou_Food101.json`` (101 classes).

Class names are the folder names of the split file (``apple_pie``), prompted with spaces (``apple pie``).
"""

from __future__ import annotations

from pathlib import Path

from ..dataset import ClassificationDataset
from .base import BenchmarkInfo, read_zhou_dataset
from .templates import COOP_TEMPLATES


def load(root: Path) -> ClassificationDataset:
    return read_zhou_dataset(INFO, root)


INFO = BenchmarkInfo(
    name="food101", title="Food101", folder="food-101", image_dir="images",
    split_file="split_zhou_Food101.json", num_classes=101,
    classnames="split file names (folder names), '_' -> ' '",
    templates=(COOP_TEMPLATES["Food101"],), reader=load,
    split_url="https://drive.google.com/file/d/1QK0tGi096I0Ba6kggatX1ee6dJFIcEJl/view?usp=sharing",
)
