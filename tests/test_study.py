"""The study layer on hand-made result tables whose answers are known."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from adaptlib.study import difficulty as D
from adaptlib.study import drift as R
from adaptlib.study import variance as V
from adaptlib.study.tables import (average_curve, base_to_new_table, few_shot_long, few_shot_matrix,
                                   harmonic_mean)
from adaptlib.utils.paths import REPO_ROOT


def rows(method, dataset, shots, seeds, acc, setting="few_shot", **metrics):
    out = []
    for seed, a in zip(seeds, acc):
        out.append({"method_label": method, "method": method, "dataset": dataset, "setting": setting, "shots": shots,
                    "seed": seed, "accuracy": a if setting == "few_shot" else np.nan, **metrics})
    return out


def frame(records) -> pd.DataFrame:
    df = pd.DataFrame(records)
    df["task"] = df["dataset"].str.split("@").str[0]
    df["dialled"] = df["dataset"].str.contains("@")
    return df


def test_zero_shot_repeats_across_shots_and_seeds_are_averaged():
    df = frame(rows("zeroshot", "shape", 16, [1], [0.5]) + rows("coop", "shape", 1, [1, 2], [0.4, 0.6]) +
               rows("coop", "shape", 16, [1, 2], [0.7, 0.9]))
    long = few_shot_long(df)
    zs = long[long["method"] == "zeroshot"].sort_values("shots")
    assert zs["shots"].tolist() == [1, 16] and zs["mean"].tolist() == [50.0, 50.0]
    coop = long[(long["method"] == "coop") & (long["shots"] == 1)].iloc[0]
    assert coop["mean"] == pytest.approx(50.0) and coop["seeds"] == 2
    assert coop["std"] == pytest.approx(np.std([40, 60], ddof=1))
    curve = average_curve(long)
    assert curve.loc["coop", 16] == pytest.approx(80.0)
    matrix = few_shot_matrix(long, 16)
    assert matrix.loc["coop", "average"] == pytest.approx(80.0)


def test_base_to_new_takes_the_hm_of_the_averages():
    records = []
    for ds, (b, n) in {"shape": (0.9, 0.5), "colour": (0.7, 0.7)}.items():
        records += rows("coop", ds, 16, [1], [None], setting="base_to_new", base_accuracy=b, new_accuracy=n)
    table = base_to_new_table(frame(records))
    assert table.loc["coop", "base"] == pytest.approx(80.0) and table.loc["coop", "new"] == pytest.approx(60.0)
    assert table.loc["coop", "hm"] == pytest.approx(harmonic_mean(80, 60))
    per_task_hm = np.mean([harmonic_mean(90, 50), harmonic_mean(70, 70)])
    assert table.loc["coop", "hm"] != pytest.approx(per_task_hm)  # APEX's averaged HMs would differ


def test_task_difficulty_on_embedded_tasks():
    records = []
    for ds, (zs, lp) in {"colour": (0.95, 0.97), "digits": (0.12, 0.70), "shape": (0.6, 0.7)}.items():
        records += rows("zeroshot", ds, 16, [1], [zs]) + rows("linear_probe", ds, 16, [1, 2], [lp, lp])
    classes = pd.Series({"colour": 8, "digits": 10, "shape": 8, "novel": 6})  # as Measures.classes reads them
    diff = D.task_difficulty(frame(records), classes)
    assert diff.loc["digits", "classes"] == 10 and diff.loc["colour", "classes"] == 8
    assert diff["classes"].dtype == "int64" and list(diff.index) == ["colour", "digits", "shape"]
    assert diff.loc["digits", "rtd"] == pytest.approx(1 / (10 * 0.12))
    assert diff.loc["digits", "rank_zero_shot_error_kappa"] == 1
    assert diff.loc["digits", "headroom"] == pytest.approx(0.58)


def test_task_difficulty_needs_every_class_count():
    records = rows("zeroshot", "shape", 16, [1], [0.6]) + rows("linear_probe", "shape", 16, [1], [0.7])
    with pytest.raises(KeyError, match="make measures"):
        D.task_difficulty(frame(records), {"colour": 8})


def test_ensemble_sweep_and_claim():
    records = []
    for ds, new_adaptive in {"a": 0.8, "b": 0.6}.items():
        records += rows("apex", ds, 16, [1], [None], setting="base_to_new", base_accuracy=0.9,
                        new_accuracy=new_adaptive, **{"base_accuracy@alpha=0": 0.7, "new_accuracy@alpha=0": 0.75,
                                                      "base_accuracy@alpha=1": 0.9, "new_accuracy@alpha=1": 0.65,
                                                      "hm@alpha=0": 0.72, "hm@alpha=1": 0.76})
    sweep = D.ensemble_sweep(frame(records))
    assert sweep.loc["a", "oracle_alpha"] == 1.0  # chosen on test: labelled an oracle
    assert sweep.loc["a", "hm_adaptive"] == pytest.approx(harmonic_mean(90, 80))
    seeds = D.ensemble_seeds(frame(records))
    assert (seeds["hm_adaptive"] - seeds["hm@1"] > 0).tolist() == [True, False]  # task b: 60 new < 65 at alpha=1


def test_dial_grid_and_winner():
    records = []
    for inter, intra, best in [(0.5, 0.0, "coop"), (1.0, 0.8, "layernorm")]:
        ds = f"shape@inter={inter:g},intra={intra:g}"
        for m in V.THREE:
            records += rows(m, ds, 16, [1, 2], [0.9, 0.9] if m == best else [0.5, 0.5])
    grid = V.dial_grid(frame(records))
    assert set(grid["inter"]) == {0.5, 1.0}
    assert grid.loc["shape@inter=0.5,intra=0", "winner"] == "coop"
    assert grid.loc["shape@inter=1,intra=0.8", "winner"] == "layernorm"


def test_hybrid_rule_reads_measures_relative_to_the_median():
    structure = pd.DataFrame({
        "text_inter_class_similarity": [0.9, 0.2, 0.2, 0.2],
        "zero_shot_accuracy": [0.9, 0.9, 0.9, 0.9],
        "fisher_ratio": [0.1, 5.0, 0.1, 0.1],
        "intra_class_similarity": [0.9, 0.9, 0.1, 0.9],
    }, index=["names_alike", "separable", "varied", "plain"])
    rule = V.hybrid_rule(structure)
    assert rule.loc["names_alike", "choice"] == "coop"
    assert rule.loc["separable", "choice"] == "clip_adapter"
    assert rule.loc["varied", "choice"] == "layernorm"
    assert rule.loc["plain", "choice"] == "prompt+adapter+ln"


def test_hybrid_comparison():
    records = []
    accs = {"coop": (0.6, 0.4), "clip_adapter": (0.4, 0.6), "layernorm": (0.5, 0.5), "prompt+adapter": (0.6, 0.6)}
    for method, (a, b) in accs.items():
        records += rows(method, "t1", 16, [1], [a]) + rows(method, "t2", 16, [1], [b])
    df = frame(records)
    rule = pd.DataFrame({"choice": ["coop", "clip_adapter"]}, index=["t1", "t2"])
    comparison = V.hybrid_comparison(df, rule)
    assert comparison["rule"].tolist() == [60.0, 60.0]
    seeds = V.hybrid_seeds(df, rule, 16)
    assert seeds["rule"].tolist() == [60.0, 60.0]
    oracle = V.with_oracle(seeds)
    assert oracle[V.ORACLE].tolist() == [60.0, 60.0]


def test_layer_profile_and_first_layernorm_on_a_drift_table():
    """The drift table as the measures stage writes it (per-tensor rows of two tasks): the study reads it."""
    records = []
    for dataset, scale in (("a", 1.0), ("b", 3.0)):
        for layer, module, rel in ((-1, "ln_pre", 0.9), (0, "ln_1", 0.5), (1, "ln_2", 0.1)):
            records.append({"method": "clipfit", "dataset": dataset, "tower": "image", "layer": layer,
                            "module": module, "param": "weight", "name": f"{layer}.{module}", "numel": 4,
                            "norm0": 1.0, "sq_l2": (scale * rel) ** 2, "rel_l2": scale * rel})
    drift = pd.DataFrame(records)
    profile = R.layer_profile(drift, "clipfit", "image", "ln", measure="rel_l2")
    assert profile["layer"].tolist() == [-1, 0, 1]
    assert profile["mean"].tolist() == pytest.approx([1.8, 1.0, 0.2])
    values, names = R.layernorm_values(drift.assign(seed=1), "clipfit")  # squared L2, CLIPFit's measure
    assert names == ["layer -1 ln_pre", "layer 0 ln_1", "layer 1 ln_2"]
    assert values.shape == (2, 1, 3) and values[1, 0].tolist() == pytest.approx([7.29, 2.25, 0.09])


@pytest.mark.parametrize("path", sorted(str(p.relative_to(REPO_ROOT)) for p in
                                        [*(REPO_ROOT / "adaptlib" / "study").glob("*.py"),
                                         *(REPO_ROOT / "notebooks").glob("0*.ipynb")]))
def test_study_and_notebooks_take_no_model_or_dataset(path):
    """The study layer and the notebooks read tables and plot: models and data are the measures stage's."""
    text = (REPO_ROOT / path).read_text()
    for word in ("import torch", "load_backbone", "load_profile", "get_dataset", "sample_few_shot", "build_model",
                 "rebuild_model", "run_missing", "run_sweep"):
        assert word not in text, f"{path} uses {word}"


def test_regulariser_tables():
    records = []
    for w, d in [(0, 0.3), (2, 0.2), (8, 0.1), (32, 0.05)]:
        records += rows(f"clipfit@lambda={w}", "t", 16, [1], [None], setting="base_to_new", base_accuracy=0.8,
                        new_accuracy=0.6, text_feature_drift=d)
    table = R.regulariser_table(frame(records))
    assert table.index.tolist() == [0, 2, 8, 32]
    seeds = R.regulariser_seeds(frame(records))
    assert list(seeds.columns) == ["dataset", "seed", "0", "2", "8", "32"]
    assert seeds.iloc[0, 2:].tolist() == [0.3, 0.2, 0.1, 0.05]


def test_calibration_table_averages_tasks_of_seed_means_with_cis():
    from adaptlib.study.tables import calibration_table

    rows = []
    for t in range(4):
        for s in (1, 2):
            rows.append({"setting": "few_shot", "dialled": False, "method_label": "coop", "dataset": f"t{t}",
                         "seed": s, "shots": 16, "ece": 0.10 + 0.02 * t, "nll": 1.0 + t, "accuracy": 0.5,
                         "worst_class_accuracy": 0.2})
        rows.append({"setting": "few_shot", "dialled": False, "method_label": "zeroshot", "dataset": f"t{t}",
                     "seed": 1, "shots": 4, "ece": 0.3, "nll": 2.0, "accuracy": 0.4, "worst_class_accuracy": 0.1})
    rows.append({**rows[0], "ece": float("nan"), "dataset": "old"})  # a run made before the metrics: left out
    rows.append(dict(rows[0]))  # the same run in a second group (the drift group): counted once
    table = calibration_table(pd.DataFrame(rows), ["coop", "zeroshot"], 16, n_boot=200).set_index("method")
    assert table.loc["coop", "ece"] == pytest.approx(13.0)  # (10 + 12 + 14 + 16) / 4, in %
    assert table.loc["coop", "nll"] == pytest.approx(2.5)  # nats, not scaled
    assert table.loc["coop", "tasks"] == 4
    assert table.loc["coop", "ece_ci_low"] <= 13.0 <= table.loc["coop", "ece_ci_high"]
    assert table.loc["zeroshot", "ece"] == pytest.approx(30.0)  # its one run per task, whatever its shots


def _bins(count, confidence, accuracy):
    return json.dumps({"test": {"count": count, "confidence": confidence, "accuracy": accuracy}})


def test_reliability_table_pools_bins_weighted_by_count():
    from adaptlib.study.calibration import pooled_ece, reliability_table

    base = {"setting": "few_shot", "dialled": False, "method_label": "coop", "shots": 16}
    rows = [{**base, "dataset": "a", "seed": 1, "reliability": _bins([0, 2], [None, 0.6], [None, 1.0])},
            {**base, "dataset": "b", "seed": 1, "reliability": _bins([1, 6], [0.4, 0.8], [0.0, 0.5])},
            {**base, "dataset": "b", "seed": 1, "reliability": _bins([1, 6], [0.4, 0.8], [0.0, 0.5])},  # 2nd group
            {**base, "dataset": "c", "seed": 1, "reliability": float("nan")},  # made before the bins: left out
            {**base, "dataset": "a", "seed": 1, "shots": 4, "reliability": _bins([5, 5], [0.3, 0.9], [0.3, 0.9])}]
    table = reliability_table(pd.DataFrame(rows), ["coop"], 16)
    assert table["count"].tolist() == [1, 8] and table["runs"].tolist() == [2, 2]
    assert table["confidence"].tolist() == pytest.approx([40.0, 100 * (2 * 0.6 + 6 * 0.8) / 8])
    assert table["accuracy"].tolist() == pytest.approx([0.0, 100 * (2 * 1.0 + 6 * 0.5) / 8])
    # pooled ECE = the count-weighted gap over the nine images
    assert pooled_ece(table)["coop"] == pytest.approx((1 * 40 + 8 * abs(75 - 62.5)) / 9)


@pytest.mark.parametrize("method_delta, expected", [(0.0, 0.0), (0.05, 5.0), (-0.1, -10.0)])
def test_shift_calibration_table_pairs_each_test_set_with_zero_shot(method_delta, expected):
    from adaptlib.study.calibration import shift_calibration_table, shift_targets

    rows = []
    for seed in (1, 2, 3):
        for label, delta in (("zeroshot", 0.0), ("coop", method_delta)):
            rows.append({"setting": "cross_dataset", "method_label": label, "dataset": "shape", "seed": seed,
                         "accuracy": 0.7, "ece": 0.1 + delta, "accuracy@shape@shift=0.3": 0.3 + seed / 100,
                         "ece@shape@shift=0.3": 0.2 + delta + seed / 100, "accuracy@alpha=0.5": 0.1})
    rows.append({"setting": "few_shot", "method_label": "coop", "dataset": "shape", "seed": 1, "accuracy": 0.9,
                 "ece": 0.5, "accuracy@shape@shift=0.3": float("nan"), "ece@shape@shift=0.3": float("nan"),
                 "accuracy@alpha=0.5": 0.2})  # another setting: not part of the comparison
    df = pd.DataFrame(rows)
    assert shift_targets(df) == ["shape@shift=0.3"]
    table = shift_calibration_table(df, n_boot=200).set_index(["method", "test_set"])
    assert list(table.index.get_level_values(1).unique()) == ["source", "shape@shift=0.3"]
    far = table.loc[("coop", "shape@shift=0.3")]
    assert far["ece"] == pytest.approx(100 * (0.2 + method_delta + 0.02))
    assert far["ece_change"] == pytest.approx(expected)
    assert far["ece_change_ci_low"] == pytest.approx(expected) and far["ece_change_ci_high"] == pytest.approx(expected)
    assert table.loc[("coop", "source"), "accuracy_change"] == pytest.approx(0.0) and far["seeds"] == 3
