"""ImageNet-A as CoOp reads it: ``imagenet-adversarial/imagenet-a/<wnid>/`` (200 of ImageNet's classes, test only).

Labels 0..199 in sorted wnid order, as in CoOp; ``info["source_labels"]`` maps them to ImageNet's labels.
"""

from __future__ import annotations

from pathlib import Path

from ..dataset import ClassificationDataset
from .base import BenchmarkInfo
from .imagenet import load_variant
from .templates import COOP_TEMPLATES


def load(root: Path) -> ClassificationDataset:
    return load_variant(INFO, root, "imagenet-a", numbered=False)


INFO = BenchmarkInfo(
    name="imagenet_a", title="ImageNetA", folder="imagenet-adversarial", image_dir="imagenet-a", split_file=None,
    num_classes=200, classnames="ImageNet's classnames.txt by wnid folder; labels in sorted wnid order",
    templates=(COOP_TEMPLATES["ImageNetA"],), reader=load, target_only=True, source="imagenet",
)
