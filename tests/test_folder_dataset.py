"""Folder datasets (``folder:PATH``): every layout, class names, templates, deterministic splits, fingerprints, every
bad-folder error, and the run, sweep and data-check paths on a tiny random-weight CLIP.

Each test writes its folders of coloured squares (PIL) into its own ``tmp_path``.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adaptlib.cli import main
from adaptlib.data import folder as F
from adaptlib.data.check import check_root, exit_code, format_report
from adaptlib.data.protocol import NotEnoughShotsError, sample_few_shot, subsample_classes
from adaptlib.data.registry import get_dataset
from adaptlib.methods import RECIPES
from adaptlib.runs.profile import load_profile
from adaptlib.runs.run import execute
from adaptlib.runs.spec import RunSpec
from adaptlib.runs.store import result_files
from adaptlib.runs.sweep import run_sweep

COLOURS = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (40, 60, 220), "dark_yellow": (180, 170, 20)}
PER_CLASS = 20
TINY = dict(backbone="adaptlib-test", pretrained=None, crop_scale=(1.0, 1.0), train={"max_steps": 2})


# ------------------------------------------------------------------------------------------------ folder builders
def square(path: Path, rgb: tuple[int, int, int], i: int) -> None:
    """A 24x24 image: a square of colour ``rgb`` on grey, its place and size varying with ``i``."""
    a = np.full((24, 24, 3), 128, np.uint8)
    size, x, y = 8 + i % 6, (3 * i) % 10, (5 * i) % 10
    a[y:y + size, x:x + size] = rgb
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)


def class_folders(root: Path, n: int = PER_CLASS, classes: dict = COLOURS, ext: str = "png") -> Path:
    for c, rgb in classes.items():
        for i in range(n):
            square(root / c / f"img_{i:03d}.{ext}", rgb, i)
    return root


def split_folders(root: Path, counts: dict[str, int] | None = None) -> Path:
    counts = counts or {"train": 8, "val": 3, "test": 5}
    for split, n in counts.items():
        for c, rgb in COLOURS.items():
            for i in range(n):
                square(root / split / c / f"{i:03d}.png", rgb, i + 100 * len(split))
    return root


def split_rows(root: Path, counts: dict[str, int] | None = None) -> list[tuple[str, int, str, str]]:
    """Images under ``root/images/<class>/`` and their (path, label, classname, split) rows."""
    counts = counts or {"train": 8, "val": 3, "test": 5}
    rows = []
    for label, (c, rgb) in enumerate(COLOURS.items()):
        i = 0
        for split, n in counts.items():
            for _ in range(n):
                key = f"images/{c}/{i:03d}.png"
                square(root / key, rgb, i)
                rows.append((key, label, c, split))
                i += 1
    return rows


def split_json(root: Path, name: str = "split.json") -> Path:
    rows = split_rows(root)
    blob = {s: [[k, y, c] for k, y, c, split in rows if split == s] for s in ("train", "val", "test")}
    (root / name).write_text(json.dumps(blob))
    return root / name


def split_csv(root: Path, with_split: bool = True, counts: dict[str, int] | None = None) -> Path:
    rows = split_rows(root, counts)
    with open(root / "split.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "classname"] + (["split"] if with_split else []))
        for key, label, c, split in rows:
            w.writerow([key, label, c] + ([split] if with_split else []))
    return root / "split.csv"


def counts(ds) -> dict[str, int]:
    return {s: len(v) for s, v in ds.splits.items()}


def load(path: Path | str):
    return get_dataset(f"folder:{path}")


# ------------------------------------------------------------------------------------------------ layouts
SORTED = ["blue", "dark yellow", "green", "red"]  # labels follow the sorted folder names, '_' read as a space


def _nested(tmp: Path) -> str:
    for c, rgb in COLOURS.items():
        for i in range(PER_CLASS):
            square(tmp / c / ("a" if i % 2 else "b") / f"{i}.jpg", rgb, i)
    (tmp / "red" / "notes.txt").write_text("not an image")
    (tmp / "red" / ".hidden.png").write_bytes(b"skipped: hidden")
    return str(tmp)


LAYOUTS: list[tuple[str, Callable[[Path], str], str, dict[str, int], list[str]]] = [
    # id, builder (returns the PATH of folder:PATH), layout, counts, class names by label
    ("class-folders", lambda t: str(class_folders(t)), "class folders", {"train": 40, "val": 16, "test": 24}, SORTED),
    ("class-folders-nested-jpg", _nested, "class folders", {"train": 40, "val": 16, "test": 24}, SORTED),
    ("split-folders", lambda t: str(split_folders(t)), "split folders", {"train": 32, "val": 12, "test": 20}, SORTED),
    ("split-folders-no-val", lambda t: str(split_folders(t, {"train": 10, "test": 5})), "split folders",
     {"train": 28, "val": 12, "test": 20}, SORTED),
    ("split-json-in-folder", lambda t: (split_json(t), str(t))[1], "split file", {"train": 32, "val": 12, "test": 20},
     ["red", "green", "blue", "dark yellow"]),
    ("split-json-named", lambda t: str(split_json(t, "my_split.json")), "split file",
     {"train": 32, "val": 12, "test": 20}, ["red", "green", "blue", "dark yellow"]),
    ("split-csv", lambda t: (split_csv(t), str(t))[1], "split file", {"train": 32, "val": 12, "test": 20},
     ["red", "green", "blue", "dark yellow"]),
    ("split-csv-no-split-column", lambda t: str(split_csv(t, with_split=False, counts={"train": 20})), "split file",
     {"train": 40, "val": 16, "test": 24}, ["red", "green", "blue", "dark yellow"]),
    ("split-csv-no-val", lambda t: str(split_csv(t, counts={"train": 10, "test": 5})), "split file",
     {"train": 28, "val": 12, "test": 20}, ["red", "green", "blue", "dark yellow"]),
]


@pytest.mark.parametrize("builder, layout, expected, classnames",
                         [case[1:] for case in LAYOUTS], ids=[case[0] for case in LAYOUTS])
def test_layout(tmp_path: Path, builder, layout: str, expected: dict[str, int], classnames: list[str]) -> None:
    path = builder(tmp_path / "images")
    ds = load(path)
    assert ds.info["layout"] == layout and ds.info["kind"] == "folder"
    assert counts(ds) == expected and ds.classnames == classnames
    assert ds.templates == ["a photo of a {}."] and ds.name == f"folder:{path}"
    for split, samples in ds.splits.items():  # every class in every split, labels and names agree
        assert set(Counter(s.label for s in samples)) == set(range(4)), split
        assert all(s.classname == ds.classnames[s.label] for s in samples)
    train_keys = {s.key for s in ds.splits["train"]}
    assert not train_keys & {s.key for s in ds.splits["val"] + ds.splits["test"]}  # disjoint splits
    image = ds.load_image(ds.splits["test"][0])
    assert image.mode == "RGB" and image.size == (24, 24)


@pytest.mark.parametrize("n, expected", [(4, (2, 1, 1)), (5, (2, 1, 2)), (7, (4, 1, 2)), (10, (5, 2, 3)),
                                         (20, (10, 4, 6)), (101, (50, 20, 31))])
def test_split_counts_follow_coop(n: int, expected: tuple[int, int, int]) -> None:
    assert F.split_counts(n) == expected  # round() as CoOp's read_and_split_data, test = the rest


# ------------------------------------------------------------------------------------------------ class names
CLASSNAME_CASES = [
    # id, classnames.txt text (None: no file), expected names by label (sorted folders: blue, dark_yellow, ...)
    ("folder-names", None, ["blue", "dark yellow", "green", "red"]),
    ("spaces", "blue navy blue\ndark_yellow mustard\n", ["navy blue", "mustard", "green", "red"]),
    ("tabs-and-comments", "# folder<TAB>name\n\nred\tbright red\n  \ngreen grass green\n",
     ["blue", "dark yellow", "grass green", "bright red"]),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in CLASSNAME_CASES], ids=[c[0] for c in CLASSNAME_CASES])
def test_class_names(tmp_path: Path, text: str | None, expected: list[str]) -> None:
    root = class_folders(tmp_path / "images", n=4)
    if text is not None:
        (root / "classnames.txt").write_text(text)
    ds = load(root)
    assert ds.classnames == expected
    assert ds.prompts(expected[0]) == [f"a photo of a {expected[0]}."]


def test_class_names_of_a_split_file_are_renamed_by_its_class_name(tmp_path: Path) -> None:
    split_json(tmp_path)
    (tmp_path / "classnames.txt").write_text("dark_yellow ochre\n")
    assert load(tmp_path).classnames == ["red", "green", "blue", "ochre"]


BAD_CLASSNAMES = [
    ("unknown-folder", "bleu navy\n", "no class folder (or split file class) is named 'bleu'. Did you mean 'blue'?"),
    ("no-name", "blue\n", "line 1: 'blue' has no class name"),
    ("twice", "blue a\nblue b\n", "line 2: 'blue' is named twice"),
    ("same-name", "blue colour\nred colour\n", "classes ['blue', 'red'] are all named 'colour'"),
]


@pytest.mark.parametrize("text, message", [c[1:] for c in BAD_CLASSNAMES], ids=[c[0] for c in BAD_CLASSNAMES])
def test_bad_classnames_file(tmp_path: Path, text: str, message: str) -> None:
    root = class_folders(tmp_path / "images", n=4)
    (root / "classnames.txt").write_text(text)
    with pytest.raises(F.FolderDatasetError) as info:
        load(root)
    assert message in str(info.value) and str(root) in str(info.value)


# ------------------------------------------------------------------------------------------------ templates
TEMPLATE_CASES = [
    ("default", None, ["a photo of a {}."], None),
    ("two", "a photo of a {}.\n# comment\n\na drawing of a {}, a colour.\n",
     ["a photo of a {}.", "a drawing of a {}, a colour."], None),
    ("no-braces", "a photo\n", None, "line 1: template 'a photo' must hold '{}' once"),
    ("twice", "{} and {}\n", None, "line 1: template '{} and {}' must hold '{}' once"),
    ("other-braces", "a {} of {kind}\n", None, "no other braces"),
    ("empty", "# nothing\n\n", None, "holds no templates"),
]


@pytest.mark.parametrize("text, expected, message", [c[1:] for c in TEMPLATE_CASES], ids=[c[0] for c in TEMPLATE_CASES])
def test_templates(tmp_path: Path, text: str | None, expected: list[str] | None, message: str | None) -> None:
    root = class_folders(tmp_path / "images", n=4)
    if text is not None:
        (root / "templates.txt").write_text(text)
    if message is None:
        ds = load(root)
        assert ds.templates == expected and ds.prompts("red")[0] == expected[0].format("red")
        return
    with pytest.raises(F.FolderDatasetError) as info:
        load(root)
    assert message in str(info.value) and str(root / "templates.txt") in str(info.value)


# ------------------------------------------------------------------------------------------------ determinism
def split_keys(ds) -> dict[str, list[str]]:
    return {s: [x.key for x in v] for s, v in ds.splits.items()}


def test_split_is_deterministic_and_independent_of_listing_order(tmp_path: Path, monkeypatch) -> None:
    root = class_folders(tmp_path / "images")
    first = load(root)
    real_walk, real_scandir = os.walk, os.scandir

    def reversed_walk(top, *args, **kwargs):
        for here, dirs, files in real_walk(top, *args, **kwargs):
            dirs.reverse()
            yield here, dirs, files[::-1]

    class ReversedScandir:  # os.scandir's entries in reverse order (os.walk uses it too)
        def __init__(self, path):
            with real_scandir(path) as it:
                self.entries = iter(list(it)[::-1])

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        def __iter__(self):
            return self

        def __next__(self):
            return next(self.entries)

        def close(self):
            return None

    monkeypatch.setattr(F.os, "walk", reversed_walk)
    monkeypatch.setattr(F.os, "scandir", ReversedScandir)
    again = load(root)
    assert split_keys(again) == split_keys(first) and again.fingerprint == first.fingerprint
    # the same images somewhere else: the same split (keys relative to the folder), another fingerprint
    other = class_folders(tmp_path / "copy")
    assert split_keys(load(other)) == split_keys(first) and load(other).fingerprint != first.fingerprint


def test_adding_an_image_changes_only_its_class_and_few_others(tmp_path: Path) -> None:
    root = class_folders(tmp_path / "images")
    before = split_keys(load(root))
    square(root / "red" / "img_new.png", COLOURS["red"], 99)
    after = split_keys(load(root))
    for split in before:
        assert [k for k in before[split] if not k.startswith("red/")] == \
            [k for k in after[split] if not k.startswith("red/")]
    moved = sum(k not in after[s] for s in before for k in before[s])
    assert moved <= 3  # the most one added image can move (the split sizes grow by up to one each)


def test_few_shot_subsets_and_base_to_new_on_a_folder(tmp_path: Path) -> None:
    ds = load(class_folders(tmp_path / "images"))
    a, b = sample_few_shot(ds, 4, seed=1), sample_few_shot(ds, 4, seed=1, use_cache=False)
    assert [s.key for s in a.train] == [s.key for s in b.train] and len(a.train) == 16 and len(a.val) == 16
    assert sample_few_shot(ds, 4, seed=2).train != a.train
    base, new = subsample_classes(a, "base"), subsample_classes(a, "new")
    assert base.classnames == ["blue", "dark yellow"] and new.classnames == ["green", "red"]


FINGERPRINT_CHANGES: list[tuple[str, Callable[[Path], None]]] = [
    ("image-rewritten", lambda r: square(r / "red" / "img_000.png", (1, 2, 3), 5)),
    ("image-added", lambda r: square(r / "blue" / "img_999.png", COLOURS["blue"], 7)),
    ("image-removed", lambda r: (r / "green" / "img_004.png").unlink()),
    ("classnames-file", lambda r: (r / "classnames.txt").write_text("red crimson\n")),
    ("class-added", lambda r: class_folders(r, n=5, classes={"white": (250, 250, 250)})),
]


@pytest.mark.parametrize("change", [c[1] for c in FINGERPRINT_CHANGES], ids=[c[0] for c in FINGERPRINT_CHANGES])
def test_fingerprint_follows_files_and_splits(tmp_path: Path, change) -> None:
    root = class_folders(tmp_path / "images")
    before = load(root).fingerprint
    assert load(root).fingerprint == before  # stable while nothing changes
    os.utime(root / "red" / "img_000.png", ns=(1, 1))  # a fixed time, so that a rewrite changes it
    before = load(root).fingerprint
    change(root)
    assert load(root).fingerprint != before


def test_fingerprint_follows_the_split_file(tmp_path: Path) -> None:
    path = split_json(tmp_path)
    before = load(tmp_path).fingerprint
    blob = json.loads(path.read_text())
    blob["test"].append(blob["train"].pop())
    path.write_text(json.dumps(blob))
    assert load(tmp_path).fingerprint != before


# ------------------------------------------------------------------------------------------------ bad folders
def _mixed(t: Path) -> None:
    split_folders(t)
    class_folders(t, n=5, classes={"purple": (120, 20, 160)})


def _one_small_class(t: Path) -> None:
    class_folders(t)
    class_folders(t, n=3, classes={"tiny": (0, 0, 0)})


def _csv_bad(header: str, row: str) -> Callable[[Path], None]:
    def build(t: Path) -> None:
        square(t / "a.png", (1, 1, 1), 0)
        (t / "split.csv").write_text(f"{header}\n{row}\n")
    return build


BAD_FOLDERS: list[tuple[str, Callable[[Path], object], str, list[str]]] = [
    # id, builder of tmp/data, path after folder: relative to tmp/data, message fragments ("{root}": the folder)
    ("empty", lambda t: t.mkdir(parents=True), "", ["holds no images at all", "{root}"]),
    ("only-text-files", lambda t: [(t / c).mkdir(parents=True) or (t / c / "x.txt").write_text("x")
                                   for c in ("a", "b")], "", ["holds no images at all"]),
    ("images-without-class-folders", lambda t: [square(t / f"{i}.png", (9, 9, 9), i) for i in range(3)], "",
     ["3 image file(s) but no class folders", "a folder of its own"]),
    ("empty-class-folder", lambda t: (class_folders(t), (t / "empty").mkdir()), "",
     ["class folder(s) ['empty'] of {root} hold no images"]),
    ("class-too-small-to-split", _one_small_class, "",
     ["class 'tiny' ({root}/tiny) has 3 image(s)", "at least 4 per class", "train/ val/ test/ folders"]),
    ("mixed-layout", _mixed, "", ["mixes two layouts", "['train/', 'val/', 'test/']", "['purple/']", "{root}"]),
    ("split-folders-without-test", lambda t: split_folders(t, {"train": 5}), "",
     ["has train/ but no test/ folder", "{root}/test"]),
    ("class-only-in-test", lambda t: (split_folders(t), class_folders(t / "test", n=2, classes={"x": (0, 0, 0)})),
     "", ["class(es) ['x'] of {root} have no images in {root}/train"]),
    ("two-split-files", lambda t: (split_json(t), split_csv(t)), "", ["holds both split.json and split.csv"]),
    ("missing-folder", lambda t: t.mkdir(parents=True), "nowhere", ["{root}/nowhere does not exist"]),
    ("not-a-split-file", lambda t: (t.mkdir(parents=True), (t / "list.txt").write_text("x")), "list.txt",
     ["is not a .json or .csv split file"]),
    ("json-not-json", lambda t: (t.mkdir(parents=True), (t / "split.json").write_text("[")), "",
     ["{root}/split.json is not valid JSON", "fix {root}/split.json"]),
    ("json-wrong-shape", lambda t: (t.mkdir(parents=True), (t / "split.json").write_text('{"train": []}')), "",
     ["must be a JSON object with lists 'train', 'val' and 'test'", "fix {root}/split.json"]),
    ("json-absolute-path", lambda t: (t.mkdir(parents=True), (t / "split.json").write_text(
        json.dumps({"train": [["/etc/x.png", 0, "a"]], "val": [], "test": []}))), "", ["paths must be relative"]),
    ("json-label-gap", lambda t: (t.mkdir(parents=True), (t / "split.json").write_text(json.dumps(
        {"train": [["a.png", 0, "a"], ["b.png", 2, "b"]], "val": [], "test": [["c.png", 0, "a"]]}))), "",
     ["labels must be 0..2 without gaps; missing [1]"]),
    ("json-no-test", lambda t: (t.mkdir(parents=True), (t / "split.json").write_text(json.dumps(
        {"train": [["a.png", 0, "a"]], "val": [], "test": []}))), "", ["lists no test images"]),
    ("csv-missing-column", _csv_bad("path,classname", "a.png,a"), "", ["without the column(s) ['label']"]),
    ("csv-bad-label", _csv_bad("path,label,classname", "a.png,one,a"), "", ["line 2: label 'one'"]),
    ("csv-bad-split", _csv_bad("path,label,classname,split", "a.png,0,a,training"), "",
     ["line 2: split 'training' must be one of train, val, test"]),
    ("csv-parent-path", _csv_bad("path,label,classname,split", "../a.png,0,a,train"), "",
     ["the image path '../a.png' must be relative"]),
]


@pytest.mark.parametrize("builder, sub, fragments", [c[1:] for c in BAD_FOLDERS], ids=[c[0] for c in BAD_FOLDERS])
def test_bad_folder_errors_name_the_path_and_what_to_do(tmp_path: Path, builder, sub: str,
                                                        fragments: list[str]) -> None:
    root = tmp_path / "images"
    builder(root)
    path = root / sub if sub else root
    with pytest.raises(ValueError) as info:
        load(path)
    message = str(info.value)
    for fragment in fragments:
        assert fragment.format(root=root) in message, message


def test_too_many_shots_names_the_class_its_count_and_the_folder(tmp_path: Path) -> None:
    root = class_folders(tmp_path / "images")
    class_folders(root, n=8, classes={"small": (0, 0, 0)})  # 4 train images (round(0.5 * 8))
    ds = load(root)
    with pytest.raises(NotEnoughShotsError) as info:
        sample_few_shot(ds, 5, seed=1)
    message = str(info.value)
    for fragment in ("class 'small'", "has 4 train images", "fewer than the 5 requested", "at most 4",
                     f"add images to {root / 'small'}"):
        assert fragment in message, message


def test_unreadable_images_are_left_out_with_a_warning(tmp_path: Path, capsys) -> None:
    root = class_folders(tmp_path / "images")
    (root / "red" / "img_003.png").write_bytes(b"\x89PNG broken")
    (root / "blue" / "img_007.png").write_bytes(b"")
    ds = load(root)
    err = capsys.readouterr().err
    assert "leaving out 2 unreadable image file(s)" in err
    assert str(root / "red" / "img_003.png") in err and str(root / "blue" / "img_007.png") in err
    assert sum(counts(ds).values()) == 4 * PER_CLASS - 2 and set(ds.info["skipped"]) == {"red/img_003.png",
                                                                                       "blue/img_007.png"}
    load(root)  # said once per process
    assert "leaving out" not in capsys.readouterr().err


def test_a_class_that_loses_all_its_train_images_is_an_error(tmp_path: Path) -> None:
    root = split_folders(tmp_path / "images")
    for p in sorted((root / "train" / "green").iterdir()):
        p.write_bytes(b"not an image")
    with pytest.raises(F.FolderDatasetError) as info:
        load(root)
    message = str(info.value)
    assert "class 'green'" in message and "no readable train images" in message and "all 8 are unreadable" in message
    assert str(root / "train" / "green" / "000.png") in message and "adaptlib data check --root" in message


def test_missing_images_of_a_split_file_are_left_out(tmp_path: Path, capsys) -> None:
    split_csv(tmp_path)
    (tmp_path / "images" / "red" / "000.png").unlink()
    ds = load(tmp_path)
    assert len(ds.splits["train"]) == 31 and "images/red/000.png (missing)" in capsys.readouterr().err


def test_the_image_check_is_cached_and_follows_changes(tmp_path: Path, monkeypatch) -> None:
    root = class_folders(tmp_path / "images", n=5)
    load(root)
    opened = []
    monkeypatch.setattr(F, "unreadable_reason", lambda p: opened.append(p))
    load(root)
    assert opened == []  # nothing changed: the cached check
    square(root / "red" / "img_100.png", COLOURS["red"], 1)
    load(root)
    assert len(opened) == 4 * 5 + 1  # a file changed: every image opened again


# ------------------------------------------------------------------------------------------------ runs
# every method few-shot, and base-to-new for one of each kind (zero-shot, a prompt learner, a closed-form probe)
RUNS = [(m, "few_shot") for m in sorted(RECIPES)] + \
    [(m, "base_to_new") for m in ("zeroshot", "coop", "linear_probe")]


@pytest.fixture(scope="module")
def colour_folder(tmp_path_factory) -> Path:
    return class_folders(tmp_path_factory.mktemp("folder") / "colours")


@pytest.mark.parametrize("method, setting", RUNS, ids=[f"{m}-{s}" for m, s in RUNS])
def test_every_method_runs_on_a_folder(colour_folder: Path, method: str, setting: str) -> None:
    result = execute(RunSpec(method, f"folder:{colour_folder}", shots=2, seed=1, setting=setting, **TINY))
    metrics = result["metrics"]
    if setting == "few_shot":
        assert 0 <= metrics["accuracy"] <= 1 and result["data"]["classes"] == 4
    else:
        assert 0 <= metrics["base_accuracy"] <= 1 and "hm" in metrics and "new_accuracy" in metrics


def test_a_folder_as_a_cross_dataset_target(colour_folder: Path, tmp_path: Path) -> None:
    target = class_folders(tmp_path / "target", n=5, classes={"red": COLOURS["red"], "white": (250, 250, 250)})
    result = execute(RunSpec("zeroshot", f"folder:{colour_folder}", shots=2, seed=1, setting="cross_dataset",
                             eval_datasets=(f"folder:{target}",), **TINY))
    assert 0 <= result["metrics"][f"accuracy@folder:{target}"] <= 1


def test_cli_run_on_a_folder(tmp_path: Path, colour_folder: Path, capsys) -> None:
    results = tmp_path / "results"
    argv = ["run", "--dataset", f"folder:{colour_folder}", "--method", "coop", "--shots", "2", "--seed", "1",
            "--backbone", "adaptlib-test", "--pretrained", "random", "--train", "max_steps=2", "--crop-scale", "1,1",
            "--results", str(results), "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"coop on folder:{colour_folder} (few_shot, 2 shots, seed 1): accuracy" in out
    files = list(result_files(results))
    assert len(files) == 1 and json.loads(files[0].read_text())["config"]["dataset"] == f"folder:{colour_folder}"


@pytest.mark.parametrize("dataset, shots, message", [
    ("folder:{tmp}/nowhere", "2", "{tmp}/nowhere does not exist"),
    ("folder:{folder}", "11", "class 'blue' (label 0) of dataset 'folder:{folder}' has 10 train images, fewer than "
                              "the 11 requested: lower --shots to at most 10, or add images to {folder}/blue"),
], ids=["missing-folder", "too-many-shots"])
def test_cli_run_errors(tmp_path: Path, colour_folder: Path, capsys, dataset: str, shots: str, message: str) -> None:
    fill = dict(tmp=tmp_path, folder=colour_folder)
    results = tmp_path / "results"
    argv = ["run", "--dataset", dataset.format(**fill), "--method", "coop", "--shots", shots, "--backbone",
            "adaptlib-test", "--pretrained", "random", "--results", str(results), "--quiet"]
    assert main(argv) == 2
    assert message.format(**fill) in capsys.readouterr().err
    assert not results.exists() or not list(result_files(results))


PROFILE = """\
name: tiny-folder
backbone: adaptlib-test
pretrained: random
run_defaults: {{crop_scale: [1, 1], train: {{max_steps: 2}}}}
datasets: ["folder:{folder}"]
shots: [{shots}]
seeds: [1]
methods:
  zeroshot: {{}}
  coop: {{}}
  linear_probe: {{}}
settings:
  few_shot: {{methods: [zeroshot, coop, linear_probe]}}
  base_to_new: {{methods: [coop]}}
"""


def test_sweep_on_a_profile_with_a_folder(tmp_path: Path, colour_folder: Path) -> None:
    profile = tmp_path / "tiny.yaml"
    profile.write_text(PROFILE.format(folder=colour_folder, shots=2))
    assert len(load_profile(profile).expand()) == 4
    summary = run_sweep(profile, results=tmp_path / "results", progress=False)
    assert (summary.total, summary.ran, summary.failed) == (4, 4, 0)
    again = run_sweep(profile, results=tmp_path / "results", progress=False)
    assert again.already_done == 4


def test_the_cost_of_a_folder_profile_is_estimated_from_the_folder(tmp_path: Path, colour_folder: Path) -> None:
    from adaptlib.runs.estimate import dataset_facts, estimate_profile

    profile = tmp_path / "tiny.yaml"
    profile.write_text(PROFILE.format(folder=colour_folder, shots=2))
    facts = dataset_facts(f"folder:{colour_folder}")
    ds = load(colour_folder)
    assert (facts.classes, facts.test, facts.source) == (len(ds.classnames), len(ds.split("test")), "your folder")
    assert estimate_profile(load_profile(profile)) is not None


@pytest.mark.parametrize("folder, shots, message", [
    ("{tmp}/nowhere", 2, "{tmp}/nowhere does not exist"),
    ("{folder}", 11, "its smallest class 'blue' has 10 training and 4 validation images; use at most 10 shots"),
], ids=["missing-folder", "too-many-shots"])
def test_bad_folder_profiles_fail_before_any_run(tmp_path: Path, colour_folder: Path, capsys, folder: str,
                                                 shots: int, message: str) -> None:
    fill = dict(tmp=tmp_path, folder=colour_folder)
    profile = tmp_path / "bad.yaml"
    profile.write_text(PROFILE.format(folder=folder.format(**fill), shots=shots))
    results = tmp_path / "results"
    assert main(["sweep", str(profile), "--results", str(results), "--quiet"]) == 2
    assert message.format(**fill) in capsys.readouterr().err
    assert not results.exists() or not list(result_files(results))


# ------------------------------------------------------------------------------------------------ data check
CHECK_CASES: list[tuple[str, Callable[[Path], object], list[str], int, list[str]]] = [
    # id, builder, argv after "data check" ({root}: the folder), exit status, output fragments
    ("class-folders", class_folders, ["--root", "{root}"], 0,
     ["folder:{root}", "ok", "4", "40", "16", "24", "layout: class folders", "'dark yellow'",
      "smallest class: 'blue' with 10 train images, so at most --shots 10", "1 of 1 datasets ready"]),
    ("split-folders", split_folders, ["--root", "{root}"], 0, ["split folders", "32", "12", "20"]),
    ("split-file-as-root", lambda t: split_json(t), ["--root", "{root}/split.json"], 0, ["split file split.json"]),
    ("datasets-option", class_folders, ["--datasets", "folder:{root}"], 0, ["folder:{root}", "ok"]),
    ("corrupt-images", lambda t: (class_folders(t), (t / "red" / "img_001.png").write_bytes(b"junk"),
                                  (t / "green" / "img_002.png").write_bytes(b"")), ["--root", "{root}"], 1,
     ["PROBLEMS", "2 problems (2 unreadable images)", "unreadable image {root}/red/img_001.png",
      "{root}/green/img_002.png", "0 of 1 datasets ready"]),
    ("class-without-readable-train", lambda t: (split_folders(t), [p.write_bytes(b"x") for p in
                                                                   (t / "train" / "red").iterdir()]),
     ["--root", "{root}"], 1, ["class 'red' (label 3) has no readable train images: a run stops on it"]),
    ("mixed-layout", _mixed, ["--root", "{root}"], 1, ["cannot read the dataset", "mixes two layouts", "purple/"]),
    ("missing", lambda t: None, ["--datasets", "folder:{root}/nowhere"], 1, ["{root}/nowhere does not exist"]),
]


@pytest.mark.parametrize("builder, argv, code, fragments", [c[1:] for c in CHECK_CASES],
                         ids=[c[0] for c in CHECK_CASES])
def test_data_check_reports_a_folder(tmp_path: Path, capsys, builder, argv: list[str], code: int,
                                     fragments: list[str]) -> None:
    root = tmp_path / "images"
    builder(root)
    assert main(["data", "check", *(a.format(root=root) for a in argv)]) == code
    out = capsys.readouterr().out
    for fragment in fragments:
        assert fragment.format(root=root) in out, out


def test_data_check_quick_does_not_open_images(tmp_path: Path) -> None:
    root = class_folders(tmp_path / "images", n=5)
    (root / "red" / "img_001.png").write_bytes(b"junk")
    report = check_root(root, quick=True)[0]
    assert report.ok and report.counts == {"train": 8, "val": 4, "test": 8}
    assert exit_code(check_root(root)) == 1


def test_data_check_mixes_benchmarks_and_folders(tmp_path: Path) -> None:
    from adaptlib.data.benchmarks.fixtures import build_fixture_root

    build_fixture_root(tmp_path / "bench", ["dtd"])
    mine = class_folders(tmp_path / "mine", n=5)
    reports = check_root(tmp_path / "bench", ["dtd", f"folder:{mine}"], quick=True)
    assert [(r.name, r.ok) for r in reports] == [("dtd", True), (f"folder:{mine}", True)]
    assert "3/47" in format_report(reports)  # benchmarks keep their expected class count
    # a benchmark root is not mistaken for a folder dataset, even with images in its dataset folders
    assert [r.name for r in check_root(tmp_path / "bench")][0] == "imagenet"


@pytest.mark.parametrize("argv, message", [
    ([], "pass --root DIR"),
    (["--datasets", "dtd"], "benchmark(s) ['dtd'] need --root"),
    (["--datasets", "folder:"], "names no folder"),
    (["--root", ".", "--datasets", "folder:./x,dtdd"], "Did you mean 'dtd'"),
], ids=["nothing", "benchmark-without-root", "empty-folder-name", "unknown-name"])
def test_data_check_bad_arguments(capsys, argv: list[str], message: str) -> None:
    assert main(["data", "check", *argv]) == 2
    assert message in capsys.readouterr().err
