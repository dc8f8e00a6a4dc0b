"""FGVC-Aircraft (variant level) as CoOp reads it: the dataset's own files, no CoOp split (100 classes).

``fgvc_aircraft/`` is the ``data/`` folder of fgvc-aircraft-2013b: ``variants.txt`` gives the classes in label order,
``images_variant_{train,val,test}.txt`` give "<image id> <variant name>" per line, images are ``images/<id>.jpg``.
"""

from __future__ import annotations

from pathlib import Path

from ..dataset import ClassificationDataset, Sample
from .base import DOCS, BenchmarkInfo, SplitFileError, dataset_dir, make_dataset, require_dir, require_file
from .templates import COOP_TEMPLATES

SPLIT_FILES = {"train": "images_variant_train.txt", "val": "images_variant_val.txt",
               "test": "images_variant_test.txt"}
HINT = f"keep the whole data/ folder of fgvc-aircraft-2013b.tar.gz, renamed to fgvc_aircraft/ ({DOCS})"


def read_variants(path: Path) -> list[str]:
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise SplitFileError(f"{path} lists no variants: extract fgvc-aircraft-2013b.tar.gz again")
    if len(set(names)) != len(names):
        raise SplitFileError(f"{path} lists a variant twice")
    return names


def read_split(path: Path, label_of: dict[str, int]) -> list[Sample]:
    samples = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.strip().split(" ")
        if not parts[0]:
            continue
        name = " ".join(parts[1:])
        if name not in label_of:
            raise SplitFileError(f"{path} line {n}: {line.strip()!r} names the variant {name!r}, which "
                                 f"variants.txt does not list; expected '<image id> <variant>'")
        samples.append(Sample(parts[0] + ".jpg", label_of[name], name))
    return samples


def load(root: Path) -> ClassificationDataset:
    folder = dataset_dir(root, INFO)
    image_root = require_dir(folder / INFO.image_dir, INFO, "image folder")
    classnames = read_variants(require_file(folder / "variants.txt", INFO, "class list", HINT))
    label_of = {name: i for i, name in enumerate(classnames)}
    splits = {split: read_split(require_file(folder / file, INFO, f"{split} list", HINT), label_of)
              for split, file in SPLIT_FILES.items()}
    return make_dataset(INFO, root, image_root, classnames, splits,
                        split_file=str(folder / SPLIT_FILES["train"]))


INFO = BenchmarkInfo(
    name="fgvc_aircraft", title="FGVCAircraft", folder="fgvc_aircraft", image_dir="images", split_file=None,
    num_classes=100, classnames="variants.txt, in file order (e.g. '707-320', 'F-16A/B')",
    templates=(COOP_TEMPLATES["FGVCAircraft"],), reader=load,
)
