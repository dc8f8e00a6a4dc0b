"""Stanford Cars as CoOp reads it: ``stanford_cars/`` + ``split_zhou_StanfordCars.json`` (196 classes).

Image paths in the split file start at the dataset folder (``cars_train/00001.jpg``, ``cars_test/...``); class
names put the year first (``2012 Tesla Model S Sedan``), as CoOp wrote them.
"""

from __future__ import annotations

from pathlib import Path

from ..dataset import ClassificationDataset
from .base import BenchmarkInfo, read_zhou_dataset
from .templates import COOP_TEMPLATES


def load(root: Path) -> ClassificationDataset:
    return read_zhou_dataset(INFO, root)


INFO = BenchmarkInfo(
    name="stanford_cars", title="StanfordCars", folder="stanford_cars", image_dir="",
    split_file="split_zhou_StanfordCars.json", num_classes=196,
    classnames="split file names (devkit names with the year moved first)",
    templates=(COOP_TEMPLATES["StanfordCars"],), reader=load,
    split_url="https://drive.google.com/file/d/1ObCFbaAgVu0I-k_Au-gIUcefirdAuizT/view?usp=sharing",
)
