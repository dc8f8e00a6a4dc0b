"""SUN397 as CoOp reads it: ``sun397/SUN397`` + ``split_zhou_SUN397.json`` (397 classes).

CoOp named each class from its path without the first letter, reversed (``b/bakery/shop`` -> ``shop bakery``); the
split file holds those names, prompted with spaces for underscores.
"""

from __future__ import annotations

from pathlib import Path

from ..dataset import ClassificationDataset
from .base import BenchmarkInfo, read_zhou_dataset
from .templates import COOP_TEMPLATES


def load(root: Path) -> ClassificationDataset:
    return read_zhou_dataset(INFO, root)


INFO = BenchmarkInfo(
    name="sun397", title="SUN397", folder="sun397", image_dir="SUN397",
    split_file="split_zhou_SUN397.json", num_classes=397,
    classnames="split file names (category path reversed, e.g. 'shop bakery'), '_' -> ' '",
    templates=(COOP_TEMPLATES["SUN397"],), reader=load,
    split_url="https://drive.google.com/file/d/1y2RD81BYuiyvebdN-JymPfyWYcd8_MUq/view?usp=sharing",
)
