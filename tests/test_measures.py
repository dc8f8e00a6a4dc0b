"""The measures stage on a tiny results store (random-weight tiny CLIP, a few steps per run): its tables and their
columns, exact round trips through the files, the folder written in one piece, stale measures refused, the
command line, and the drift and CKA of saved runs."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adaptlib.cli import main
from adaptlib.measures import layout
from adaptlib.measures.stage import compute_measures, measure, write_measures
from adaptlib.study import drift as R
from adaptlib.study.notebook import Measures, load_measures

PROFILE = """\
name: tiny-measures
backbone: adaptlib-test
pretrained: random
run_defaults: {crop_scale: [1, 1], train: {max_steps: 2}}
datasets: [shape, colour]
shots: [1, 2]
seeds: [1]
methods:
  zeroshot: {}
  linear_probe: {}
  clipfit: {save_state: true, train: {max_steps: 3, lr: 0.5}}
  clip_lora: {save_state: true, train: {max_steps: 3, lr: 0.5}}
  vpt_deep: {save_state: true}
settings:
  few_shot: {methods: [linear_probe]}
  base_to_new: {datasets: [colour], shots: [2], methods: [zeroshot]}
groups:
  zeroshot: {setting: few_shot, methods: [zeroshot], shots: [2]}
  drift: {setting: few_shot, methods: [clipfit, clip_lora, vpt_deep], datasets: [shape, colour], shots: [2]}
"""

STRUCTURE = ["n", "classes", "inter_class_similarity", "intra_class_similarity", "intra_inter_ratio", "spread",
             "fisher_ratio", "silhouette", "text_inter_class_similarity", "text_mean_nearest_neighbour_similarity",
             "zero_shot_accuracy"]
DRIFT = ["name", "tower", "layer", "module", "param", "numel", "norm0", "sq_l2", "l2", "rel_l2", "rms", "max_abs",
         "changed", "trainable", "method", "dataset", "seed", "key"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """(profile file, results folder) of a swept and collected tiny profile, with its data caches of its own."""
    from adaptlib.runs.sweep import run_sweep
    from adaptlib.runs.table import write_tables

    root = tmp_path_factory.mktemp("measures")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADAPTLIB_DATA_DIR", str(root / "data"))
        profile = root / "tiny-measures.yaml"
        profile.write_text(PROFILE)
        results = root / "results"
        summary = run_sweep(profile, results=results, progress=False)
        assert summary.ok, summary.report()
        write_tables(results)
        yield profile, results


@pytest.fixture(scope="module")
def computed(store):
    profile, results = store
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADAPTLIB_DATA_DIR", str(results.parent / "data"))
        return compute_measures(profile, results, progress=False)


@pytest.fixture()
def written(store, computed, tmp_path):
    """A copy of the results folder (results.csv and state files) with its measures written."""
    import shutil

    _, results = store
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    write_measures(copy, *computed)
    return copy


# ------------------------------------------------------------------------------------------------ the tables
@pytest.mark.parametrize("name, columns, keys", [
    ("tasks", ["dataset", "classes", "group", "description"], ["colour", "shape"]),
    ("class_structure_test", ["dataset", *STRUCTURE], ["colour", "shape"]),
    ("class_structure_train", ["dataset", *STRUCTURE], ["colour", "shape"]),
    ("class_distance", ["dataset", "class_distance"], ["colour"]),
])
def test_task_tables(computed, name, columns, keys):
    table = computed[0][name]
    assert list(table.columns) == columns
    assert table["dataset"].tolist() == keys


def test_the_examples_table_holds_one_test_image_per_class_read_back_as_arrays(written):
    from adaptlib.study.notebook import load_measures

    measures = load_measures(written)
    examples = measures.examples
    assert examples.groupby("dataset").size().to_dict() == {"colour": 8, "shape": 8}
    assert examples["image"].iloc[0].shape == (32, 32, 3) and examples["image"].iloc[0].dtype == np.uint8
    assert measures.groups.to_dict() == {"colour": "main", "shape": "main"}
    assert measures.descriptions["shape"].startswith("near-domain")


@pytest.mark.parametrize("dataset, classes", [("colour", 8), ("shape", 8)])
def test_class_counts_and_sample_sizes(computed, dataset, classes):
    from adaptlib.data.registry import get_dataset

    tables, manifest = computed
    assert tables["tasks"].set_index("dataset").loc[dataset, "classes"] == classes
    train = tables["class_structure_train"].set_index("dataset").loc[dataset]
    test = tables["class_structure_test"].set_index("dataset").loc[dataset]
    assert train["n"] == manifest["class_structure_train"]["shots"] * classes == 2 * classes  # the few-shot sample
    assert test["n"] == len(get_dataset(dataset).split("test")) and test["classes"] == classes
    assert 0 <= test["zero_shot_accuracy"] <= 1 and -1 <= test["inter_class_similarity"] <= 1


def test_class_distance_is_apex_dbar(computed):
    """APEX's dbar, recomputed here from one template's normalised text features of the frozen backbone."""
    import torch
    import torch.nn.functional as F

    from adaptlib.backbones import load_backbone
    from adaptlib.data.protocol import base_new_classes
    from adaptlib.data.registry import get_dataset

    backbone = load_backbone("adaptlib-test", None)
    names = get_dataset("colour").classnames
    with torch.no_grad():
        feats = F.normalize(backbone.model.encode_text(backbone.tokenizer([f"a photo of a {c}." for c in names])),
                            dim=-1)
    base, new = base_new_classes(len(names))
    expected = float((1 - (feats[new] @ feats[base].T).mean(dim=1)).mean())
    got = computed[0]["class_distance"].set_index("dataset").loc["colour", "class_distance"]
    assert got == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("method, towers, modules", [
    ("clipfit", {"image", "text"}, None),
    ("clip_lora", {"image", "text"}, {"attn.in_proj"}),  # LoRA's q, k, v merged into the in-projection
])
def test_drift_of_saved_runs(computed, method, towers, modules):
    drift = computed[0]["drift"]
    assert list(drift.columns) == DRIFT
    rows = drift[drift["method"] == method]
    assert set(rows["dataset"]) == {"colour", "shape"} and set(rows["tower"]) == towers
    assert (rows["sq_l2"] > 0).all() and rows["changed"].all()
    if modules is not None:
        assert set(rows["module"]) == modules
    if method == "clipfit":  # text FFN output biases and image LayerNorms, nothing else
        assert set(rows.loc[rows["tower"] == "text", "module"]) == {"mlp.c_proj"}
        assert set(rows.loc[rows["tower"] == "image", "module"].str[:2]) == {"ln"}
        profile = R.layer_profile(drift, "clipfit", "text", "mlp.c_proj")
        assert profile["layer"].tolist() == [0, 1]
        assert R.first_layernorm_changes_most(drift)["most_changed"].startswith("layer")


def test_drift_matches_the_state_file(store, computed):
    from adaptlib.analysis import parameter_drift
    from adaptlib.methods.state import load_adapted_state
    from adaptlib.measures.stage import read_runs

    runs = read_runs(store[1])
    row = runs[(runs["method_label"] == "clipfit") & (runs["dataset"] == "colour")].iloc[0]
    state = load_adapted_state(row["state_file"])
    expected = parameter_drift(state.initial, state.final)
    got = computed[0]["drift"].query("key == @row.key").reset_index(drop=True)
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_exact=True)


def test_cka_one_row_per_method_on_the_probe_task(computed):
    tables, manifest = computed
    cka = tables["cka"]
    assert manifest["cka"] == {"dataset": "colour", "images": 256}  # the first task alphabetically; 256 images
    assert cka["method"].tolist() == ["clip_lora", "clipfit", "vpt_deep"]  # the table's (key) order
    assert set(cka["dataset"]) == {"colour"} and (cka["images"] == manifest["cka"]["images"]).all()
    layers = [c for c in cka.columns if c.isdigit()]
    assert layers == ["0", "1"]  # adaptlib-test: two image blocks
    measured = cka[cka["note"] == ""]
    assert measured["method"].tolist() == ["clip_lora", "clipfit"]
    values = measured[layers].to_numpy(float)
    assert np.all((values > 0) & (values <= 1 + 1e-9))
    vpt = cka[cka["method"] == "vpt_deep"].iloc[0]
    assert "visual-prompt" in vpt["note"] and vpt[layers].isna().all()


def test_cka_of_an_unchanged_model_is_one(tmp_path):
    """Frozen and adapted are the same function when the parts changed nothing (an untrained LayerNorm tuning)."""
    from adaptlib.backbones import load_backbone
    from adaptlib.measures.drift import cka_profile, probe_images, run_drift
    from adaptlib.methods.model import AdaptedCLIP
    from adaptlib.methods.registry import build_part
    from adaptlib.methods.state import save_adapted_state

    model = AdaptedCLIP(load_backbone("adaptlib-test", None), ["a", "b"], ["{}"], [build_part("layernorm", {})])
    path = save_adapted_state(model, tmp_path / "untrained.safetensors",
                              backbone={"name": "adaptlib-test", "pretrained": None, "quick_gelu": None})
    images = probe_images(load_backbone("adaptlib-test", None), "colour", 32)
    assert images.shape[0] == 32
    assert cka_profile(path, images) == pytest.approx([1.0, 1.0], abs=1e-9)
    assert run_drift(path).empty  # nothing changed: no row


# ------------------------------------------------------------------------------------------------ the files
@pytest.mark.parametrize("name", sorted(layout.TABLES))
def test_tables_read_back_exactly(computed, written, name):
    back = layout.read_table(layout.measures_dir(written), name)
    pd.testing.assert_frame_equal(back.fillna({"note": ""}) if name == "cka" else back, computed[0][name],
                                  check_exact=True, check_dtype=name not in ("cka",))


@pytest.mark.parametrize("values", [
    [0.1 + 0.2, 1 / 3, 1e-300, 5e-324, -0.0, 123456789.123456789],
    [math.inf, -math.inf, math.nan, 1.0],
    [0.9999999974308078, 0.9999999950067586, 2.0 ** -52, 1 - 2.0 ** -53],
])
def test_floats_round_trip_bit_for_bit(tmp_path, values):
    df = pd.DataFrame({"dataset": [f"t{i}" for i in range(len(values))], "class_distance": values})
    (tmp_path / "class_distance.csv").write_text(layout.table_text(df))
    back = layout.read_table(tmp_path, "class_distance")["class_distance"].to_numpy()
    assert np.array_equal(back.view(np.int64)[~np.isnan(back)],
                          np.asarray(values).view(np.int64)[~np.isnan(values)])


def test_notebook_reader(computed, written):
    m = load_measures(written)
    assert m.classes.to_dict() == {"colour": 8, "shape": 8} and m.classes.index.name is None
    structure = m.class_structure("test", ["shape", "colour"])
    assert structure.index.tolist() == ["shape", "colour"] and structure.index.name is None
    assert list(structure.columns) == STRUCTURE and (structure.dtypes == "float64").all()
    assert m.class_distance(pd.Index(["colour"], name="dataset")).index.name is None
    assert m.drift["changed"].dtype == bool and m.drift["layer"].dtype == "int64"
    ckas, notes = m.cka()
    assert list(ckas) == ["clip_lora", "clipfit"] and list(notes) == ["vpt_deep"]
    with pytest.raises(KeyError, match="novel"):
        m.class_structure("train", ["novel"])
    with pytest.raises(ValueError, match="'test' or 'train'"):
        m.class_structure("val")


def test_no_saved_state_gives_empty_tables_and_the_notebooks_error(computed, written):
    tables, manifest = computed
    empty = dict(tables, drift=tables["drift"].iloc[0:0], cka=tables["cka"].iloc[0:0])
    write_measures(written, empty, manifest)
    m = Measures(written)
    with pytest.raises(ValueError, match="no run saved its state"):
        m.drift
    assert m.cka() == ({}, {})


# ------------------------------------------------------------------------------------------------ the folder
def test_unchanged_measures_leave_the_folder_untouched(computed, written):
    folder = layout.measures_dir(written)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert write_measures(written, *computed) is False
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    changed = dict(computed[0], tasks=computed[0]["tasks"].assign(classes=9))
    assert write_measures(written, changed, computed[1]) is True
    assert load_measures(written).classes.tolist() == [9, 9]


def test_a_failure_leaves_the_previous_measures(computed, written, monkeypatch):
    folder = layout.measures_dir(written)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    calls = []

    def failing(target, text):
        calls.append(target)
        if len(calls) == 3:
            raise OSError("disk full")
        Path(target).write_text(text)

    monkeypatch.setattr("adaptlib.measures.stage.atomic_write_text", failing)
    changed = dict(computed[0], tasks=computed[0]["tasks"].assign(classes=9))
    with pytest.raises(OSError, match="disk full"):
        write_measures(written, changed, computed[1])
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in written.iterdir() if p.name.startswith(".measures")) == []


def test_stale_measures_are_refused(written):
    csv = written / "results.csv"
    csv.write_text(csv.read_text() + "\n")
    with pytest.raises(ValueError, match="other results"):
        load_measures(written)


def test_missing_measures_say_how_to_make_them(store, tmp_path):
    with pytest.raises(FileNotFoundError, match="make measures"):
        load_measures(tmp_path)


def test_the_store_ignores_the_measures(written):
    """The results store never takes a measures file for a result file (nor moves it to _invalid/)."""
    from adaptlib.runs.table import collect_with_problems

    _, problems = collect_with_problems(written)
    assert problems == []


# ------------------------------------------------------------------------------------------------ command line
def test_cli_writes_the_measures(store, tmp_path, capsys, monkeypatch):
    import shutil

    profile, results = store
    monkeypatch.setenv("ADAPTLIB_DATA_DIR", str(results.parent / "data"))
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    assert main(["measures", "--profile", str(profile), "--results", str(copy), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "(written)" in out and "drift" in out
    manifest = layout.read_manifest(layout.measures_dir(copy))
    assert manifest["profile"] == "tiny-measures" and manifest["backbone"]["name"] == "adaptlib-test"
    assert manifest["results_sha256"] == layout.results_digest(copy)
    assert sorted(p.name for p in layout.measures_dir(copy).iterdir()) == sorted(
        [f"{t}.csv" for t in layout.TABLES] + [layout.MANIFEST])
    assert main(["measures", "--profile", str(profile), "--results", str(copy), "--quiet"]) == 0
    assert "(unchanged)" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--profile", "smoke", "--results", "{tmp}/none"], "results.csv"),
    (["--profile", "no-such-profile", "--results", "{tmp}"], "no-such-profile"),
])
def test_cli_errors(tmp_path, capsys, args, message):
    (tmp_path / "results.csv").write_text("key,dataset\nk,colour\n")
    code = main(["measures", *[a.format(tmp=tmp_path) for a in args], "--quiet"])
    assert code == 2 and message in capsys.readouterr().err


def test_measure_api_matches_the_cli(store, tmp_path, monkeypatch):
    import shutil

    profile, results = store
    monkeypatch.setenv("ADAPTLIB_DATA_DIR", str(results.parent / "data"))
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    out = measure(str(profile), copy, progress=False)
    assert out["changed"] and out["folder"] == layout.measures_dir(copy)
    assert os.path.isfile(out["folder"] / layout.MANIFEST)
