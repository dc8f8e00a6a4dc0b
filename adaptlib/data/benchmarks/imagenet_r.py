"""ImageNet-R as CoOp reads it: ``imagenet-rendition/imagenet-r/<wnid>/`` (200 of ImageNet's classes, test only).

Labels 0..199 in sorted wnid order, as in CoOp; ``info["source_labels"]`` maps them to ImageNet's labels.
"""

from __future__ import annotations

from pathlib import Path

from ..dataset import ClassificationDataset
from .base import BenchmarkInfo
from .imagenet import load_variant
from .templates import COOP_TEMPLATES


def load(root: Path) -> ClassificationDataset:
    return load_variant(INFO, root, "imagenet-r", numbered=False)


INFO = BenchmarkInfo(
    name="imagenet_r", title="ImageNetR", folder="imagenet-rendition", image_dir="imagenet-r", split_file=None,
    num_classes=200, classnames="ImageNet's classnames.txt by wnid folder; labels in sorted wnid order",
    templates=(COOP_TEMPLATES["ImageNetR"],), reader=load, target_only=True, source="imagenet",
)
