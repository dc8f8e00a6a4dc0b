"""Caltech101 as CoOp reads it: ``caltech-101/101_ObjectCategories`` + ``split_zhou_Caltech101.json`` (100 classes).

CoOp drops ``BACKGROUND_Google`` and ``Faces_easy`` and renames four folders (``NEW_CNAMES``); its split file already
holds the renamed names, and a split that still has a dropped class is refused.
"""

from __future__ import annotations

from pathlib import Path

from ..dataset import ClassificationDataset
from .base import BenchmarkInfo, read_zhou_dataset
from .templates import COOP_TEMPLATES

IGNORED = ("BACKGROUND_Google", "Faces_easy")
NEW_CNAMES = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}


def load(root: Path) -> ClassificationDataset:
    return read_zhou_dataset(INFO, root, renames=NEW_CNAMES, dropped=IGNORED)


INFO = BenchmarkInfo(
    name="caltech101", title="Caltech101", folder="caltech-101", image_dir="101_ObjectCategories",
    split_file="split_zhou_Caltech101.json", num_classes=100,
    classnames="split file names (folder names; airplanes/Faces/Leopards/Motorbikes renamed to airplane/face/"
               "leopard/motorbike; BACKGROUND_Google and Faces_easy dropped), '_' -> ' '",
    templates=(COOP_TEMPLATES["Caltech101"],), reader=load,
    split_url="https://drive.google.com/file/d/1hyarUivQE36mY6jSomru6Fjd-JzwcCzN/view?usp=sharing",
)
