"""The nine benchmarks CoOp reads from its fixed split file ``<folder>/split_zhou_<Title>.json``: one record each
(``SPLIT_FILE_BENCHMARKS``), one reader (``SplitFileBenchmark.read``, i.e. ``base.read_zhou_dataset``).

The split file lists ``[image path, label, class name]`` per split with paths relative to the image folder; class
names are the file's, prompted with spaces for underscores. A record's ``renames`` (CoOp's ``NEW_CNAMES``) are
already applied in CoOp's files and fix a split written from raw folder names; a split that keeps one of its
``dropped`` classes is refused, since it would silently change the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ..dataset import ClassificationDataset
from .base import BenchmarkInfo, read_zhou_dataset
from .templates import COOP_TEMPLATES


@dataclass(frozen=True)
class SplitFileBenchmark:
    """What sets one split-file benchmark apart from the others (the split file is named after ``title``)."""

    name: str  # registry key
    title: str  # CoOp's dataset name: its template key and the split file's name
    folder: str  # dataset folder under DATA_ROOT
    image_dir: str  # image root under the dataset folder ("" = the dataset folder itself)
    num_classes: int
    classnames: str  # where the class names come from and how they are cleaned
    split_url: str  # where CoOp publishes the split file
    renames: dict[str, str] = field(default_factory=dict, hash=False)  # CoOp's NEW_CNAMES
    dropped: tuple[str, ...] = ()  # classes CoOp leaves out

    @property
    def split_file(self) -> str:
        return f"split_zhou_{self.title}.json"

    @cached_property
    def info(self) -> BenchmarkInfo:
        return BenchmarkInfo(name=self.name, title=self.title, folder=self.folder, image_dir=self.image_dir,
                             split_file=self.split_file, num_classes=self.num_classes, classnames=self.classnames,
                             templates=(COOP_TEMPLATES[self.title],), reader=self.read, split_url=self.split_url)

    def read(self, root: Path) -> ClassificationDataset:
        return read_zhou_dataset(self.info, root, renames=self.renames, dropped=self.dropped)


SPLIT_FILE_BENCHMARKS: tuple[SplitFileBenchmark, ...] = (
    # CoOp drops BACKGROUND_Google and Faces_easy and renames four folders; its split holds the renamed names
    SplitFileBenchmark(
        "caltech101", "Caltech101", "caltech-101", "101_ObjectCategories", 100,
        "split file names (folder names; airplanes/Faces/Leopards/Motorbikes renamed to airplane/face/"
        "leopard/motorbike; BACKGROUND_Google and Faces_easy dropped), '_' -> ' '",
        "https://drive.google.com/file/d/1hyarUivQE36mY6jSomru6Fjd-JzwcCzN/view?usp=sharing",
        renames={"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"},
        dropped=("BACKGROUND_Google", "Faces_easy")),
    # lowercase breeds from the image file names (american_bulldog)
    SplitFileBenchmark(
        "oxford_pets", "OxfordPets", "oxford_pets", "images", 37,
        "split file names (lowercase breed from the image file name), '_' -> ' '",
        "https://drive.google.com/file/d/1501r8Ber4nNKvmlFVQZ8SeUHTcdTTEqs/view?usp=sharing"),
    # image paths start at the dataset folder (cars_train/00001.jpg, cars_test/...); the year comes first in names
    SplitFileBenchmark(
        "stanford_cars", "StanfordCars", "stanford_cars", "", 196,
        "split file names (devkit names with the year moved first)",
        "https://drive.google.com/file/d/1ObCFbaAgVu0I-k_Au-gIUcefirdAuizT/view?usp=sharing"),
    # CoOp wrote the names from cat_to_name.json
    SplitFileBenchmark(
        "oxford_flowers", "OxfordFlowers", "oxford_flowers", "jpg", 102,
        "split file names (from cat_to_name.json)",
        "https://drive.google.com/file/d/1Pp0sRXzZFZq15zVOzKjKBu4A9i01nozT/view?usp=sharing"),
    SplitFileBenchmark(
        "food101", "Food101", "food-101", "images", 101,
        "split file names (folder names), '_' -> ' '",
        "https://drive.google.com/file/d/1QK0tGi096I0Ba6kggatX1ee6dJFIcEJl/view?usp=sharing"),
    # CoOp named each class from its path without the first letter, reversed (b/bakery/shop -> shop bakery)
    SplitFileBenchmark(
        "sun397", "SUN397", "sun397", "SUN397", 397,
        "split file names (category path reversed, e.g. 'shop bakery'), '_' -> ' '",
        "https://drive.google.com/file/d/1y2RD81BYuiyvebdN-JymPfyWYcd8_MUq/view?usp=sharing"),
    # CoOp's split (50/20/30 per class) replaces DTD's ten official splits
    SplitFileBenchmark(
        "dtd", "DescribableTextures", "dtd", "images", 47,
        "split file names (folder names), '_' -> ' '",
        "https://drive.google.com/file/d/1u3_QfB467jqHgNXC00UIzbLZRQCg2S7x/view?usp=sharing"),
    # CoOp prompts descriptive names; its split holds them, a split from the raw folder names is renamed
    SplitFileBenchmark(
        "eurosat", "EuroSAT", "eurosat", "2750", 10,
        "CoOp's descriptive names (AnnualCrop -> 'Annual Crop Land', SeaLake -> 'Sea or Lake', ...)",
        "https://drive.google.com/file/d/1Ip7yaCWFi0eaOFUGga0lUdVi_DDQth1o/view?usp=sharing",
        renames={"AnnualCrop": "Annual Crop Land", "Forest": "Forest",
                 "HerbaceousVegetation": "Herbaceous Vegetation Land", "Highway": "Highway or Road",
                 "Industrial": "Industrial Buildings", "Pasture": "Pasture Land",
                 "PermanentCrop": "Permanent Crop Land", "Residential": "Residential Buildings", "River": "River",
                 "SeaLake": "Sea or Lake"}),
    # the middle frame of each video; CoOp split the CamelCase action names (Apply_Eye_Makeup)
    SplitFileBenchmark(
        "ucf101", "UCF101", "ucf101", "UCF-101-midframes", 101,
        "split file names (action words joined by '_'), '_' -> ' '",
        "https://drive.google.com/file/d/1I0S0q91hJfsV9Gf4xDIjgDq4AqBNJb1y/view?usp=sharing"),
)
