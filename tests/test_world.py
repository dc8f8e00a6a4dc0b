"""Notebook 00's characterisation of the embedded world: per-task properties from hand-made results whose answers
are known, the benchmark's data file, the suite's targets, the example images, and the README's generated table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adaptlib.data.registry import dataset_description, dataset_group
from adaptlib.measures.structure import example_images
from adaptlib.study import world as W
from adaptlib.study.findings import update_readme

from test_study import frame, rows

STRUCTURE = pd.DataFrame({"n": [480, 500, 480], "intra_inter_ratio": [2.9, 0.8, 1.4]},
                         index=["colour", "digits", "shape"])


def tasks_frame() -> pd.DataFrame:
    records = []
    for ds, (zs, lp) in {"colour": (0.95, 0.97), "digits": (0.12, 0.70), "shape": (0.6, 0.7)}.items():
        records += rows("zeroshot", ds, 16, [1], [zs]) + rows("linear_probe", ds, 16, [1, 2], [lp, lp])
    classes = pd.Series({"colour": 8, "digits": 10, "shape": 8})
    groups = pd.Series({"colour": "main", "digits": "far", "shape": "main"})
    return W.task_properties(frame(records), classes, STRUCTURE, groups, "tiny/embedded")


def test_task_properties_measures_every_task_and_lists_the_far_group_last():
    t = tasks_frame()
    assert list(t.columns) == W.COLUMNS
    assert t["task"].tolist() == ["colour", "shape", "digits"] and t["group"].tolist() == ["main", "main", "far"]
    shape = t.set_index("task").loc["shape"]
    assert shape["test_images"] == 480 and shape["intra_inter_ratio"] == pytest.approx(1.4)
    assert shape["rtd"] == pytest.approx(1 / (8 * 0.6))
    assert shape["one_minus_kappa"] == pytest.approx(1 - (0.6 - 1 / 8) / (1 - 1 / 8))
    assert shape["headroom"] == pytest.approx(0.1)


def test_task_properties_need_the_structure_of_every_task():
    records = rows("zeroshot", "novel", 16, [1], [0.2]) + rows("linear_probe", "novel", 16, [1], [0.3])
    with pytest.raises(KeyError, match="make measures"):
        W.task_properties(frame(records), pd.Series({"novel": 6}), STRUCTURE, pd.Series(dtype=str), "tiny")


def test_the_benchmark_file_has_the_eleven_datasets_in_the_ranges_the_brief_states():
    b = W.load_benchmark()
    assert len(b) == 11 and b["source"].str.len().min() > 20
    assert b["classes"].min() == 10 and b["classes"].max() == 1000 and b["classes"].median() == 101
    assert (b["intra_inter_ratio"] > 1).all()
    assert b["one_minus_kappa"].min() == pytest.approx(0.075, abs=0.01)
    assert b["one_minus_kappa"].max() == pytest.approx(0.76, abs=0.01)
    assert b.set_index("dataset").loc["EuroSAT", "rtd"] == pytest.approx(0.184, rel=0.03)


@pytest.mark.parametrize("column, value, message", [
    ("source", "", "every row needs a source"),
    ("zero_shot", None, "lacks column"),
])
def test_a_bad_benchmark_file_is_refused_with_its_name(tmp_path, column, value, message):
    b = pd.read_csv(W.BENCHMARK_FILE)
    if value is None:
        b = b.drop(columns=[column])
    else:
        b.loc[0, column] = value
    path = tmp_path / "bench.csv"
    b.to_csv(path, index=False)
    with pytest.raises(ValueError, match=message) as err:
        W.load_benchmark(path)
    assert "bench.csv" in str(err.value)


def test_the_targets_hold_or_fail_as_measured():
    t = tasks_frame()
    targets = W.issue_targets(t)
    assert not targets.loc["main tasks", "holds"] and targets.loc["main tasks", "measured"] == 2
    assert targets.loc["tasks above 95% zero-shot", "holds"]  # colour at exactly 95% is not above it
    assert not W.issue_targets(t.assign(zero_shot=0.96)).loc["tasks above 95% zero-shot", "holds"]
    assert targets.loc["tasks within twice chance", "holds"]  # shape 60% and colour 95% on 8 classes: above 25%
    assert targets.loc["positive headroom", "holds"]
    assert targets.loc["intra/inter ratio above 1", "holds"]
    assert not targets.loc["test images per task", "holds"]
    kappa = np.linspace(0.07, 0.76, 22)
    many = pd.DataFrame({"task": [f"t{i}" for i in range(22)], "backbone": "b", "group": "main", "classes": 60,
                         "test_images": 1200, "zero_shot": 0.5, "one_minus_kappa": kappa, "rtd": 0.03,
                         "intra_inter_ratio": 1.2, "headroom": 0.1})
    assert W.issue_targets(many)["holds"].all()


def test_the_wilson_interval_narrows_with_test_images():
    lo, hi = W.zero_shot_ci(pd.Series([0.5, 0.5]), pd.Series([100, 10_000]))
    assert lo[0] < lo[1] < 0.5 < hi[1] < hi[0]
    assert hi[1] - lo[1] == pytest.approx(2 * 1.96 * 0.005, rel=0.01)


def test_far_tasks_and_descriptions_come_from_the_registry():
    assert dataset_group("novel") == dataset_group("digits") == "far" == dataset_group("novel@shift=0.5")
    assert dataset_group("shape") == dataset_group("imagenet") == "main"
    assert dataset_description("shape").startswith("near-domain") and dataset_description("imagenet") == ""


def test_example_images_are_one_per_class_and_round_trip_as_hex():
    got = example_images("shape", max_classes=3)
    assert [r["label"] for r in got] == [0, 1, 2] and got[0]["classname"] == "circle"
    image = np.frombuffer(bytes.fromhex(got[0]["pixels"]), dtype=np.uint8).reshape(got[0]["height"],
                                                                                    got[0]["width"], 3)
    assert image.shape == (32, 32, 3) and image.std() > 0
    assert example_images("shape", max_classes=3) == got  # deterministic


def test_the_readme_world_block_is_replaced_and_a_missing_block_named(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- world:start -->\nold\n<!-- world:end -->\nb\n")
    assert update_readme(readme, "| new |\n", block="world")
    assert readme.read_text() == "a\n<!-- world:start -->\n| new |\n<!-- world:end -->\nb\n"
    assert not update_readme(readme, "| new |\n", block="world")
    with pytest.raises(ValueError, match="no findings block"):
        update_readme(readme, "x")
