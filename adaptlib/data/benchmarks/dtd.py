"""Describable Textures as CoOp reads it: ``dtd/images`` + ``split_zhou_DescribableTextures.json`` (47 classes).

CoOp's split (50/20/30 per class) replaces DTD's ten official splits; class names are the folder names.
"""

from __future__ import annotations

from pathlib import Path

from ..dataset import ClassificationDataset
from .base import BenchmarkInfo, read_zhou_dataset
from .templates import COOP_TEMPLATES


def load(root: Path) -> ClassificationDataset:
    return read_zhou_dataset(INFO, root)


INFO = BenchmarkInfo(
    name="dtd", title="DescribableTextures", folder="dtd", image_dir="images",
    split_file="split_zhou_DescribableTextures.json", num_classes=47,
    classnames="split file names (folder names), '_' -> ' '",
    templates=(COOP_TEMPLATES["DescribableTextures"],), reader=load,
    split_url="https://drive.google.com/file/d/1u3_QfB467jqHgNXC00UIzbLZRQCg2S7x/view?usp=sharing",
)
