"""The reproduction ledger: the published-numbers file is valid, and the comparison with fixture results gives the
expected means, CIs, differences and flags."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from adaptlib.study.ledger import (COLUMNS, FEW_SHOT_DATASETS, LEDGER_PATH, LedgerError, compare_with_ledger,
                                   ledger_note, load_ledger)

T_975_2DF = 4.302652729911275  # Student t quantile 0.975, 2 degrees of freedom (three seeds)
# methods of the ledger that adaptlib does not implement (compared when a profile adds them under these labels)
NOT_IN_ADAPTLIB = {"maple", "promptsrc", "gda", "lp_pp"}


def hm(b, n):
    return 2 * b * n / (b + n)


def t_ci(values):
    values = np.asarray(values, dtype=float)
    half = T_975_2DF * values.std(ddof=1) / math.sqrt(len(values))
    return values.mean() - half, values.mean() + half


def run_row(method, dataset, setting, shots, seed, backbone="ViT-B-16", **metrics):
    """One results.csv row (accuracies as fractions, as adaptlib writes them)."""
    row = {"key": f"{backbone}/{setting}/{dataset}/{method}/shots{shots}-seed{seed}", "backbone": backbone,
           "pretrained": "openai", "setting": setting, "dataset": dataset, "method": method, "label": "",
           "shots": shots, "seed": seed, "method_label": method, "config_hash": "0" * 16,
           "accuracy": np.nan, "base_accuracy": np.nan, "new_accuracy": np.nan, "hm": np.nan}
    row.update(metrics)
    return row


def write_ledger(path, rows):
    pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(path, index=False)
    return path


def ledger_row(method, dataset, setting, shots, metric, value, backbone="ViT-B-16", source="test fixture"):
    return dict(method=method, backbone=backbone, dataset=dataset, setting=setting, shots=shots, metric=metric,
                value=value, source=source)


# --------------------------------------------------------------------------------------------- the ledger file

def test_repository_ledger_loads_and_is_valid():
    ledger = load_ledger()
    assert LEDGER_PATH.name == "published_results.csv" and LEDGER_PATH.parent.name == "references"
    assert list(ledger.columns) == list(COLUMNS)
    assert len(ledger) >= 50
    assert ledger["source"].str.strip().str.len().gt(0).all()  # every row says where it was read
    assert ledger["value"].between(0, 100).all()
    assert not ledger.duplicated(["method", "backbone", "dataset", "setting", "shots", "metric"]).any()
    # the headline numbers of the study brief are there
    got = ledger.set_index(["method", "setting", "dataset", "shots", "metric"])["value"]
    assert got[("kgcoop", "base_to_new", "average", 16, "hm")] == 77.00
    assert got[("zeroshot", "base_to_new", "average", 0, "hm")] == 71.70
    assert got[("clip_lora", "few_shot", "average", 16, "accuracy")] == 83.0
    assert got[("tip_adapter_f", "few_shot", "average", 16, "accuracy")] == 75.83


def test_ledger_names_are_adaptlib_names():
    from adaptlib.data.benchmarks import BENCHMARKS
    from adaptlib.methods import RECIPES

    ledger = load_ledger()
    assert set(FEW_SHOT_DATASETS) <= set(BENCHMARKS)
    assert set(ledger["dataset"]) - {"average"} <= set(BENCHMARKS)
    assert set(ledger["method"]) <= set(RECIPES) | NOT_IN_ADAPTLIB
    assert set(ledger["backbone"]) <= {"ViT-B-16", "RN50"}


def test_ledger_base_to_new_hm_is_the_harmonic_mean_of_its_base_and_new():
    ledger = load_ledger()
    b2n = ledger[ledger["setting"] == "base_to_new"].pivot_table(index=["method", "backbone", "dataset", "shots"],
                                                                 columns="metric", values="value")
    triples = b2n.dropna()
    assert len(triples) >= 8
    for key, r in triples.iterrows():
        assert r["hm"] == pytest.approx(hm(r["base"], r["new"]), abs=0.011), key


def test_ledger_averages_cover_every_per_dataset_table():
    """Where the ledger has a method's 11 per-dataset values, their mean is its ``average`` row."""
    ledger = load_ledger()
    per = ledger[ledger["dataset"] != "average"]
    for (method, backbone, setting, shots, metric), g in per.groupby(["method", "backbone", "setting", "shots",
                                                                      "metric"]):
        assert set(g["dataset"]) == set(FEW_SHOT_DATASETS)
        avg = ledger[(ledger["method"] == method) & (ledger["backbone"] == backbone) & (ledger["setting"] == setting)
                     & (ledger["shots"] == shots) & (ledger["metric"] == metric) & (ledger["dataset"] == "average")]
        assert len(avg) == 1
        assert avg["value"].iloc[0] == pytest.approx(g["value"].mean(), abs=0.006)


@pytest.mark.parametrize("change, message", [
    (lambda r: r[0].update(value="n/a"), "value 'n/a' is not a number"),
    (lambda r: r[0].update(value="123.4"), "not a percentage"),
    (lambda r: r[0].update(setting="few-shot"), "unknown setting 'few-shot'"),
    (lambda r: r[0].update(metric="top1"), "unknown metric 'top1'"),
    (lambda r: r[0].update(metric="hm"), "metric not of the few_shot setting"),
    (lambda r: r[0].update(dataset="flowers102"), "unknown dataset 'flowers102'"),
    (lambda r: r[0].update(shots="16.5"), "shots '16.5' is not a whole number"),
    (lambda r: r[0].update(source=""), "empty 'source'"),
    (lambda r: r[0].update(method="CoOp"), "method 'CoOp'"),
    (lambda r: r.append(dict(r[0], value=70.0, source="elsewhere")), "another row gives the same number"),
])
def test_damaged_ledger_is_refused_with_its_path(tmp_path, change, message):
    rows = [ledger_row("coop", "dtd", "few_shot", 16, "accuracy", 69.87),
            ledger_row("coop", "average", "few_shot", 16, "accuracy", 79.89)]
    change(rows)
    path = write_ledger(tmp_path / "broken.csv", rows)
    with pytest.raises(LedgerError) as err:
        load_ledger(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)
    assert "line 2" in str(err.value) or "line 3" in str(err.value)


def test_ledger_without_a_column_or_a_file_is_refused(tmp_path):
    path = tmp_path / "no_source.csv"
    pd.DataFrame([ledger_row("coop", "dtd", "few_shot", 16, "accuracy", 69.87)]).drop(columns="source") \
        .to_csv(path, index=False)
    with pytest.raises(LedgerError, match="missing column.*source") as err:
        load_ledger(path)
    assert str(path) in str(err.value)
    with pytest.raises(LedgerError, match="no ledger file"):
        load_ledger(tmp_path / "absent.csv")


# ------------------------------------------------------------------------------------------------ comparison

@pytest.fixture
def results():
    """Fixture results mirroring results.csv: few-shot CoOp on all 11 datasets (3 seeds), base-to-new KgCoOp on
    all 11 (3 seeds), few-shot CLIP-LoRA on 10 of them, zero-shot once (seed 1, at 2 shots), a dialled task and
    an RN50 run that must not be counted."""
    rows = []
    for d, name in enumerate(FEW_SHOT_DATASETS):
        for s, seed in enumerate((1, 2, 3)):
            acc = 0.50 + 0.02 * d + 0.02 * s                    # dataset d: 50+2d, 52+2d, 54+2d (%)
            rows.append(run_row("coop", name, "few_shot", 16, seed, accuracy=acc))
            rows.append(run_row("kgcoop", name, "base_to_new", 16, seed,
                                base_accuracy=0.80 + 0.01 * d + 0.02 * s, new_accuracy=0.70 + 0.01 * d - 0.01 * s))
            if name != "eurosat":
                rows.append(run_row("clip_lora", name, "few_shot", 16, seed, accuracy=0.8))
        rows.append(run_row("zeroshot", name, "few_shot", 2, 1, accuracy=0.40 + 0.01 * d))
        rows.append(run_row("zeroshot", name, "base_to_new", 2, 1, base_accuracy=0.70, new_accuracy=0.75))
    rows.append(run_row("coop", "dtd@inter=0.5,intra=0", "few_shot", 16, 1, accuracy=0.01))
    rows.append(run_row("coop", "dtd", "few_shot", 16, 1, backbone="RN50", accuracy=0.99))
    return pd.DataFrame(rows)


@pytest.fixture
def ledger(tmp_path):
    rows = [
        ledger_row("coop", "caltech101", "few_shot", 16, "accuracy", 60.0),   # seeds 52, 54, 56: outside
        ledger_row("coop", "caltech101", "few_shot", 16, "accuracy", 54.0, backbone="RN50"),  # no RN50 run there
        ledger_row("coop", "dtd", "few_shot", 16, "accuracy", 66.0),          # seeds 66, 68, 70: at the CI's edge?
        ledger_row("coop", "average", "few_shot", 16, "accuracy", 62.0),
        ledger_row("kgcoop", "imagenet", "base_to_new", 16, "base", 81.0),
        ledger_row("kgcoop", "imagenet", "base_to_new", 16, "hm", 75.0),
        ledger_row("kgcoop", "average", "base_to_new", 16, "base", 80.73),
        ledger_row("kgcoop", "average", "base_to_new", 16, "new", 73.60),
        ledger_row("kgcoop", "average", "base_to_new", 16, "hm", 77.00),
        ledger_row("clip_lora", "average", "few_shot", 16, "accuracy", 83.0),  # eurosat missing
        ledger_row("zeroshot", "oxford_pets", "few_shot", 0, "accuracy", 89.1),  # one seed
        ledger_row("zeroshot", "average", "base_to_new", 0, "hm", 71.70),
        ledger_row("apex", "average", "base_to_new", 16, "hm", 80.21),           # never run
    ]
    return load_ledger(write_ledger(tmp_path / "ledger.csv", rows))


def row_of(out, method, dataset, metric, backbone="ViT-B-16"):
    sel = out[(out["method"] == method) & (out["dataset"] == dataset) & (out["metric"] == metric)
              & (out["backbone"] == backbone)]
    assert len(sel) == 1
    return sel.iloc[0]


def test_compare_gives_one_row_per_ledger_row_in_order(results, ledger):
    out = compare_with_ledger(results, ledger)
    assert len(out) == len(ledger)
    assert list(out["method"]) == list(ledger["method"])
    for col in ("published", "reproduced", "ci_low", "ci_high", "seeds", "difference", "outside_ci", "note",
                "source"):
        assert col in out.columns
    assert str(out["outside_ci"].dtype) == "boolean"


def test_compare_one_dataset_mean_ci_difference_and_flag(results, ledger):
    out = compare_with_ledger(results, ledger)
    r = row_of(out, "coop", "caltech101", "accuracy")               # caltech101 is dataset 1: 52, 54, 56
    lo, hi = t_ci([52, 54, 56])
    assert r["reproduced"] == pytest.approx(54.0)
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert r["ci_high"] == pytest.approx(54 + T_975_2DF * 2 / math.sqrt(3))
    assert r["difference"] == pytest.approx(54.0 - 60.0)
    assert r["seeds"] == 3 and r["note"] == ""
    assert bool(r["outside_ci"]) is True
    r = row_of(out, "coop", "dtd", "accuracy")                      # dtd is dataset 8: 66, 68, 70 -> CI ~[63, 73]
    assert r["reproduced"] == pytest.approx(68.0)
    assert bool(r["outside_ci"]) is False                           # the dialled dtd run (1%) is not counted
    assert r["difference"] == pytest.approx(2.0)


def test_compare_other_backbone_finds_no_runs(results, ledger):
    out = compare_with_ledger(results, ledger)
    r = row_of(out, "coop", "caltech101", "accuracy", backbone="RN50")
    assert math.isnan(r["reproduced"]) and r["seeds"] == 0 and r["note"] == "no runs"
    assert pd.isna(r["outside_ci"])
    r = row_of(out, "apex", "average", "hm")
    assert math.isnan(r["reproduced"]) and r["note"] == "no runs"


def test_compare_average_over_the_eleven_datasets(results, ledger):
    out = compare_with_ledger(results, ledger)
    r = row_of(out, "coop", "average", "accuracy")
    # dataset d's seed mean is 52 + 2d; the mean over d = 0..10 is 62; per-seed averages are 60, 62, 64
    assert r["reproduced"] == pytest.approx(62.0)
    lo, hi = t_ci([60, 62, 64])
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert r["difference"] == pytest.approx(0.0, abs=1e-9)
    assert bool(r["outside_ci"]) is False and r["seeds"] == 3


def test_compare_average_needs_all_eleven_datasets(results, ledger):
    out = compare_with_ledger(results, ledger)
    r = row_of(out, "clip_lora", "average", "accuracy")
    assert math.isnan(r["reproduced"]) and math.isnan(r["ci_low"]) and pd.isna(r["outside_ci"])
    assert "eurosat" in r["note"] and "11" in r["note"]


def test_compare_base_to_new_hm_is_the_harmonic_mean_of_seed_averages(results, ledger):
    out = compare_with_ledger(results, ledger)
    # imagenet (d = 0): base 80, 82, 84; new 70, 69, 68
    r = row_of(out, "kgcoop", "imagenet", "base")
    assert r["reproduced"] == pytest.approx(82.0)
    assert bool(r["outside_ci"]) is False                           # 81 is inside 82 +- 4.97
    r = row_of(out, "kgcoop", "imagenet", "hm")
    assert r["reproduced"] == pytest.approx(hm(82.0, 69.0))
    lo, hi = t_ci([hm(80, 70), hm(82, 69), hm(84, 68)])             # t-interval of the per-seed HMs
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert r["difference"] == pytest.approx(hm(82.0, 69.0) - 75.0)
    assert lo < 75.0 < hi and bool(r["outside_ci"]) is False
    # average: base 82 + (mean d = 5) = 87, new 69 + 5 = 74; HM of those averages, not the mean of HMs
    base = row_of(out, "kgcoop", "average", "base")
    new = row_of(out, "kgcoop", "average", "new")
    avg_hm = row_of(out, "kgcoop", "average", "hm")
    assert base["reproduced"] == pytest.approx(87.0) and new["reproduced"] == pytest.approx(74.0)
    assert avg_hm["reproduced"] == pytest.approx(hm(87.0, 74.0))
    per_seed = [hm(85 + 2 * s, 75 - s) for s in range(3)]           # per-seed task-averaged base and new
    lo, hi = t_ci(per_seed)
    assert (avg_hm["ci_low"], avg_hm["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert avg_hm["difference"] == pytest.approx(hm(87.0, 74.0) - 77.0)
    assert bool(base["outside_ci"]) is True                         # published 80.73 vs 85..89


def test_compare_one_seed_has_no_ci_and_says_so(results, ledger):
    out = compare_with_ledger(results, ledger)
    r = row_of(out, "zeroshot", "oxford_pets", "accuracy")         # run at 2 shots, ledger at 0: still matched
    assert r["reproduced"] == pytest.approx(42.0) and r["seeds"] == 1
    assert r["difference"] == pytest.approx(42.0 - 89.1)
    assert math.isnan(r["ci_low"]) and math.isnan(r["ci_high"]) and pd.isna(r["outside_ci"])
    assert "one seed" in r["note"]
    r = row_of(out, "zeroshot", "average", "hm")
    assert r["reproduced"] == pytest.approx(hm(70.0, 75.0))
    assert math.isnan(r["ci_low"]) and pd.isna(r["outside_ci"]) and "no CI" in r["note"]


def test_compare_bootstrap_ci(results, ledger):
    out = compare_with_ledger(results, ledger, ci="bootstrap", n_boot=2000, seed=1)
    r = row_of(out, "coop", "caltech101", "accuracy")
    assert r["reproduced"] == pytest.approx(54.0)
    assert 52.0 - 1e-9 <= r["ci_low"] < 54.0 < r["ci_high"] <= 56.0 + 1e-9  # resampled means stay within the seeds
    assert bool(r["outside_ci"]) is True
    again = compare_with_ledger(results, ledger, ci="bootstrap", n_boot=2000, seed=1)
    pd.testing.assert_frame_equal(out, again)                      # seeded: the same CI every time
    avg = row_of(out, "kgcoop", "average", "hm")
    assert avg["ci_low"] <= avg["reproduced"] <= avg["ci_high"]
    with pytest.raises(ValueError, match="ci must be"):
        compare_with_ledger(results, ledger, ci="normal")


def test_compare_with_the_repository_ledger_on_fixture_results(results):
    out = compare_with_ledger(results)                             # the default ledger
    assert len(out) == len(load_ledger())
    r = row_of(out, "kgcoop", "average", "hm")
    assert r["published"] == 77.00
    assert r["reproduced"] == pytest.approx(hm(87.0, 74.0))
    assert r["difference"] == pytest.approx(hm(87.0, 74.0) - 77.0)
    assert bool(r["outside_ci"]) is True
    assert (out.loc[out["backbone"] == "RN50", "note"] == "no runs").all()


def test_compare_reads_a_results_csv_as_written(tmp_path, results, ledger):
    path = tmp_path / "results.csv"
    results.to_csv(path, index=False)
    from adaptlib.study.tables import load_results

    out = compare_with_ledger(load_results(tmp_path), ledger)
    assert row_of(out, "coop", "average", "accuracy")["reproduced"] == pytest.approx(62.0)


def test_compare_cross_dataset_reads_the_target_columns(tmp_path):
    rows = [run_row("coop", "imagenet", "cross_dataset", 16, seed, accuracy=0.70 + 0.01 * seed,
                    **{"accuracy@imagenet_v2": 0.60 + 0.01 * seed}) for seed in (1, 2, 3)]
    ledger = load_ledger(write_ledger(tmp_path / "xd.csv", [
        ledger_row("coop", "imagenet_v2", "cross_dataset", 16, "accuracy", 64.20),
        ledger_row("coop", "imagenet", "cross_dataset", 16, "accuracy", 71.51)]))
    out = compare_with_ledger(pd.DataFrame(rows), ledger)
    assert out["reproduced"].tolist() == [pytest.approx(62.0), pytest.approx(72.0)]
    assert out["seeds"].tolist() == [3, 3]
    assert out["outside_ci"].tolist() == [False, False]


def test_ledger_note():
    from types import SimpleNamespace

    note = ledger_note("embedded")
    assert "needs the paper profile" in note and "published numbers" in note
    assert ledger_note(SimpleNamespace(name="smoke")) is not None
    assert ledger_note("profiles/embedded.yaml") == note
    assert ledger_note("paper") is None
    assert ledger_note(SimpleNamespace(name="paper")) is None
