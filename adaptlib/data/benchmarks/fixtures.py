"""A tiny copy of every benchmark's real layout (three classes, a few 8x8 images each) for tests and smoke runs.

The folders, split files, text files and ``classnames.txt`` follow the real formats, with real class names that
exercise each naming convention (renamed Caltech folders, EuroSAT's descriptive names, SUN397's reversed paths,
underscores), so the readers and the data check run on it exactly as on the real data.

Per class: zhou-split datasets and FGVC-Aircraft have 2 train, 1 val and 2 test images; ImageNet has 4 train-folder
images (3 train + 1 held-out val) and 2 val-folder (test) images; each variant has 2 test images. The ImageNet
variants use ImageNet's three classes (A and R a two-class subset each, as they use 200 of the 1000).
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from ...utils.names import unknown_name_error

PER_SPLIT = {"train": 2, "val": 1, "test": 2}
IMAGENET = [("n01440764", "tench"), ("n01443537", "goldfish"), ("n01484850", "great white shark")]
IMAGENET_A = ["n01443537", "n01484850"]
IMAGENET_R = ["n01440764", "n01484850"]

# name: (dataset folder, image folder, split file, [(image subfolder or file prefix, name in the split file)])
# with the classes in label order
ZHOU: dict[str, tuple[str, str, str, list[tuple[str, str]]]] = {
    "caltech101": ("caltech-101", "101_ObjectCategories", "split_zhou_Caltech101.json",
                   [("Faces", "face"), ("airplanes", "airplane"), ("yin_yang", "yin_yang")]),
    "oxford_pets": ("oxford_pets", "images", "split_zhou_OxfordPets.json",
                    [("Abyssinian", "abyssinian"), ("american_bulldog", "american_bulldog"),
                     ("yorkshire_terrier", "yorkshire_terrier")]),
    "stanford_cars": ("stanford_cars", "", "split_zhou_StanfordCars.json",
                      [("", "2000 AM General Hummer SUV"), ("", "2012 Acura RL Sedan"),
                       ("", "2012 smart fortwo Convertible")]),
    "oxford_flowers": ("oxford_flowers", "jpg", "split_zhou_OxfordFlowers.json",
                       [("", "pink primrose"), ("", "hard-leaved pocket orchid"), ("", "canterbury bells")]),
    "food101": ("food-101", "images", "split_zhou_Food101.json",
                [("apple_pie", "apple_pie"), ("baby_back_ribs", "baby_back_ribs"), ("baklava", "baklava")]),
    "sun397": ("sun397", "SUN397", "split_zhou_SUN397.json",
               [("a/abbey", "abbey"), ("a/apartment_building/outdoor", "outdoor apartment_building"),
                ("b/bakery/shop", "shop bakery")]),
    "dtd": ("dtd", "images", "split_zhou_DescribableTextures.json",
            [("banded", "banded"), ("blotchy", "blotchy"), ("bubbly", "bubbly")]),
    "eurosat": ("eurosat", "2750", "split_zhou_EuroSAT.json",
                [("AnnualCrop", "Annual Crop Land"), ("Forest", "Forest"),
                 ("HerbaceousVegetation", "Herbaceous Vegetation Land")]),
    "ucf101": ("ucf101", "UCF-101-midframes", "split_zhou_UCF101.json",
               [("Apply_Eye_Makeup", "Apply_Eye_Makeup"), ("Apply_Lipstick", "Apply_Lipstick"),
                ("Yo_Yo", "Yo_Yo")]),
}
AIRCRAFT = ["707-320", "A300B4", "F-16A/B"]


def write_image(path: Path, seed: int) -> None:
    """An 8x8 image of a colour derived from ``seed``; JPEG or PNG by the file's suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    Image.fromarray(pixels).save(path, format=fmt)


def _image_name(name: str, folder: str, cls: int, i: int) -> str:
    """A file name in the style of each dataset (relative to its image folder)."""
    n = cls * 100 + i + 1
    styles: dict[str, Callable[[], str]] = {
        "caltech101": lambda: f"{folder}/image_{i + 1:04d}.jpg",
        "oxford_pets": lambda: f"{folder}_{i + 1}.jpg",
        "stanford_cars": lambda: f"{'cars_test' if i >= 3 else 'cars_train'}/{n:05d}.jpg",
        "oxford_flowers": lambda: f"image_{n:05d}.jpg",
        "food101": lambda: f"{folder}/{1000000 + n}.jpg",
        "sun397": lambda: f"{folder}/sun_{n:016d}.jpg",
        "dtd": lambda: f"{folder}/{folder}_{i + 1:04d}.jpg",
        "eurosat": lambda: f"{folder}/{folder}_{i + 1}.jpg",
        "ucf101": lambda: f"{folder}/v_{folder.replace('_', '')}_g{i + 1:02d}_c01.jpg",
    }
    return styles[name]()


def _zhou(root: Path, name: str) -> None:
    folder, image_dir, split_file, classes = ZHOU[name]
    base = root / folder
    image_root = base / image_dir if image_dir else base
    split: dict[str, list] = {s: [] for s in PER_SPLIT}
    for label, (sub, classname) in enumerate(classes):
        i = 0
        for s, count in PER_SPLIT.items():
            for _ in range(count):
                key = _image_name(name, sub, label, i)
                write_image(image_root / key, seed=zlib.crc32(f"{name}/{key}".encode()))
                split[s].append([key, label, classname])
                i += 1
    base.mkdir(parents=True, exist_ok=True)
    (base / split_file).write_text(json.dumps(split, indent=4))
    if name == "caltech101":  # present on disk, absent from the split: the reader must not pick it up
        write_image(image_root / "BACKGROUND_Google" / "image_0001.jpg", seed=1)
    if name == "oxford_flowers":
        names = {str(label + 1): c for label, (_, c) in enumerate(classes)}
        (base / "cat_to_name.json").write_text(json.dumps(names))


def _aircraft(root: Path) -> None:
    base = root / "fgvc_aircraft"
    base.mkdir(parents=True, exist_ok=True)
    (base / "variants.txt").write_text("\n".join(AIRCRAFT) + "\n")
    lines: dict[str, list[str]] = {s: [] for s in PER_SPLIT}
    n = 0
    for variant in AIRCRAFT:
        for s, count in PER_SPLIT.items():
            for _ in range(count):
                image_id = f"{1025794 + n:07d}"
                write_image(base / "images" / f"{image_id}.jpg", seed=n)
                lines[s].append(f"{image_id} {variant}")
                n += 1
    for s, rows in lines.items():
        (base / f"images_variant_{s}.txt").write_text("\n".join(rows) + "\n")
    (base / "families.txt").write_text("Boeing 707\nA300\nF-16\n")  # present in the real folder, unused


def _classnames_txt(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "classnames.txt").write_text("".join(f"{w} {n}\n" for w, n in IMAGENET))


def _imagenet(root: Path) -> None:
    base = root / "imagenet"
    _classnames_txt(base)
    for label, (wnid, _) in enumerate(IMAGENET):
        for i in range(4):
            write_image(base / "images" / "train" / wnid / f"{wnid}_{1000 + i}.JPEG", seed=label * 10 + i)
        for i in range(2):
            write_image(base / "images" / "val" / wnid / f"ILSVRC2012_val_{label * 2 + i + 1:08d}.JPEG", seed=i)


def _variant(root: Path, folder: str, image_dir: str, classes: Iterable[str], numbered: bool) -> None:
    base = root / folder
    _classnames_txt(base)
    wnids = [w for w, _ in IMAGENET]
    for wnid in classes:
        sub = str(wnids.index(wnid)) if numbered else wnid
        for i in range(2):
            write_image(base / image_dir / sub / f"{wnid[-4:]} example_{i}.jpeg", seed=i)
    if not numbered:
        (base / image_dir / "README.txt").write_text("not a class folder\n")


BUILDERS: dict[str, Callable[[Path], None]] = {
    "imagenet": _imagenet,
    **{name: (lambda r, n=name: _zhou(r, n)) for name in ZHOU},
    "fgvc_aircraft": _aircraft,
    "imagenet_v2": lambda r: _variant(r, "imagenetv2", "imagenetv2-matched-frequency-format-val",
                                      [w for w, _ in IMAGENET], numbered=True),
    "imagenet_sketch": lambda r: _variant(r, "imagenet-sketch", "images", [w for w, _ in IMAGENET], numbered=False),
    "imagenet_a": lambda r: _variant(r, "imagenet-adversarial", "imagenet-a", IMAGENET_A, numbered=False),
    "imagenet_r": lambda r: _variant(r, "imagenet-rendition", "imagenet-r", IMAGENET_R, numbered=False),
}


def build_fixture_root(root: str | os.PathLike, names: Iterable[str] | None = None) -> Path:
    """Write the tiny layout of ``names`` (default: every benchmark) under ``root`` and return ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for name in BUILDERS if names is None else names:
        if name not in BUILDERS:
            raise unknown_name_error("benchmark dataset", name, BUILDERS)
        BUILDERS[name](root)
    return root
