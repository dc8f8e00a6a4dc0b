"""Oxford-IIIT Pets as CoOp reads it: ``oxford_pets/images`` + ``split_zhou_OxfordPets.json`` (37 breeds).

Class names are the lowercase breeds of the split file (``american_bulldog``), prompted with spaces.
"""

from __future__ import annotations

from pathlib import Path

from ..dataset import ClassificationDataset
from .base import BenchmarkInfo, read_zhou_dataset
from .templates import COOP_TEMPLATES


def load(root: Path) -> ClassificationDataset:
    return read_zhou_dataset(INFO, root)


INFO = BenchmarkInfo(
    name="oxford_pets", title="OxfordPets", folder="oxford_pets", image_dir="images",
    split_file="split_zhou_OxfordPets.json", num_classes=37,
    classnames="split file names (lowercase breed from the image file name), '_' -> ' '",
    templates=(COOP_TEMPLATES["OxfordPets"],), reader=load,
    split_url="https://drive.google.com/file/d/1501r8Ber4nNKvmlFVQZ8SeUHTcdTTEqs/view?usp=sharing",
)
