"""ImageNet-1k as CoOp reads it: ``imagenet/images/{train,val}/<wnid>/`` + ``imagenet/classnames.txt`` (1000 classes),
and its four test-only variants (``VARIANTS``: one record each, one reader).

``classnames.txt`` ("<wnid> <class name>" per line, CLIP's names, sorted by wnid) fixes the label order; the
ImageNet variants share it. Shots come from the train folder; the 50k val folder is the test split.

Validation split (a choice, not CoOp's): CoOp uses the test set as val (``val=test``) and never selects on it
because it reports the last epoch. Methods here do select on val (linear-probe C, Tip-Adapter alpha/beta), so
val is held out of the train folder instead: per class, the last ``min(50, max(1, n // 5))`` images by file name
(none for a one-image class). They never appear in train, and the test set is never used for any choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ..dataset import ClassificationDataset, Sample
from .base import (DOCS, BenchmarkInfo, DatasetNotFoundError, SplitFileError, clean_classname, dataset_dir,
                   list_dirs, list_files, make_dataset, require_dir, require_file)
from .templates import COOP_TEMPLATES

VAL_PER_CLASS = 50
CLASSNAMES_URL = "https://drive.google.com/file/d/1-61f_ol79pViBFDG_IDlUQSwoLcn2XXF/view?usp=sharing"


def read_classnames(path: Path) -> dict[str, str]:
    """``classnames.txt``: wnid -> class name, in file (label) order."""
    out: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        wnid, _, name = line.strip().partition(" ")
        if not name.strip() or wnid in out:
            problem = "repeats a wnid" if wnid in out else "has no class name"
            raise SplitFileError(f"{path} line {n}: {line.strip()!r} {problem}; expected '<wnid> <class name>' "
                                 f"per line (CoOp's classnames.txt, {CLASSNAMES_URL})")
        out[wnid] = name.strip()
    if not out:
        raise SplitFileError(f"{path} is empty: download CoOp's classnames.txt ({CLASSNAMES_URL})")
    return out


def classnames_file(root: Path, info: BenchmarkInfo) -> Path:
    """The dataset's own ``classnames.txt`` (CoOp copies it into every variant), else ImageNet's."""
    own, shared = Path(root) / info.folder / "classnames.txt", Path(root) / "imagenet" / "classnames.txt"
    for path in (own, shared):
        if path.is_file():
            return path
    raise DatasetNotFoundError(f"{info.name}: class list {own} is missing (and so is {shared}): download CoOp's "
                               f"classnames.txt ({CLASSNAMES_URL}) into {own.parent} ({DOCS})")


def class_folders(folder: Path, wnids: dict[str, str], classnames_path: Path, info: BenchmarkInfo,
                  require_all: bool) -> list[str]:
    """The wnid folders of ``folder``; every one must be a class of ``classnames.txt``."""
    folders = list_dirs(folder)
    if not folders and list_files(folder):
        raise SplitFileError(f"{info.name}: {folder} holds images but no class folders: sort them into one folder "
                             f"per wnid (as for the train set; {DOCS} says how)")
    unknown = [f for f in folders if f not in wnids]
    if unknown:
        raise SplitFileError(f"{info.name}: folders {unknown[:5]} in {folder} are not classes of "
                             f"{classnames_path} ({len(unknown)} unknown)")
    present = set(folders)
    absent = [w for w in wnids if w not in present] if require_all else []
    if absent:
        raise DatasetNotFoundError(f"{info.name}: {len(absent)} class folders are missing from {folder}, e.g. "
                                   f"{absent[:5]}: extract the archive again ({DOCS})")
    return folders


def held_out(n: int) -> int:
    """How many of a class's n train-folder images become val (enough for 4-shot val, never most of a class)."""
    return 0 if n < 2 else min(VAL_PER_CLASS, max(1, n // 5))


def load(root: Path) -> ClassificationDataset:
    folder = dataset_dir(root, INFO)
    image_root = require_dir(folder / "images", INFO, "image folder")
    path = require_file(folder / "classnames.txt", INFO, "class list",
                        f"download CoOp's classnames.txt ({CLASSNAMES_URL}) into {folder}")
    wnids = read_classnames(path)
    classnames = [clean_classname(n) for n in wnids.values()]
    splits: dict[str, list[Sample]] = {"train": [], "val": [], "test": []}
    for sub in ("train", "val"):
        split_dir = require_dir(image_root / sub, INFO, f"{sub} folder")
        class_folders(split_dir, wnids, path, INFO, require_all=True)
        for label, wnid in enumerate(wnids):
            samples = [Sample(f"{sub}/{wnid}/{name}", label, classnames[label])
                       for name in list_files(split_dir / wnid)]
            if sub == "val":  # the official val set is the test split
                splits["test"] += samples
                continue
            cut = len(samples) - held_out(len(samples))
            splits["train"] += samples[:cut]
            splits["val"] += samples[cut:]
    return make_dataset(INFO, root, image_root, classnames, splits, split_file=str(path), wnids=list(wnids),
                        val_policy=f"held out of train: last min({VAL_PER_CLASS}, n//5) images per class")


def load_variant(info: BenchmarkInfo, root: Path, image_dir: str, numbered: bool) -> ClassificationDataset:
    """A test-only ImageNet variant, read as CoOp does, with its labels tied to ImageNet's label space.

    ``numbered``: ImageNetV2 names its class folders 0..999 by ImageNet label. The others name them by wnid and,
    as in CoOp, label their classes 0..C-1 in sorted wnid order (ImageNet-A/R: 200 classes, a 200-way task as in
    the literature). ``info["source_labels"][label]`` is the ImageNet label of each class, so a head trained on
    ImageNet's 1000 classes can be restricted to the variant's classes.
    """
    folder = dataset_dir(root, info)
    image_root = require_dir(folder / image_dir, info, "image folder")
    path = classnames_file(root, info)
    wnids = read_classnames(path)
    imagenet_label = {w: i for i, w in enumerate(wnids)}
    if numbered:
        folders = [str(i) for i in range(len(wnids))]
        absent = [f for f in folders if not (image_root / f).is_dir()]
        if absent:
            raise DatasetNotFoundError(f"{info.name}: {len(absent)} class folders (0..{len(wnids) - 1}) are missing "
                                       f"from {image_root}, e.g. {absent[:5]}: extract the archive again ({DOCS})")
        classes = list(wnids)
    else:
        folders = class_folders(image_root, wnids, path, info, require_all=False)
        classes = folders
    classnames = [clean_classname(wnids[w]) for w in classes]
    test = [Sample(f"{f}/{name}", label, classnames[label])
            for label, f in enumerate(folders) for name in list_files(image_root / f)]
    return make_dataset(info, root, image_root, classnames, {"test": test}, split_file=str(path), wnids=classes,
                        source_labels=[imagenet_label[w] for w in classes])


INFO = BenchmarkInfo(
    name="imagenet", title="ImageNet", folder="imagenet", image_dir="images", split_file=None, num_classes=1000,
    classnames="classnames.txt ('<wnid> <name>' per line, CLIP's names), file order = labels",
    templates=(COOP_TEMPLATES["ImageNet"],), reader=load,
)


@dataclass(frozen=True)
class ImageNetVariant:
    """What sets one test-only ImageNet variant apart from the others; ``read`` is the one reader."""

    name: str
    title: str  # CoOp's dataset name (template key)
    folder: str  # dataset folder under DATA_ROOT
    image_dir: str  # folder of the class folders, under the dataset folder
    num_classes: int
    classnames: str
    numbered: bool = False  # class folders 0..999 by ImageNet label (ImageNetV2), else wnids in sorted order

    @cached_property
    def info(self) -> BenchmarkInfo:
        return BenchmarkInfo(name=self.name, title=self.title, folder=self.folder, image_dir=self.image_dir,
                             split_file=None, num_classes=self.num_classes, classnames=self.classnames,
                             templates=(COOP_TEMPLATES[self.title],), reader=self.read, target_only=True,
                             source="imagenet")

    def read(self, root: Path) -> ClassificationDataset:
        return load_variant(self.info, root, self.image_dir, self.numbered)


BY_WNID = "ImageNet's classnames.txt by wnid folder; labels in sorted wnid order"
VARIANTS: tuple[ImageNetVariant, ...] = (
    # matched frequency; folder i holds ImageNet class i, so labels are ImageNet's
    ImageNetVariant("imagenet_v2", "ImageNetV2", "imagenetv2", "imagenetv2-matched-frequency-format-val", 1000,
                    "ImageNet's classnames.txt; folder i = ImageNet label i", numbered=True),
    ImageNetVariant("imagenet_sketch", "ImageNetSketch", "imagenet-sketch", "images", 1000, BY_WNID),
    # 200 of ImageNet's classes, labelled 0..199 in sorted wnid order as in CoOp; info["source_labels"] maps them
    ImageNetVariant("imagenet_a", "ImageNetA", "imagenet-adversarial", "imagenet-a", 200, BY_WNID),
    ImageNetVariant("imagenet_r", "ImageNetR", "imagenet-rendition", "imagenet-r", 200, BY_WNID),
)
