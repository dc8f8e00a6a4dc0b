"""EuroSAT as CoOp reads it: ``eurosat/2750`` + ``split_zhou_EuroSAT.json`` (10 classes).

CoOp prompts descriptive names (``NEW_CNAMES``: AnnualCrop -> "Annual Crop Land", ...); its split file already
holds them, and a split written from the raw folder names is renamed the same way.
"""

from __future__ import annotations

from pathlib import Path

from ..dataset import ClassificationDataset
from .base import BenchmarkInfo, read_zhou_dataset
from .templates import COOP_TEMPLATES

NEW_CNAMES = {
    "AnnualCrop": "Annual Crop Land",
    "Forest": "Forest",
    "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road",
    "Industrial": "Industrial Buildings",
    "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land",
    "Residential": "Residential Buildings",
    "River": "River",
    "SeaLake": "Sea or Lake",
}


def load(root: Path) -> ClassificationDataset:
    return read_zhou_dataset(INFO, root, renames=NEW_CNAMES)


INFO = BenchmarkInfo(
    name="eurosat", title="EuroSAT", folder="eurosat", image_dir="2750",
    split_file="split_zhou_EuroSAT.json", num_classes=10,
    classnames="CoOp's descriptive names (AnnualCrop -> 'Annual Crop Land', SeaLake -> 'Sea or Lake', ...)",
    templates=(COOP_TEMPLATES["EuroSAT"],), reader=load,
    split_url="https://drive.google.com/file/d/1Ip7yaCWFi0eaOFUGga0lUdVi_DDQth1o/view?usp=sharing",
)
