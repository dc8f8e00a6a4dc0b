"""Benchmark readers, registry, fingerprints, bad-input errors and the data check, on the tiny fixture layouts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from adaptlib.data.benchmarks import (BENCHMARKS, IMAGENET_TEMPLATES, DatasetNotFoundError, SplitFileError,
                                      TargetOnlySplitError, load_benchmark)
from adaptlib.data.benchmarks.fixtures import build_fixture_root
from adaptlib.data.check import check_root, exit_code, format_report, main_check
from adaptlib.data.protocol import sample_few_shot
from adaptlib.data.registry import get_dataset
from adaptlib.utils.names import UnknownNameError

ZHOU_COUNTS = {"train": 6, "val": 3, "test": 6}
# name: (class names as prompted, split sizes, CoOp template)
EXPECTED: dict[str, tuple[list[str], dict[str, int], str]] = {
    "imagenet": (["tench", "goldfish", "great white shark"], {"train": 9, "val": 3, "test": 6}, "a photo of a {}."),
    "caltech101": (["face", "airplane", "yin yang"], ZHOU_COUNTS, "a photo of a {}."),
    "oxford_pets": (["abyssinian", "american bulldog", "yorkshire terrier"], ZHOU_COUNTS,
                    "a photo of a {}, a type of pet."),
    "stanford_cars": (["2000 AM General Hummer SUV", "2012 Acura RL Sedan", "2012 smart fortwo Convertible"],
                      ZHOU_COUNTS, "a photo of a {}."),
    "oxford_flowers": (["pink primrose", "hard-leaved pocket orchid", "canterbury bells"], ZHOU_COUNTS,
                       "a photo of a {}, a type of flower."),
    "food101": (["apple pie", "baby back ribs", "baklava"], ZHOU_COUNTS, "a photo of {}, a type of food."),
    "fgvc_aircraft": (["707-320", "A300B4", "F-16A/B"], ZHOU_COUNTS, "a photo of a {}, a type of aircraft."),
    "sun397": (["abbey", "outdoor apartment building", "shop bakery"], ZHOU_COUNTS, "a photo of a {}."),
    "dtd": (["banded", "blotchy", "bubbly"], ZHOU_COUNTS, "{} texture."),
    "eurosat": (["Annual Crop Land", "Forest", "Herbaceous Vegetation Land"], ZHOU_COUNTS,
                "a centered satellite photo of {}."),
    "ucf101": (["Apply Eye Makeup", "Apply Lipstick", "Yo Yo"], ZHOU_COUNTS, "a photo of a person doing {}."),
    "imagenet_v2": (["tench", "goldfish", "great white shark"], {"test": 6}, "a photo of a {}."),
    "imagenet_sketch": (["tench", "goldfish", "great white shark"], {"test": 6}, "a photo of a {}."),
    "imagenet_a": (["goldfish", "great white shark"], {"test": 4}, "a photo of a {}."),
    "imagenet_r": (["tench", "great white shark"], {"test": 4}, "a photo of a {}."),
}
VARIANTS = ["imagenet_v2", "imagenet_sketch", "imagenet_a", "imagenet_r"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every benchmark's tiny layout, shared read-only by the tests of this module."""
    return build_fixture_root(tmp_path_factory.mktemp("data"))


def test_registry_lists_the_protocol_and_the_variants() -> None:
    assert list(BENCHMARKS) == list(EXPECTED)
    assert [n for n, i in BENCHMARKS.items() if i.target_only] == VARIANTS
    assert all(BENCHMARKS[n].source == "imagenet" for n in VARIANTS)
    assert BENCHMARKS["fgvc_aircraft"].split_file is None
    assert BENCHMARKS["caltech101"].split_file == "split_zhou_Caltech101.json"


@pytest.mark.parametrize("name", list(EXPECTED))
def test_reader(root: Path, name: str) -> None:
    classnames, counts, template = EXPECTED[name]
    ds = load_benchmark(name, root)
    assert ds.name == name
    assert ds.classnames == classnames
    assert {s: len(v) for s, v in ds.splits.items()} == counts
    assert ds.templates[0] == template and ds.templates == [template]
    assert ds.target_only == (name in VARIANTS)
    assert len(ds.fingerprint) == 64 and int(ds.fingerprint, 16) >= 0
    for split, samples in ds.splits.items():
        assert {s.label for s in samples} == set(range(len(classnames))), split
        assert all(s.classname == classnames[s.label] for s in samples)
    keys = [s.key for v in ds.splits.values() for s in v]
    assert len(keys) == len(set(keys))  # no image in two splits
    image = ds.load_image(ds.split("test")[0])
    assert image.size == (8, 8) and image.mode == "RGB"


@pytest.mark.parametrize("name", list(EXPECTED))
def test_get_dataset_from_registry(root: Path, name: str) -> None:
    ds = get_dataset(name, root)
    assert ds.classnames == EXPECTED[name][0]


def test_get_dataset_uses_the_environment_root(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADAPTLIB_DATA_ROOT", str(root))
    assert get_dataset("dtd").classnames == ["banded", "blotchy", "bubbly"]
    monkeypatch.delenv("ADAPTLIB_DATA_ROOT")
    with pytest.raises(FileNotFoundError, match="ADAPTLIB_DATA_ROOT"):
        get_dataset("dtd")


def test_caltech_ignores_background_folder_and_keeps_split_labels(root: Path) -> None:
    ds = load_benchmark("caltech101", root)
    assert not any("BACKGROUND_Google" in s.key for v in ds.splits.values() for s in v)
    assert ds.info["raw_classnames"] == ["face", "airplane", "yin_yang"]
    assert {s.key.split("/")[0] for s in ds.split("train")} == {"Faces", "airplanes", "yin_yang"}


def test_raw_folder_names_get_coop_renames(tmp_path: Path) -> None:
    """A split written from raw folder names is renamed as CoOp's NEW_CNAMES (a no-op on CoOp's own files)."""
    build_fixture_root(tmp_path, ["eurosat"])
    path = tmp_path / "eurosat" / "split_zhou_EuroSAT.json"
    raw = {"Annual Crop Land": "AnnualCrop", "Herbaceous Vegetation Land": "HerbaceousVegetation"}
    split = json.loads(path.read_text())
    path.write_text(json.dumps({s: [[k, y, raw.get(n, n)] for k, y, n in v] for s, v in split.items()}))
    assert load_benchmark("eurosat", tmp_path).classnames == EXPECTED["eurosat"][0]


def test_stanford_cars_paths_start_at_the_dataset_folder(root: Path) -> None:
    ds = load_benchmark("stanford_cars", root)
    assert {s.key.split("/")[0] for s in ds.split("train")} == {"cars_train"}
    assert {s.key.split("/")[0] for s in ds.split("test")} == {"cars_test"}
    assert Path(ds.info["image_root"]) == root / "stanford_cars"


def test_imagenet_val_is_held_out_of_train_and_test_is_the_val_folder(root: Path) -> None:
    ds = load_benchmark("imagenet", root)
    train, val, test = (set(s.key for s in ds.split(x)) for x in ("train", "val", "test"))
    assert all(k.startswith("train/") for k in train | val) and all(k.startswith("val/") for k in test)
    assert not train & val
    assert len(train | val) == 12  # every train-folder image is used once
    assert ds.info["wnids"] == ["n01440764", "n01443537", "n01484850"]


@pytest.mark.parametrize("name, source_labels", [("imagenet_v2", [0, 1, 2]), ("imagenet_sketch", [0, 1, 2]),
                                                 ("imagenet_a", [1, 2]), ("imagenet_r", [0, 2])])
def test_variant_labels_map_to_imagenet(root: Path, name: str, source_labels: list[int]) -> None:
    imagenet = load_benchmark("imagenet", root)
    ds = load_benchmark(name, root)
    assert ds.info["source"] == "imagenet"
    assert ds.info["source_labels"] == source_labels
    assert [imagenet.classnames[i] for i in source_labels] == ds.classnames
    assert [imagenet.info["wnids"][i] for i in source_labels] == ds.info["wnids"]
    for s in ds.split("test"):  # the image's class folder is the wnid (or, for V2, the ImageNet label)
        folder = s.key.split("/")[0]
        assert folder in (ds.info["wnids"][s.label], str(source_labels[s.label]))


@pytest.mark.parametrize("name", VARIANTS)
def test_target_only_variants_refuse_train_and_few_shot(root: Path, name: str) -> None:
    ds = load_benchmark(name, root)
    with pytest.raises(TargetOnlySplitError, match="target-only.*'imagenet'"):
        ds.split("train")
    with pytest.raises(KeyError):
        ds.split("val")
    with pytest.raises(ValueError, match="target-only"):
        sample_few_shot(ds, shots=1, seed=1, use_cache=False)


@pytest.mark.parametrize("name", [n for n in EXPECTED if n not in VARIANTS])
def test_few_shot_sampling_runs_on_each_benchmark(root: Path, name: str) -> None:
    ds = load_benchmark(name, root)
    task = sample_few_shot(ds, shots=1, seed=1, use_cache=False)
    assert sorted(s.label for s in task.train) == [0, 1, 2]
    assert sorted(s.label for s in task.val) == [0, 1, 2]
    assert {s.key for s in task.train} <= {s.key for s in ds.split("train")}
    assert len(task.test) == len(ds.split("test"))


def test_templates() -> None:
    assert len(IMAGENET_TEMPLATES) == 80 and len(set(IMAGENET_TEMPLATES)) == 80
    assert all(t.count("{}") == 1 for t in IMAGENET_TEMPLATES)
    assert IMAGENET_TEMPLATES[0] == "a bad photo of a {}." and IMAGENET_TEMPLATES[-1] == "a tattoo of the {}."
    coop_select = {"itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
                   "a {} in a video game.", "art of the {}.", "a photo of the small {}."}
    assert coop_select <= set(IMAGENET_TEMPLATES)
    assert BENCHMARKS["imagenet"].templates == ("a photo of a {}.",)  # the ensemble is an option, not the default


# ---- fingerprint ------------------------------------------------------------------------------------------------

def test_fingerprint_is_stable_and_ignores_image_bytes(tmp_path: Path) -> None:
    build_fixture_root(tmp_path, ["dtd"])
    first = load_benchmark("dtd", tmp_path).fingerprint
    assert load_benchmark("dtd", tmp_path).fingerprint == first
    (tmp_path / "dtd" / "images" / "banded" / "banded_0001.jpg").write_bytes(b"not read for the fingerprint")
    assert load_benchmark("dtd", tmp_path).fingerprint == first


def test_fingerprint_follows_the_split_file(tmp_path: Path) -> None:
    build_fixture_root(tmp_path, ["dtd"])
    before = load_benchmark("dtd", tmp_path).fingerprint
    path = tmp_path / "dtd" / "split_zhou_DescribableTextures.json"
    split = json.loads(path.read_text())
    split["test"].pop()
    path.write_text(json.dumps(split))
    assert load_benchmark("dtd", tmp_path).fingerprint != before


def test_fingerprint_follows_the_image_list_and_the_root(tmp_path: Path) -> None:
    build_fixture_root(tmp_path / "a", ["imagenet"])
    build_fixture_root(tmp_path / "b", ["imagenet"])
    before = load_benchmark("imagenet", tmp_path / "a").fingerprint
    assert load_benchmark("imagenet", tmp_path / "b").fingerprint != before
    shutil.copy(tmp_path / "a/imagenet/images/train/n01440764/n01440764_1000.JPEG",
                tmp_path / "a/imagenet/images/train/n01440764/n01440764_2000.JPEG")
    assert load_benchmark("imagenet", tmp_path / "a").fingerprint != before


# ---- bad input ----------------------------------------------------------------------------------------------------

def _rewrite_json(path: Path, edit) -> None:
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))


def _remove(path: Path) -> None:
    shutil.rmtree(path) if path.is_dir() else path.unlink()


def _flatten(folder: Path) -> None:
    """The official ImageNet val layout: every image directly in the folder."""
    for sub in [p for p in folder.iterdir() if p.is_dir()]:
        for image in sub.iterdir():
            image.rename(folder / image.name)
        sub.rmdir()


PETS = "oxford_pets/split_zhou_OxfordPets.json"
BAD_INPUTS = {
    # case: (dataset, fixture datasets, mutation, error type, fragments of the message)
    "missing dataset folder": ("caltech101", [], lambda r: None, DatasetNotFoundError,
                               ["caltech-101", "DATASETS.md", "Nothing is downloaded"]),
    "missing image folder": ("eurosat", ["eurosat"], lambda r: _remove(r / "eurosat/2750"), DatasetNotFoundError,
                             ["eurosat/2750", "DATASETS.md"]),
    "missing split file": ("oxford_pets", ["oxford_pets"], lambda r: _remove(r / PETS), DatasetNotFoundError,
                           ["split_zhou_OxfordPets.json", "1501r8Ber4nNKvmlFVQZ8SeUHTcdTTEqs"]),
    "split file not JSON": ("oxford_pets", ["oxford_pets"], lambda r: (r / PETS).write_text("{not json"),
                            SplitFileError, ["split_zhou_OxfordPets.json", "not valid JSON"]),
    "split file without test": ("oxford_pets", ["oxford_pets"],
                                lambda r: _rewrite_json(r / PETS, lambda s: {"train": s["train"], "val": s["val"]}),
                                SplitFileError, ["split_zhou_OxfordPets.json", "'test'"]),
    "split item with two fields": ("oxford_pets", ["oxford_pets"],
                                   lambda r: _rewrite_json(r / PETS, lambda s: {**s, "val": [["a.jpg", 0]]}),
                                   SplitFileError, ["split_zhou_OxfordPets.json", "item 0 of 'val'"]),
    "absolute image path": ("oxford_pets", ["oxford_pets"],
                            lambda r: _rewrite_json(r / PETS, lambda s: {**s, "val": [["/x/a.jpg", 0, "abyssinian"]]}),
                            SplitFileError, ["split_zhou_OxfordPets.json", "relative"]),
    "label with two names": ("oxford_pets", ["oxford_pets"],
                             lambda r: _rewrite_json(r / PETS, lambda s: {**s, "val": [["a.jpg", 0, "sphynx"]]}),
                             SplitFileError, ["label 0", "'sphynx'"]),
    "caltech split keeps a dropped class": (
        "caltech101", ["caltech101"],
        lambda r: _rewrite_json(r / "caltech-101/split_zhou_Caltech101.json",
                                lambda s: {**s, "test": s["test"] + [["BACKGROUND_Google/image_0001.jpg", 3,
                                                                      "BACKGROUND_Google"]]}),
        SplitFileError, ["BACKGROUND_Google", "drops"]),
    "aircraft unknown variant": ("fgvc_aircraft", ["fgvc_aircraft"],
                                 lambda r: (r / "fgvc_aircraft/images_variant_val.txt").write_text("1234567 B-52\n"),
                                 SplitFileError, ["images_variant_val.txt line 1", "'B-52'"]),
    "aircraft without variants.txt": ("fgvc_aircraft", ["fgvc_aircraft"],
                                      lambda r: _remove(r / "fgvc_aircraft/variants.txt"), DatasetNotFoundError,
                                      ["fgvc_aircraft/variants.txt", "fgvc-aircraft-2013b"]),
    "imagenet without classnames.txt": ("imagenet", ["imagenet"], lambda r: _remove(r / "imagenet/classnames.txt"),
                                        DatasetNotFoundError, ["imagenet/classnames.txt", "drive.google.com"]),
    "imagenet flat val folder": (
        "imagenet", ["imagenet"],
        lambda r: _flatten(r / "imagenet/images/val"),
        SplitFileError, ["images/val", "no class folders", "per wnid"]),
    "imagenet unknown class folder": ("imagenet", ["imagenet"],
                                      lambda r: (r / "imagenet/images/train/n99999999").mkdir(), SplitFileError,
                                      ["n99999999", "classnames.txt"]),
    "variant without any classnames.txt": ("imagenet_a", ["imagenet_a"],
                                           lambda r: _remove(r / "imagenet-adversarial/classnames.txt"),
                                           DatasetNotFoundError,
                                           ["imagenet-adversarial/classnames.txt", "imagenet/classnames.txt"]),
    "imagenet_v2 missing class folder": (
        "imagenet_v2", ["imagenet_v2"],
        lambda r: _remove(r / "imagenetv2/imagenetv2-matched-frequency-format-val/1"), DatasetNotFoundError,
        ["imagenetv2-matched-frequency-format-val", "['1']"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_errors_name_the_file(tmp_path: Path, case: str) -> None:
    name, datasets, mutate, error, fragments = BAD_INPUTS[case]
    build_fixture_root(tmp_path, datasets)
    mutate(tmp_path)
    with pytest.raises(error) as info:
        load_benchmark(name, tmp_path)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_missing_root_says_where(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist.*DATASETS.md") as info:
        load_benchmark("dtd", tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)


@pytest.mark.parametrize("bad, guess", [("imagenet-a", "imagenet_a"), ("caltech", "caltech101"),
                                        ("oxford_pet", "oxford_pets")])
def test_unknown_name_suggests_the_nearest(tmp_path: Path, bad: str, guess: str) -> None:
    with pytest.raises(UnknownNameError, match=f"Did you mean '{guess}'"):
        load_benchmark(bad, tmp_path)
    with pytest.raises(KeyError, match=f"Did you mean '{guess}'"):
        get_dataset(bad, tmp_path)


def test_variant_falls_back_to_imagenet_classnames(tmp_path: Path) -> None:
    build_fixture_root(tmp_path, ["imagenet", "imagenet_r"])
    (tmp_path / "imagenet-rendition" / "classnames.txt").unlink()
    ds = load_benchmark("imagenet_r", tmp_path)
    assert ds.classnames == ["tench", "great white shark"]
    assert ds.info["split_file"] == str(tmp_path / "imagenet" / "classnames.txt")


def test_build_fixture_root_only_builds_what_is_asked(tmp_path: Path) -> None:
    assert build_fixture_root(tmp_path, ["dtd", "imagenet_a"]) == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dtd", "imagenet-adversarial"]
    with pytest.raises(KeyError, match="Did you mean 'dtd'"):
        build_fixture_root(tmp_path, ["dtdd"])


# ---- data check -------------------------------------------------------------------------------------------------

def test_check_full_fixture_is_clean(root: Path) -> None:
    reports = check_root(root)
    assert [r.name for r in reports] == list(EXPECTED)
    for r in reports:
        assert r.found and r.ok and r.problems == [], r.name
        assert r.counts == EXPECTED[r.name][1] and r.num_classes == len(EXPECTED[r.name][0])
        assert r.expected_classes == BENCHMARKS[r.name].num_classes
    assert exit_code(reports) == 0


def test_check_reports_missing_datasets(tmp_path: Path) -> None:
    build_fixture_root(tmp_path, ["dtd"])
    reports = check_root(tmp_path, ["dtd", "sun397"], quick=True)
    assert [(r.name, r.found, r.missing) for r in reports] == [("dtd", True, False), ("sun397", False, True)]
    assert reports[1].path == tmp_path / "sun397"
    assert exit_code(reports) == 1
    text = format_report(reports)
    assert "sun397" in text and str(tmp_path / "sun397") in text and "1 of 2 datasets ready" in text


def test_check_collects_missing_and_corrupt_images_in_one_run(tmp_path: Path) -> None:
    build_fixture_root(tmp_path, ["food101", "dtd"])
    images = tmp_path / "food-101" / "images"
    (images / "apple_pie" / "1000001.jpg").unlink()
    (images / "baklava" / "1000205.jpg").write_bytes(b"\xff\xd8 truncated")
    full = {r.name: r for r in check_root(tmp_path, ["food101", "dtd"])}
    food = full["food101"]
    assert (food.missing_images, food.unreadable_images, food.problem_count) == (1, 1, 2)
    assert any("missing image" in p and "1000001.jpg" in p and "'apple pie'" in p for p in food.problems)
    assert any("unreadable image" in p and "1000205.jpg" in p for p in food.problems)
    assert full["dtd"].ok  # the check goes on to the next dataset
    quick = check_root(tmp_path, ["food101"], quick=True)[0]
    assert (quick.missing_images, quick.unreadable_images) == (1, 0)  # --quick does not open images
    assert exit_code(full.values()) == 1


def test_check_counts_every_problem_and_caps_the_printed_list(tmp_path: Path) -> None:
    build_fixture_root(tmp_path, ["dtd"])
    for p in (tmp_path / "dtd" / "images").glob("*/*.jpg"):
        p.unlink()
    report = check_root(tmp_path, ["dtd"], quick=True)[0]
    assert report.missing_images == report.problem_count == 15
    text = format_report([report], max_problems=4)
    assert text.count("  - missing image") == 4 and "... and 11 more" in text and "15 problems" in text


def test_check_reports_unreadable_split_files_without_raising(tmp_path: Path) -> None:
    build_fixture_root(tmp_path, ["oxford_pets", "dtd"])
    (tmp_path / PETS).write_text("[")
    reports = check_root(tmp_path, ["oxford_pets", "dtd"])
    assert reports[0].found and reports[0].problem_count == 1
    assert "cannot read the dataset" in reports[0].problems[0] and "not valid JSON" in reports[0].problems[0]
    assert reports[1].ok


def test_main_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    build_fixture_root(tmp_path, ["dtd", "imagenet", "imagenet_a"])
    assert main_check(str(tmp_path), "dtd, imagenet,imagenet_a", quick=False) == 0
    out = capsys.readouterr().out
    assert "dataset" in out and "imagenet_a" in out and "3 of 3 datasets ready" in out
    assert main_check(str(tmp_path), None, quick=True) == 1  # the others are missing
    assert "3 of 15 datasets ready" in capsys.readouterr().out
    assert main_check(str(tmp_path), "dtdd", quick=True) == 2
    assert "Did you mean 'dtd'" in capsys.readouterr().err
    assert main_check(str(tmp_path / "nowhere"), None, quick=True) == 2
    assert "nowhere" in capsys.readouterr().err
