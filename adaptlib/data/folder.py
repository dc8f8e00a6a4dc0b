"""Your own images as a dataset: ``folder:PATH`` wherever a dataset name is accepted.

``PATH`` is read in one of these layouts (the first that applies):

1. **A split file**: ``PATH`` is a ``.json`` or ``.csv`` file, or the folder ``PATH`` holds ``split.json`` or
   ``split.csv`` (not both). Image paths in it are relative to the folder that holds the split file.
   JSON is CoOp's split format: ``{"train": [[path, label, classname], ...], "val": [...], "test": [...]}``.
   CSV has a header with the columns ``path,label,classname`` and optionally ``split`` (``train``/``val``/``test``);
   without a ``split`` column its rows are split automatically as in layout 3.
2. **Split folders**: ``PATH/train/<class>/``, ``PATH/test/<class>/`` and optionally ``PATH/val/<class>/``. Without
   ``val/``, each class's validation images are held out of its train folder: 2 of every 7 (the 50:20 ratio of
   layout 3), at least one.
3. **Class folders**: ``PATH/<class>/`` with that class's images (sub-folders included), split automatically per
   class as CoOp's ``read_and_split_data`` splits the datasets without a split file (DTD, Caltech's folders):
   ``round(0.5 n)`` train, ``round(0.2 n)`` val, the rest test, so a class needs at least 4 images. Instead of
   ``random.shuffle`` the images are ordered by a hash of ``SPLIT_SEED`` and their path inside ``PATH``: the split
   does not depend on the order the file system lists files in, nor on the other classes, and adding an image
   moves at most a few others.

Labels follow the sorted folder names (layouts 2 and 3, as CoOp sorts its categories) or the split file's labels.
Class names are the folder names (or the split file's names) with underscores as spaces, as CoOp's trainers
prompt them, unless ``classnames.txt`` beside the images renames them: one ``<folder name> <class name>`` per line
(the split file's class name in layout 1; a tab instead of the first space for names that contain spaces).
Prompt templates are ``["a photo of a {}."]`` unless ``templates.txt`` there holds one template with ``{}`` per
line. Blank lines and lines starting with ``#`` are skipped in both files. Files are images when their suffix is
one of ``IMAGE_EXTENSIONS``; hidden files and folders are skipped.

Every image is opened (PIL's ``verify()``) when the dataset loads; the result is cached per file size and
modification time. Unreadable or missing images are left out with a warning naming them; a class left without
train or val images is an error. ``adaptlib data check --root PATH`` lists every problem. The fingerprint covers
the resolved location, the layout, class names, and each split's paths, labels, sizes and modification times, so
caches keyed by it follow any change of the files or splits.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..utils.atomic import remove_damaged, save_json_cache
from ..utils.names import unknown_name_message
from ..utils.paths import cache_dir
from .benchmarks.base import SplitFileError, clean_classname, label_names, read_split_file
from .dataset import SPLITS, ClassificationDataset, FileImageLoader, Sample, unreadable_reason

PREFIX = "folder:"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
SPLIT_FILES = ("split.json", "split.csv")
CLASSNAMES_FILE = "classnames.txt"
TEMPLATES_FILE = "templates.txt"
DEFAULT_TEMPLATES = ("a photo of a {}.",)
TRAIN_FRACTION, VAL_FRACTION = 0.5, 0.2  # CoOp's read_and_split_data: p_trn, p_val; test gets the rest
SPLIT_SEED = 1
READER_VERSION = "1"  # bump when the layouts, split rule or names change: fingerprints, and so caches, follow
README = "README.md, 'Your own images'"
MAX_LISTED = 10  # file names listed in one warning or error
Item = tuple[str, int, str]  # a split file's (image path, label, class name)


class FolderDatasetError(ValueError):
    """A folder dataset that cannot be read as asked: the message names the path and says what to do."""


def is_folder_name(name: str) -> bool:
    """Whether ``name`` asks for a folder dataset (``folder:PATH``)."""
    return name.startswith(PREFIX)


def folder_path(name: str) -> Path:
    """The folder or split file that ``folder:PATH`` names (``~`` expanded, relative to the working folder)."""
    text = name[len(PREFIX):] if is_folder_name(name) else name
    if not text.strip():
        raise FolderDatasetError(f"dataset {name!r} names no folder: write folder:PATH, PATH being a folder of "
                                 f"images or a split file ({README})")
    return Path(text).expanduser()


def check_folder_name(name: str) -> None:
    """Before anything loads: ``folder:PATH`` names an existing folder or a ``.json``/``.csv`` split file."""
    path = folder_path(name)
    if path.is_dir() or (path.is_file() and path.suffix.lower() in (".json", ".csv")):
        return
    what = "is not a .json or .csv split file" if path.is_file() else "does not exist"
    raise FolderDatasetError(f"dataset {name!r}: {path} {what}: pass folder:PATH with PATH a folder of images "
                             f"(one sub-folder per class) or a split file ({README})")


# ------------------------------------------------------------------------------------------------ scanning
@dataclass
class FolderScan:
    """What a folder dataset's files say, before any image is opened: the data check reads this as it is."""

    name: str
    source: Path  # the folder or split file named
    image_root: Path  # sample keys are relative to it
    layout: str  # "split file", "split folders" or "class folders"
    raw_names: list[str]  # per label: folder name, or the split file's class name
    classnames: list[str]
    templates: list[str]
    splits: dict[str, list[Sample]]
    class_dirs: dict[str, list[str]]  # {split: per label, the folder to add images to} (none for a split file)
    split_policy: str
    split_file: Path | None = None
    notes: list[str] = field(default_factory=list)

    def dataset(self, fingerprint: str, skipped: dict[str, str] | None = None) -> ClassificationDataset:
        """The dataset these files make; ``info`` keeps where each class lives, for errors that say where to add
        images, and the images left out."""
        info = {"kind": "folder", "folder": str(self.source), "image_root": str(self.image_root),
                "layout": self.layout, "split_file": str(self.split_file) if self.split_file else None,
                "split_policy": self.split_policy, "class_folders": dict(self.class_dirs),
                "raw_classnames": list(self.raw_names), "skipped": dict(skipped or {})}
        return ClassificationDataset(name=self.name, classnames=list(self.classnames), templates=list(self.templates),
                                     splits=self.splits, loader=FileImageLoader(self.image_root),
                                     fingerprint=fingerprint, info=info)


def _visible(name: str) -> bool:
    return not name.startswith(".") and name != "__MACOSX"


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _subfolders(folder: Path) -> list[str]:
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if _visible(e.name) and e.is_dir())


def _top_images(folder: Path) -> list[str]:
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if _visible(e.name) and e.is_file() and _is_image(e.name))


def _has_images(folder: Path) -> bool:
    """Whether ``folder`` or a sub-folder holds an image file (stops at the first one)."""
    for _, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if _visible(d)]
        if any(_visible(f) and _is_image(f) for f in files):
            return True
    return False


def list_images(folder: Path, prefix: str) -> list[str]:
    """Image files under ``folder`` (sub-folders included) as sorted keys ``prefix/relative/path``."""
    keys = []
    for here, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if _visible(d))
        rel = Path(here).relative_to(folder).as_posix()
        base = prefix if rel == "." else f"{prefix}/{rel}"
        keys += [f"{base}/{f}" for f in files if _visible(f) and _is_image(f)]
    return sorted(keys)


def _hash_order(keys: Iterable[str]) -> list[str]:
    """``keys`` in a fixed pseudo-random order that depends only on each key and ``SPLIT_SEED``."""
    return sorted(keys, key=lambda k: hashlib.sha256(f"{SPLIT_SEED}\n{k}".encode()).hexdigest())


def split_counts(n: int) -> tuple[int, int, int]:
    """(train, val, test) sizes of a class of ``n`` images, rounded as CoOp's ``read_and_split_data`` does."""
    n_train, n_val = round(n * TRAIN_FRACTION), round(n * VAL_FRACTION)
    return n_train, n_val, n - n_train - n_val


def auto_split(keys: list[str], where: str) -> dict[str, list[str]]:
    """One class's images split 50/20/30 in hash order (each part sorted again); ``where`` names the class in
    the error raised when a part would be empty."""
    n_train, n_val, n_test = split_counts(len(keys))
    if min(n_train, n_val, n_test) == 0:
        raise FolderDatasetError(
            f"{where} has {len(keys)} image(s): the automatic 50/20/30 split needs at least 4 per class (one each "
            f"in val and test); add images, or give train/ val/ test/ folders or a split file ({README})")
    order = _hash_order(keys)
    parts = (order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:])
    return {split: sorted(part) for split, part in zip(SPLITS, parts, strict=True)}


def hold_out_val(keys: list[str]) -> tuple[list[str], list[str]]:
    """(train, val) of one class's train folder when there is no val folder: 2 of every 7 images (at least one,
    none of a one-image class) held out in hash order."""
    n_val = 0 if len(keys) < 2 else max(1, round(len(keys) * VAL_FRACTION / (TRAIN_FRACTION + VAL_FRACTION)))
    order = _hash_order(keys)
    return sorted(order[:len(keys) - n_val]), sorted(order[len(keys) - n_val:])


def _scan_class_folders(folder: Path) -> tuple[list[str], dict[str, dict[str, list[str]]], list[str]]:
    """Layout 3: (class folders, {split: {class: keys}}, notes)."""
    classes = _subfolders(folder)
    strays = _top_images(folder)
    images = {c: list_images(folder / c, c) for c in classes}
    if not any(images.values()):
        found = f"{len(strays)} image file(s) but no class folders" if strays else "no images at all"
        raise FolderDatasetError(
            f"folder dataset {folder} holds {found} (looked for {', '.join(IMAGE_EXTENSIONS)} files in "
            f"{folder}/<class>/): put each class's images in a folder of its own, named after the class ({README})")
    empty = [c for c in classes if not images[c]]
    if empty:
        raise FolderDatasetError(f"class folder(s) {empty} of {folder} hold no images: add images to them or move "
                                 f"them out of {folder}")
    by_split: dict[str, dict[str, list[str]]] = {s: {} for s in SPLITS}
    for c in classes:
        for split, keys in auto_split(images[c], f"class {c!r} ({folder / c})").items():
            by_split[split][c] = keys
    notes = [f"{len(strays)} image file(s) at the top of {folder} are in no class folder and are not used "
             f"(e.g. {strays[0]})"] if strays else []
    return classes, by_split, notes


def _scan_split_folders(folder: Path, present: list[str]) -> tuple[list[str], dict[str, dict[str, list[str]]],
                                                                    list[str]]:
    """Layout 2: (classes, {split: {class: keys}}, notes)."""
    for need in ("train", "test"):
        if need not in present:
            raise FolderDatasetError(
                f"folder dataset {folder} has {'/, '.join(present)}/ but no {need}/ folder: add {folder / need}/"
                f"<class>/ folders, or put the class folders directly in {folder} for an automatic 50/20/30 split")
    by_split: dict[str, dict[str, list[str]]] = {s: {} for s in SPLITS}
    for split in present:
        sub = folder / split
        if not _subfolders(sub) and _top_images(sub):
            raise FolderDatasetError(f"{sub} holds images but no class folders: sort them into {sub}/<class>/")
        for c in _subfolders(sub):
            by_split[split][c] = list_images(sub / c, f"{split}/{c}")
    classes = sorted(set().union(*(by_split[s] for s in present)))
    missing = [c for c in classes if not by_split["train"].get(c)]
    if not classes:
        raise FolderDatasetError(f"folder dataset {folder} holds no images at all in {', '.join(present)}/: put "
                                 f"each class's images in {folder}/train/<class>/ and {folder}/test/<class>/")
    if missing:
        raise FolderDatasetError(f"class(es) {missing} of {folder} have no images in {folder / 'train'}: add "
                                 f"training images to {folder / 'train' / missing[0]}/ (each class needs some)")
    notes = []
    if "val" not in present:
        for c in classes:
            by_split["train"][c], by_split["val"][c] = hold_out_val(by_split["train"][c])
        notes.append("no val/ folder: validation images held out of train/ (2 of every 7 per class)")
    return classes, by_split, notes


def _folder_layout(folder: Path) -> str:
    """Which folder layout ``folder`` has; mixed top-level class and split folders are an error naming both."""
    present = [s for s in SPLITS if (folder / s).is_dir()]
    if not present:
        return "class folders"
    others = [d for d in _subfolders(folder) if d not in SPLITS and _has_images(folder / d)]
    if others:
        raise FolderDatasetError(
            f"folder dataset {folder} mixes two layouts: split folders {[s + '/' for s in present]} and class "
            f"folders {[d + '/' for d in others[:MAX_LISTED]]} at its top: move the class folders into "
            f"{folder / 'train'}/ (and val/, test/), or move the split folders' classes up for an automatic split")
    return "split folders"


def _scan_folders(name: str, folder: Path) -> FolderScan:
    layout = _folder_layout(folder)
    present = [s for s in SPLITS if (folder / s).is_dir()]
    if layout == "class folders":
        classes, by_split, notes = _scan_class_folders(folder)
        dirs = {s: [str(folder / c) for c in classes] for s in ("train", "val")}
        policy = (f"automatic per class: round({TRAIN_FRACTION} n) train, round({VAL_FRACTION} n) val, the rest "
                  f"test, in hash order (seed {SPLIT_SEED})")
    else:
        classes, by_split, notes = _scan_split_folders(folder, present)
        dirs = {s: [str(folder / (s if s in present else "train") / c) for c in classes] for s in ("train", "val")}
        policy = "train/, val/, test/ folders" if "val" in present else \
            "train/ and test/ folders; val held out of train (2 of every 7 per class, hash order)"
    renames = read_classnames(folder / CLASSNAMES_FILE, classes)
    splits = {s: [Sample(k, label, renames[c]) for label, c in enumerate(classes) for k in by_split[s].get(c, [])]
              for s in SPLITS}
    return FolderScan(name, folder, folder, layout, classes, [renames[c] for c in classes],
                      read_templates(folder / TEMPLATES_FILE), splits, dirs, policy, notes=notes)


def _split_file_in(folder: Path) -> Path | None:
    found = [folder / f for f in SPLIT_FILES if (folder / f).is_file()]
    if len(found) > 1:
        raise FolderDatasetError(f"folder dataset {folder} holds both {found[0].name} and {found[1].name}: keep one "
                                 f"split file, or name the one to use: folder:{found[0]}")
    return found[0] if found else None


def scan_folder(name: str) -> FolderScan:
    """Read the layout, class names, templates and splits of ``folder:PATH`` without opening any image."""
    check_folder_name(name)
    path = folder_path(name)
    split_file = path if path.is_file() else _split_file_in(path)
    if split_file is not None:
        return _scan_split_file(name, path, split_file)
    return _scan_folders(name, path)


# ------------------------------------------------------------------------------------------------ split files
def _fix(path: Path) -> str:
    return (f"fix {path} ({README} shows the format), or remove it to read the class folders of "
            f"{path.parent} instead")


def _check_key(key: str, path: Path, where: str) -> str:
    key = key.strip()
    if not key or os.path.isabs(key) or ".." in Path(key).parts:
        raise SplitFileError(f"split file {path} {where}: the image path {key!r} must be relative to "
                             f"{path.parent} (the split file's folder), without '..'")
    return Path(key).as_posix()


def read_split_csv(path: Path) -> dict[str, list[Item]] | list[Item]:
    """``path,label,classname[,split]`` rows: per split when there is a ``split`` column, else one list."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise SplitFileError(f"split file {path} is not UTF-8 text ({err}): {_fix(path)}") from None
    rows = csv.DictReader(text.splitlines())
    header = [h.strip().lower() for h in (rows.fieldnames or [])]
    missing = [c for c in ("path", "label", "classname") if c not in header]
    if missing:
        raise SplitFileError(f"split file {path} has the header {rows.fieldnames}, without the column(s) {missing}: "
                             f"its first line must be path,label,classname (and optionally ,split)")
    rows.fieldnames = header
    has_split = "split" in header
    items: dict[str, list[Item]] = {s: [] for s in SPLITS}
    pool: list[Item] = []
    for row in rows:
        where = f"line {rows.line_num}"
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        label = (row.get("label") or "").strip()
        if not label.isdigit():
            raise SplitFileError(f"split file {path} {where}: label {label!r} must be a whole number >= 0")
        item = (_check_key(row.get("path") or "", path, where), int(label), (row.get("classname") or "").strip())
        if not item[2]:
            raise SplitFileError(f"split file {path} {where}: the classname is empty")
        if not has_split:
            pool.append(item)
            continue
        split = (row.get("split") or "").strip().lower()
        if split not in SPLITS:
            raise SplitFileError(f"split file {path} {where}: split {split!r} must be one of {', '.join(SPLITS)}")
        items[split].append(item)
    return items if has_split else pool


def _auto_split_items(pool: list[Item], path: Path) -> dict[str, list[Item]]:
    """A split file without splits: each label's images split 50/20/30 as class folders are."""
    out: dict[str, list[Item]] = {s: [] for s in SPLITS}
    for label, items in _per_label(pool).items():
        where = f"class {next(iter(items.values()))[2]!r} (label {label}) of {path}"
        for split, keys in auto_split(sorted(items), where).items():
            out[split] += [items[k] for k in keys]
    return out


def _per_label(items: list[Item]) -> dict[int, dict[str, Item]]:
    """Split-file items grouped by label (sorted), each group keyed by image path."""
    out: dict[int, dict[str, Item]] = defaultdict(dict)
    for item in items:
        out[item[1]][item[0]] = item
    return dict(sorted(out.items()))


def _read_split_items(path: Path) -> tuple[dict[str, list[Item]], str]:
    """(items per split, split policy) of a JSON or CSV split file."""
    if path.suffix.lower() == ".json":
        raw = read_split_file(path, fix=_fix(path))
        return {s: [(_check_key(k, path, f"{s} item {k!r}"), y, n) for k, y, n in raw[s]] for s in SPLITS}, \
            f"split file {path.name}"
    read = read_split_csv(path)
    if isinstance(read, dict):
        return read, f"split file {path.name}"
    if not read:
        raise SplitFileError(f"split file {path} lists no images: add rows path,label,classname")
    return _auto_split_items(read, path), (f"split file {path.name} without a split column: automatic per class, "
                                           f"50/20/30 in hash order (seed {SPLIT_SEED})")


def _scan_split_file(name: str, given: Path, path: Path) -> FolderScan:
    raw, policy = _read_split_items(path)
    for split in ("train", "test"):
        if not raw[split]:
            raise SplitFileError(f"split file {path} lists no {split} images: add some ({README})")
    names = label_names(raw, path)
    if not raw["val"]:  # as for split folders without val/: held out of train, per class
        groups = _per_label(raw["train"])
        raw["train"], raw["val"] = [], []
        for items in groups.values():
            train, val = hold_out_val(sorted(items))
            raw["train"] += [items[k] for k in train]
            raw["val"] += [items[k] for k in val]
        policy += "; no val images: val held out of train (2 of every 7 per class, hash order)"
    folder = path.parent
    renames = read_classnames(folder / CLASSNAMES_FILE, names)
    classnames = [renames[n] for n in names]
    splits = {s: [Sample(k, y, classnames[y]) for k, y, _ in raw[s]] for s in SPLITS}
    return FolderScan(name, given, folder, "split file", names, classnames, read_templates(folder / TEMPLATES_FILE),
                      splits, {}, policy, split_file=path)


# ------------------------------------------------------------------------------------------------ names, templates
def _lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the non-blank, non-comment lines of a UTF-8 text file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise FolderDatasetError(f"{path} is not UTF-8 text ({err}): save it as UTF-8") from None
    return [(n, line.rstrip("\r\n")) for n, line in enumerate(text.splitlines(), start=1)
            if line.strip() and not line.lstrip().startswith("#")]


def read_classnames(path: Path, raw: list[str]) -> dict[str, str]:
    """Prompt name of each raw class name: from ``classnames.txt`` where it lists one, else ``_`` -> space.
    A line names a class that does not exist, or two classes end up with one name: an error naming the file."""
    names = {r: clean_classname(r) for r in raw}
    if path.is_file():
        seen: set[str] = set()
        for n, line in _lines(path):
            key, _, name = line.partition("\t") if "\t" in line else line.strip().partition(" ")
            key, name = key.strip(), name.strip()
            if not name:
                raise FolderDatasetError(f"{path} line {n}: {line.strip()!r} has no class name; expected "
                                         f"'<folder name> <class name>' per line")
            if key not in names:
                raise FolderDatasetError(unknown_name_message(f"{path} line {n}: no class folder (or split file "
                                                              f"class) is named", key, raw))
            if key in seen:
                raise FolderDatasetError(f"{path} line {n}: {key!r} is named twice; keep one line per class")
            seen.add(key)
            names[key] = name
    dupes = [name for name, count in Counter(names.values()).items() if count > 1]
    if dupes:
        owners = [r for r in raw if names[r] == dupes[0]]
        raise FolderDatasetError(f"classes {owners} are all named {dupes[0]!r}: give each class its own name "
                                 f"(rename a folder, or list the names in {path})")
    return names


def read_templates(path: Path) -> list[str]:
    """``templates.txt`` (one prompt template with ``{}`` per line), else the default ``a photo of a {}.``."""
    if not path.is_file():
        return list(DEFAULT_TEMPLATES)
    templates = []
    for n, line in _lines(path):
        line = line.strip()
        try:
            ok = line.count("{}") == 1 and line.format("x") != line
        except (IndexError, KeyError, ValueError):
            ok = False
        if not ok:
            raise FolderDatasetError(f"{path} line {n}: template {line!r} must hold '{{}}' once, where the class "
                                     f"name goes (e.g. 'a photo of a {{}}.'), and no other braces")
        templates.append(line)
    if not templates:
        raise FolderDatasetError(f"{path} holds no templates: write one per line, e.g. 'a photo of a {{}}.', or "
                                 f"delete it to use that default")
    return templates


# ------------------------------------------------------------------------------------------------ loading
def _stats(scan: FolderScan) -> dict[str, tuple[int, int] | None]:
    """(size, modification time in ns) of every image the scan lists; None for a missing file."""
    out: dict[str, tuple[int, int] | None] = {}
    for samples in scan.splits.values():
        for s in samples:
            if s.key not in out:
                try:
                    st = os.stat(scan.image_root / s.key)
                    out[s.key] = (st.st_size, st.st_mtime_ns)
                except OSError:
                    out[s.key] = None
    return out


def _digest(parts: Iterable[str]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8", "surrogateescape") + b"\n")
    return h.hexdigest()


def unreadable_images(scan: FolderScan, stats: dict[str, tuple[int, int] | None]) -> dict[str, str]:
    """{key: reason} of the images that are missing or PIL cannot open; cached per file sizes and times."""
    root = scan.image_root.resolve()
    key = _digest([f"adaptlib-folder-images/{READER_VERSION}", str(root)] +
                  [f"{k}\t{v}" for k, v in sorted(stats.items())])
    path = cache_dir("folder-images", f"{key[:32]}.json")
    if path.is_file():
        try:
            blob = json.loads(path.read_text())
            if blob.get("key") == key and isinstance(blob.get("unreadable"), dict):
                return {str(k): str(v) for k, v in blob["unreadable"].items()}
        except (OSError, ValueError):
            pass
        remove_damaged(path)
    bad = {}
    for k, st in stats.items():
        reason = "missing" if st is None else unreadable_reason(scan.image_root / k)
        if reason:
            bad[k] = reason
    save_json_cache(path, {"key": key, "root": str(root), "unreadable": bad}, "folder image check cache")
    return bad


def folder_fingerprint(scan: FolderScan, stats: dict[str, tuple[int, int] | None]) -> str:
    """SHA-256 of the resolved location, layout, class names and every split's keys, labels, sizes and times."""
    lines = [f"adaptlib-folder/{READER_VERSION}", str(scan.source.resolve()), scan.layout, *scan.classnames]
    for split in sorted(scan.splits):
        lines.append(f"[{split}]")
        lines += [f"{s.key}\t{s.label}\t{stats.get(s.key)}" for s in scan.splits[split]]
    return _digest(lines)


def _listed(keys: list[str], bad: dict[str, str], root: Path) -> str:
    shown = [f"{root / k} ({bad[k]})" for k in keys[:MAX_LISTED]]
    more = f" ... and {len(keys) - MAX_LISTED} more" if len(keys) > MAX_LISTED else ""
    return "; ".join(shown) + more


def _drop_unreadable(scan: FolderScan, bad: dict[str, str]) -> dict[str, list[Sample]]:
    """Each split without the unreadable images; a class left without train or val images is an error."""
    kept = {s: [x for x in scan.splits[s] if x.key not in bad] for s in SPLITS}
    for split in ("train", "val"):
        have = {x.label for x in kept[split]}
        for label, classname in enumerate(scan.classnames):
            if label in have:
                continue
            lost = [x.key for x in scan.splits[split] if x.label == label and x.key in bad]
            if not lost:
                continue  # never had any (a split file's choice): the few-shot sampler says so
            raise FolderDatasetError(
                f"class {classname!r} of folder dataset {scan.source} has no readable {split} images: all "
                f"{len(lost)} are unreadable: {_listed(lost, bad, scan.image_root)}. Replace them (or add readable "
                f"images); 'adaptlib data check --root {scan.source}' lists every problem")
    return kept


_WARNED: set[str] = set()


def _warn_skipped(scan: FolderScan, bad: dict[str, str], fingerprint: str) -> None:
    """Say once per process and dataset state which images are left out."""
    if not bad or fingerprint in _WARNED:
        return
    _WARNED.add(fingerprint)
    print(f"warning: folder dataset {scan.source}: leaving out {len(bad)} unreadable image file(s): "
          f"{_listed(sorted(bad), bad, scan.image_root)}; replace or delete them ('adaptlib data check --root "
          f"{scan.source}' lists every problem)", file=sys.stderr, flush=True)


def load_folder(name: str) -> ClassificationDataset:
    """The dataset ``folder:PATH``: scanned, every image verified (unreadable ones left out with a warning)."""
    scan = scan_folder(name)
    stats = _stats(scan)
    bad = unreadable_images(scan, stats)
    kept = _drop_unreadable(scan, bad) if bad else scan.splits
    scan = replace(scan, splits=kept)
    fingerprint = folder_fingerprint(scan, stats)
    _warn_skipped(scan, bad, fingerprint)
    return scan.dataset(fingerprint, bad)


def is_folder_dataset_root(path: Path, benchmark_folders: Iterable[str] = ()) -> bool:
    """Whether ``path`` (a data check's --root) is itself a folder dataset rather than a folder of benchmarks:
    a split file, or a folder with a split file, train/ test/ folders or class folders of images, and none of
    ``benchmark_folders``."""
    path = Path(path).expanduser()
    if path.is_file():
        return path.suffix.lower() in (".json", ".csv")
    if not path.is_dir() or any((path / f).is_dir() for f in benchmark_folders):
        return False
    if any((path / f).is_file() for f in SPLIT_FILES) or any((path / s).is_dir() for s in ("train", "test")):
        return True
    return any(_has_images(path / d) for d in _subfolders(path))
