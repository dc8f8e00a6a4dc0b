import math

import pandas as pd
import pytest

from adaptlib.analysis.difficulty import (
    chance_corrected_error,
    difficulty_table,
    headroom,
    relative_transfer_difficulty,
)

# Zero-shot accuracies back-computed from the RTDs APEX reports (study brief), DTD (no RTD printed) at 0.445;
# the linear-probe column is synthetic: it only has to be a valid accuracy.
APEX = [  # dataset, classes, zero_shot, reported RTD (None: not printed)
    ("EuroSAT", 10, 0.5435, 0.184),
    ("DTD", 47, 0.445, None),
    ("FGVCAircraft", 100, 0.2457, 0.0407),
    ("OxfordPets", 37, 0.8979, 0.0301),
    ("Flowers102", 102, 0.6450, 0.0152),
    ("UCF101", 101, 0.6972, 0.0142),
    ("Food101", 101, 0.8610, 0.0115),
    ("Caltech101", 100, 0.9259, 0.0108),
    ("StanfordCars", 196, 0.6626, 0.0077),
    ("SUN397", 397, 0.6629, 0.0038),
    ("ImageNet", 1000, 0.7143, 0.0014),
]


def apex_table() -> pd.DataFrame:
    rows = [(d, c, zs, min(1.0, zs + 0.1)) for d, c, zs, _ in APEX]
    return pd.DataFrame(rows, columns=["dataset", "classes", "zero_shot", "linear_probe_16"])


@pytest.mark.parametrize("dataset,classes,zero_shot,reported", [r for r in APEX if r[3] is not None])
def test_rtd_matches_apex_to_printed_precision(dataset, classes, zero_shot, reported):
    digits = 3 if reported >= 0.1 else 4  # APEX prints 0.184 and 0.0407
    assert round(relative_transfer_difficulty(zero_shot, classes), digits) == reported


@pytest.mark.parametrize("classes", [2, 10, 1000])
def test_rtd_and_kappa_at_chance_and_perfect(classes):
    chance = 1 / classes
    assert relative_transfer_difficulty(chance, classes) == pytest.approx(1.0)
    assert relative_transfer_difficulty(1.0, classes) == pytest.approx(chance)
    assert chance_corrected_error(chance, classes) == pytest.approx(1.0)
    assert chance_corrected_error(1.0, classes) == pytest.approx(0.0)


@pytest.mark.parametrize("acc,classes,expected", [(0.75, 2, 0.5), (0.55, 10, 0.5), (0.0, 4, 4 / 3)])
def test_chance_corrected_error_values(acc, classes, expected):
    assert chance_corrected_error(acc, classes) == pytest.approx(expected)


@pytest.mark.parametrize("lp,zs,expected", [(0.8, 0.6, 0.2), (0.5, 0.6, -0.1), (0.7, 0.7, 0.0)])
def test_headroom(lp, zs, expected):
    assert headroom(lp, zs) == pytest.approx(expected)


def test_table_reproduces_apex_ranking_and_kappa_reorders_it():
    out = difficulty_table(apex_table())
    assert list(out["dataset"]) == [r[0] for r in APEX]  # rows keep their order
    assert list(out.sort_values("rank_rtd")["dataset"]) == [r[0] for r in APEX]
    assert list(out["rank_rtd"]) == list(range(1, len(APEX) + 1))
    ranks = out.set_index("dataset")
    # RTD calls Caltech101 harder than ImageNet only because of the class count; the chance-corrected error
    # (ImageNet 0.286 vs Caltech101 0.075) says the opposite
    assert ranks.loc["Caltech101", "rank_rtd"] < ranks.loc["ImageNet", "rank_rtd"]
    assert ranks.loc["ImageNet", "rank_zero_shot_error_kappa"] < ranks.loc["Caltech101", "rank_zero_shot_error_kappa"]
    assert ranks.loc["ImageNet", "zero_shot_error_kappa"] == pytest.approx(1 - (0.7143 - 0.001) / 0.999)
    assert ranks.loc["FGVCAircraft", "rank_zero_shot_error_kappa"] == 1  # the lowest accuracy above chance


def test_table_ties_share_the_smaller_rank():
    t = pd.DataFrame({"dataset": ["a", "b", "c"], "classes": [10, 10, 10], "zero_shot": [0.5, 0.5, 0.9],
                      "linear_probe_16": [0.6, 0.7, 0.9]})
    out = difficulty_table(t)
    assert list(out["rank_rtd"]) == [1, 1, 3]
    assert list(out["rank_headroom"]) == [2, 1, 3]
    assert out["headroom"].tolist() == pytest.approx([0.1, 0.2, 0.0])


@pytest.mark.parametrize("change,message", [
    ({"zero_shot": [54.35, 0.5]}, "percentages"),
    ({"zero_shot": [0.0, 0.5]}, r"\(0, 1\]"),
    ({"linear_probe_16": [-0.1, 0.5]}, r"\[0, 1\]"),
    ({"zero_shot": [math.nan, 0.5]}, "NaN"),
    ({"classes": [1, 10]}, "integers >= 2"),
    ({"classes": [2.5, 10]}, "integers >= 2"),
    ({"dataset": ["x", "x"]}, "unique"),
])
def test_table_rejects_bad_values(change, message):
    t = pd.DataFrame({"dataset": ["x", "y"], "classes": [10, 10], "zero_shot": [0.5, 0.5],
                      "linear_probe_16": [0.6, 0.6]})
    for col, values in change.items():
        t[col] = values
    with pytest.raises(ValueError, match=message):
        difficulty_table(t)


def test_table_needs_its_columns():
    with pytest.raises(ValueError, match="linear_probe_16"):
        difficulty_table(pd.DataFrame({"dataset": ["x"], "classes": [10], "zero_shot": [0.5]}))
    with pytest.raises(TypeError, match="DataFrame"):
        difficulty_table([("x", 10, 0.5, 0.6)])
