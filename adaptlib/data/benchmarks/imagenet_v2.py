"""ImageNetV2 (matched frequency) as CoOp reads it: ``imagenetv2/imagenetv2-matched-frequency-format-val/{0..999}/``.

Test only; folder ``i`` holds ImageNet class ``i``, so labels are ImageNet's.
"""

from __future__ import annotations

from pathlib import Path

from ..dataset import ClassificationDataset
from .base import BenchmarkInfo
from .imagenet import load_variant
from .templates import COOP_TEMPLATES


def load(root: Path) -> ClassificationDataset:
    return load_variant(INFO, root, "imagenetv2-matched-frequency-format-val", numbered=True)


INFO = BenchmarkInfo(
    name="imagenet_v2", title="ImageNetV2", folder="imagenetv2", image_dir="imagenetv2-matched-frequency-format-val",
    split_file=None, num_classes=1000, classnames="ImageNet's classnames.txt; folder i = ImageNet label i",
    templates=(COOP_TEMPLATES["ImageNetV2"],), reader=load, target_only=True, source="imagenet",
)
