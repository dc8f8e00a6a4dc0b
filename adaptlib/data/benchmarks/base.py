"""What every benchmark reader shares: its description, path checks with clear errors, the CoOp split-file format,
CoOp's class-name cleaning and the content fingerprint.

Readers follow CoOp's ``datasets/*.py`` (the Dassl layouts), so a folder prepared for CoOp works unchanged. Nothing
is ever downloaded: a missing folder or file is an error that says where it was expected and points to
``data/DATASETS.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..dataset import ClassificationDataset, FileImageLoader, Sample

DOCS = "data/DATASETS.md"
# Bump when a reader's conventions change (names, labels, split rules): fingerprints, and so caches, follow.
READER_VERSION = "1"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset folder, image folder or metadata file is not where the CoOp layout puts it."""


class SplitFileError(ValueError):
    """A split or metadata file exists but does not have the expected content."""


class TargetOnlySplitError(KeyError):
    """A split other than test was asked of a target-only dataset (an ImageNet variant)."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class BenchmarkInfo:
    """How one benchmark is laid out under DATA_ROOT and how its classes are named and prompted."""

    name: str  # registry key, lowercase
    title: str  # CoOp's dataset name (key of CUSTOM_TEMPLATES)
    folder: str  # dataset folder under DATA_ROOT
    image_dir: str  # image root under the dataset folder ("" = the dataset folder itself)
    split_file: str | None  # CoOp's fixed split; None when the dataset defines splits itself
    num_classes: int  # classes of the full dataset
    classnames: str  # where the class names come from and how they are cleaned
    templates: tuple[str, ...]
    reader: Callable[[Path], ClassificationDataset] = field(compare=False, repr=False)
    split_url: str | None = None  # where CoOp publishes the split file
    target_only: bool = False
    source: str | None = None  # the dataset whose label space a target-only variant shares


class TargetOnlyDataset(ClassificationDataset):
    """A test-only dataset (ImageNet variant): asking for train or val says what to do instead."""

    def split(self, name: str) -> list[Sample]:
        if name != "test" and name not in self.splits:
            source = self.info.get("source", "its source dataset")
            raise TargetOnlySplitError(
                f"dataset {self.name!r} is target-only: it has only a test split, so there is no {name!r} split. "
                f"Train on {source!r} and evaluate on {self.name!r}"
            )
        return super().split(name)


def clean_classname(name: str) -> str:
    """CoOp's trainers replace underscores by spaces before prompting (``name.replace('_', ' ')``)."""
    return name.replace("_", " ").strip()


def data_root(root: str | os.PathLike) -> Path:
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetNotFoundError(
            f"data root {path} does not exist or is not a folder: pass --data-root DIR (or set ADAPTLIB_DATA_ROOT) "
            f"to the folder that holds the dataset folders; {DOCS} shows the layout"
        )
    return path


def dataset_dir(root: Path, info: BenchmarkInfo) -> Path:
    path = data_root(root) / info.folder
    if not path.is_dir():
        raise DatasetNotFoundError(
            f"dataset {info.name!r} ({info.title}) not found: expected the folder {path} ('{info.folder}/' under "
            f"the data root). Nothing is downloaded automatically: {DOCS} says where to get it and how to lay it out"
        )
    return path


def require_dir(path: Path, info: BenchmarkInfo, what: str) -> Path:
    if not path.is_dir():
        raise DatasetNotFoundError(
            f"{info.name}: {what} {path} is missing; {DOCS} shows the folder layout '{info.folder}/' must have"
        )
    return path


def require_file(path: Path, info: BenchmarkInfo, what: str, hint: str = "") -> Path:
    if not path.is_file():
        hint = hint or f"{DOCS} says where to get it"
        raise DatasetNotFoundError(f"{info.name}: {what} {path} is missing: {hint}")
    return path


def split_file_hint(info: BenchmarkInfo, folder: Path) -> str:
    where = f" from {info.split_url}" if info.split_url else ""
    return f"download {info.split_file}{where} (CoOp's fixed split, linked in {DOCS}) and put it in {folder}"


def read_split_file(path: Path, fix: str = "") -> dict[str, list[tuple[str, int, str]]]:
    """CoOp's ``split_zhou_*.json``: ``{"train"|"val"|"test": [[image path, label, class name], ...]}``, image
    paths relative to the image folder. ``fix`` replaces the advice to download CoOp's file again, for split
    files a user wrote (folder datasets)."""
    try:
        blob = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise SplitFileError(f"split file {path} is not UTF-8 text ({err}): {fix or 'download it again'}") from None
    except json.JSONDecodeError as err:
        raise SplitFileError(f"split file {path} is not valid JSON ({err}): {fix or 'download it again'}") from None
    if not isinstance(blob, dict) or not all(isinstance(blob.get(s), list) for s in ("train", "val", "test")):
        keys = sorted(blob) if isinstance(blob, dict) else type(blob).__name__
        again = fix or "download CoOp's file again"
        raise SplitFileError(f"split file {path} must be a JSON object with lists 'train', 'val' and 'test' "
                             f"(found {keys}): {again}")
    out: dict[str, list[tuple[str, int, str]]] = {}
    for split in ("train", "val", "test"):
        items = []
        for i, item in enumerate(blob[split]):
            ok = (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str) and item[0]
                  and isinstance(item[1], int) and not isinstance(item[1], bool) and item[1] >= 0
                  and isinstance(item[2], str))
            if not ok:
                raise SplitFileError(f"split file {path}: item {i} of {split!r} is {item!r}, expected "
                                     f"[image path, label >= 0, class name]")
            if os.path.isabs(item[0]) or ".." in Path(item[0]).parts:
                raise SplitFileError(f"split file {path}: item {i} of {split!r} has the path {item[0]!r}; paths "
                                     f"must be relative to the image folder, as in CoOp's split files")
            items.append((item[0], item[1], item[2]))
        out[split] = items
    return out


def label_names(splits: dict[str, list[tuple[str, int, str]]], source: Path) -> list[str]:
    """Class names by label (Dassl's ``get_lab2cname``): one name per label, labels exactly 0..C-1."""
    names: dict[int, str] = {}
    for split, items in splits.items():
        for key, label, name in items:
            if names.setdefault(label, name) != name:
                raise SplitFileError(f"{source}: label {label} is named both {names[label]!r} and {name!r} "
                                     f"({split} item {key!r}); each label needs one class name")
    if not names:
        raise SplitFileError(f"{source} lists no images")
    gaps = sorted(set(range(max(names) + 1)) - set(names))
    if gaps:
        raise SplitFileError(f"{source}: labels must be 0..{max(names)} without gaps; missing {gaps[:10]}")
    return [names[i] for i in range(len(names))]


def fingerprint(name: str, root: Path, classnames: list[str], splits: dict[str, list[Sample]]) -> str:
    """SHA-256 of the dataset name, its resolved root, the class names and every split's (key, label) list.

    Image bytes are never read (the datasets are huge): a cache keyed by this changes when the split file, the
    class names, the image list or the location change.
    """
    h = hashlib.sha256()
    h.update(f"adaptlib-benchmark/{READER_VERSION}\n{name}\n{Path(root).expanduser().resolve()}\n".encode())
    h.update(("\n".join(classnames) + "\n").encode())
    for split in sorted(splits):
        h.update(f"[{split}]\n".encode())
        for s in splits[split]:
            h.update(f"{s.key}\t{s.label}\n".encode())
    return h.hexdigest()


def make_dataset(info: BenchmarkInfo, root: Path, image_root: Path, classnames: list[str],
                 splits: dict[str, list[Sample]], **extra: object) -> ClassificationDataset:
    """Assemble the common dataset object; target-only datasets get a test split only."""
    meta = {"kind": "benchmark", "title": info.title, "folder": str(Path(root) / info.folder),
            "image_root": str(image_root), "source": info.source, **extra}
    cls = TargetOnlyDataset if info.target_only else ClassificationDataset
    return cls(name=info.name, classnames=classnames, templates=list(info.templates), splits=splits,
               loader=FileImageLoader(image_root), fingerprint=fingerprint(info.name, root, classnames, splits),
               target_only=info.target_only, info=meta)


def read_zhou_dataset(info: BenchmarkInfo, root: Path, renames: dict[str, str] | None = None,
                      dropped: Iterable[str] = ()) -> ClassificationDataset:
    """A dataset with CoOp's fixed ``split_zhou_*.json``: labels and class names as in the file, names cleaned as
    CoOp's trainers do. ``renames`` (CoOp's ``NEW_CNAMES``) are already applied in CoOp's files; applying them
    again is a no-op there and fixes a split written from raw folder names. A split that keeps a class CoOp drops
    is refused, since it would silently change the protocol."""
    folder = dataset_dir(root, info)
    image_root = require_dir(folder / info.image_dir, info, "image folder") if info.image_dir else folder
    path = require_file(folder / info.split_file, info, "split file", split_file_hint(info, folder))
    raw = read_split_file(path)
    renames = renames or {}
    raw = {s: [(k, y, renames.get(n, n)) for k, y, n in items] for s, items in raw.items()}
    names = label_names(raw, path)
    kept = sorted(set(dropped) & set(names))
    if kept:
        raise SplitFileError(f"split file {path} keeps the classes {kept}, which the protocol drops: use CoOp's "
                             f"{info.split_file} ({DOCS})")
    classnames = [clean_classname(n) for n in names]
    splits = {s: [Sample(k, y, classnames[y]) for k, y, _ in items] for s, items in raw.items()}
    return make_dataset(info, root, image_root, classnames, splits, split_file=str(path), raw_classnames=names)


def list_files(folder: Path) -> list[str]:
    """Sorted non-hidden file names (CoOp lists in file-system order, which differs between machines)."""
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if not e.name.startswith(".") and e.is_file())


def list_dirs(folder: Path) -> list[str]:
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if not e.name.startswith(".") and e.is_dir())
