"""Oxford Flowers102 as CoOp reads it: ``oxford_flowers/jpg`` + ``split_zhou_OxfordFlowers.json`` (102 classes).

Class names come from the split file (CoOp wrote them from ``cat_to_name.json``).
"""

from __future__ import annotations

from pathlib import Path

from ..dataset import ClassificationDataset
from .base import BenchmarkInfo, read_zhou_dataset
from .templates import COOP_TEMPLATES


def load(root: Path) -> ClassificationDataset:
    return read_zhou_dataset(INFO, root)


INFO = BenchmarkInfo(
    name="oxford_flowers", title="OxfordFlowers", folder="oxford_flowers", image_dir="jpg",
    split_file="split_zhou_OxfordFlowers.json", num_classes=102,
    classnames="split file names (from cat_to_name.json)",
    templates=(COOP_TEMPLATES["OxfordFlowers"],), reader=load,
    split_url="https://drive.google.com/file/d/1Pp0sRXzZFZq15zVOzKjKBu4A9i01nozT/view?usp=sharing",
)
