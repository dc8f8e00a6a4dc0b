"""ImageNet-Sketch as CoOp reads it: ``imagenet-sketch/images/<wnid>/`` (1000 classes, test only)."""

from __future__ import annotations

from pathlib import Path

from ..dataset import ClassificationDataset
from .base import BenchmarkInfo
from .imagenet import load_variant
from .templates import COOP_TEMPLATES


def load(root: Path) -> ClassificationDataset:
    return load_variant(INFO, root, "images", numbered=False)


INFO = BenchmarkInfo(
    name="imagenet_sketch", title="ImageNetSketch", folder="imagenet-sketch", image_dir="images", split_file=None,
    num_classes=1000, classnames="ImageNet's classnames.txt by wnid folder; labels in sorted wnid order",
    templates=(COOP_TEMPLATES["ImageNetSketch"],), reader=load, target_only=True, source="imagenet",
)
