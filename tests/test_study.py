"""The study layer on hand-made result tables whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adaptlib.study import difficulty as D
from adaptlib.study import drift as R
from adaptlib.study import variance as V
from adaptlib.study.tables import (average_curve, base_to_new_table, few_shot_long, few_shot_matrix,
                                   harmonic_mean)


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
    diff = D.task_difficulty(frame(records))
    assert diff.loc["digits", "classes"] == 10 and diff.loc["colour", "classes"] == 8
    assert diff.loc["digits", "rtd"] == pytest.approx(1 / (10 * 0.12))
    assert diff.loc["digits", "rank_zero_shot_error_kappa"] == 1
    assert diff.loc["digits", "headroom"] == pytest.approx(0.58)


@pytest.mark.parametrize("slope, supported", [(1.0, True), (-1.0, False)])
def test_hard_task_claim(slope, supported):
    difficulty = np.linspace(0, 1, 6)
    advantage = pd.DataFrame({"difficulty": difficulty, "advantage": slope * difficulty},
                             index=[f"t{i}" for i in range(6)])
    claim = D.hard_task_claim(advantage)
    assert claim["supported"] is supported and np.sign(claim["spearman_rho"]) == np.sign(slope)


def test_ensemble_sweep_and_claim():
    records = []
    for ds, new_adaptive in {"a": 0.8, "b": 0.6}.items():
        records += rows("apex", ds, 16, [1], [None], setting="base_to_new", base_accuracy=0.9,
                        new_accuracy=new_adaptive, **{"base_accuracy@alpha=0": 0.7, "new_accuracy@alpha=0": 0.75,
                                                      "base_accuracy@alpha=1": 0.9, "new_accuracy@alpha=1": 0.65,
                                                      "hm@alpha=0": 0.72, "hm@alpha=1": 0.76})
    sweep = D.ensemble_sweep(frame(records))
    assert sweep.loc["a", "best_fixed_alpha"] == 1.0
    assert sweep.loc["a", "hm_adaptive"] == pytest.approx(harmonic_mean(90, 80))
    claim = D.ensemble_claim(sweep)
    assert claim["tasks_helped"] == 1 and claim["supported"] is False  # task b: 60 new < 65 at alpha=1


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


def test_hybrid_comparison_and_claims():
    records = []
    accs = {"coop": (0.6, 0.4), "clip_adapter": (0.4, 0.6), "layernorm": (0.5, 0.5), "prompt+adapter": (0.6, 0.6)}
    for method, (a, b) in accs.items():
        records += rows(method, "t1", 16, [1], [a]) + rows(method, "t2", 16, [1], [b])
    df = frame(records)
    rule = pd.DataFrame({"choice": ["coop", "clip_adapter"]}, index=["t1", "t2"])
    comparison = V.hybrid_comparison(df, rule)
    assert comparison["rule"].tolist() == [60.0, 60.0]
    parts = V.claims(V.winners(df), None, comparison)
    assert [p["supported"] for p in parts] == [True, True, True]


def test_drift_of_a_saved_run(tmp_path):
    from adaptlib.runs.run import RunContext, execute
    from adaptlib.runs.spec import RunSpec

    spec = RunSpec("clipfit", "colour", 2, 1, backbone="adaptlib-test", pretrained=None, crop_scale=(1, 1),
                   train={"max_steps": 3, "lr": 0.5}, save_state=True)
    result = execute(spec, RunContext(state_dir=str(tmp_path)))
    drift = R.run_drift(result["state_file"])
    assert set(drift["tower"]) == {"image", "text"}
    assert set(drift.loc[drift["tower"] == "text", "module"]) == {"mlp.c_proj"}
    assert (drift["sq_l2"] > 0).any()
    df = pd.DataFrame([{"method_label": "clipfit", "dataset": "colour", "seed": 1,
                        "state_file": result["state_file"]}])
    table = R.drift_tables(df)
    profile = R.layer_profile(table, "clipfit", "text", "mlp.c_proj")
    assert profile["layer"].tolist() == [0, 1]
    assert R.first_layernorm_changes_most(table)["most_changed"].startswith("layer")


def test_lora_drift_uses_merged_weights(tmp_path):
    from adaptlib.backbones import load_backbone
    from adaptlib.runs.run import RunContext, execute
    from adaptlib.runs.spec import RunSpec

    spec = RunSpec("clip_lora", "colour", 2, 1, backbone="adaptlib-test", pretrained=None, crop_scale=(1, 1),
                   train={"max_steps": 3, "lr": 0.5}, save_state=True)
    result = execute(spec, RunContext(state_dir=str(tmp_path)))
    drift = R.run_drift(result["state_file"], load_backbone("adaptlib-test", None))
    assert set(drift["module"]) == {"attn.in_proj"} and (drift["sq_l2"] > 0).all()


def test_regulariser_claim():
    records = []
    for w, d in [(0, 0.3), (2, 0.2), (8, 0.1), (32, 0.05)]:
        records += rows(f"clipfit@lambda={w}", "t", 16, [1], [None], setting="base_to_new", base_accuracy=0.8,
                        new_accuracy=0.6, text_feature_drift=d)
    table = R.regulariser_table(frame(records))
    assert table.index.tolist() == [0, 2, 8, 32]
    assert R.regulariser_claim(table)["supported"] is True
