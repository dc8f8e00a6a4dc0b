"""UCF101 middle frames as CoOp reads them: ``ucf101/UCF-101-midframes`` + ``split_zhou_UCF101.json`` (101 classes).

Class names come from the split file (``Apply_Eye_Makeup``: CoOp split the CamelCase action names), prompted with
spaces (``Apply Eye Makeup``).
"""

from __future__ import annotations

from pathlib import Path

from ..dataset import ClassificationDataset
from .base import BenchmarkInfo, read_zhou_dataset
from .templates import COOP_TEMPLATES


def load(root: Path) -> ClassificationDataset:
    return read_zhou_dataset(INFO, root)


INFO = BenchmarkInfo(
    name="ucf101", title="UCF101", folder="ucf101", image_dir="UCF-101-midframes",
    split_file="split_zhou_UCF101.json", num_classes=101,
    classnames="split file names (action words joined by '_'), '_' -> ' '",
    templates=(COOP_TEMPLATES["UCF101"],), reader=load,
    split_url="https://drive.google.com/file/d/1I0S0q91hJfsV9Gf4xDIjgDq4AqBNJb1y/view?usp=sharing",
)
