"""The notebooks' claims on hand-made results whose answers are known: the per-(task, seed) tables the study
builds, the tested verdicts (supported / contradicted / inconclusive), the power guard, untestable claims that
do not raise, verdict.json's shape and the findings' lines."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from adaptlib.analysis.claims import VERDICT_KEYS, Claim
from adaptlib.study import tables
from adaptlib.study import difficulty as D
from adaptlib.study import drift as R
from adaptlib.study import variance as V
from adaptlib.study import verdicts as Vd
from adaptlib.study.findings import render
from adaptlib.study.notebook import Outputs
from adaptlib.study.tables import (base_to_new_seeds, best_with_ci, budgets, failure_cases, few_shot_seeds, mean_ci,
                                   per_task_ci)


def run_rows(method, dataset, shots, seed, setting="few_shot", **metrics):
    return {"method_label": method, "method": method, "dataset": dataset, "setting": setting, "shots": shots,
            "seed": seed, "key": f"{method}-{dataset}-{shots}-{seed}-{setting}", **metrics}


def frame(records) -> pd.DataFrame:
    df = pd.DataFrame(records)
    df["task"] = df["dataset"].str.split("@").str[0]
    df["dialled"] = df["dataset"].str.contains("@")
    return df


TASKS = [f"t{i}" for i in range(9)]


def clipfit_results(effect: float, n_seeds: int = 3, seed: int = 0) -> pd.DataFrame:
    """CLIPFit vs zero-shot in base-to-new on 9 tasks: CLIPFit's HM is zero-shot's + effect + seed noise."""
    rng = np.random.default_rng(seed)
    records = []
    for i, t in enumerate(TASKS):
        zs = 0.5 + 0.03 * i
        records.append(run_rows("zeroshot", t, 16, 1, "base_to_new", base_accuracy=zs, new_accuracy=zs))
        for s in range(1, n_seeds + 1):
            v = zs + effect / 100 + 0.002 * rng.standard_normal()
            records.append(run_rows("clipfit", t, 16, s, "base_to_new", base_accuracy=v, new_accuracy=v))
    return frame(records)


def test_zero_shot_single_seed_is_paired_with_every_seed():
    df = clipfit_results(2.0)
    table = base_to_new_seeds(df, ["clipfit", "zeroshot"], 16)
    assert len(table) == 27 and table.groupby("dataset")["zeroshot"].nunique().eq(1).all()
    assert table["zeroshot"].notna().all()


@pytest.mark.parametrize("effect, outcome", [(3.0, "supported"), (-3.0, "contradicted"), (0.0, "inconclusive")])
def test_clipfit_beats_zero_shot_is_decided_by_the_test(effect, outcome):
    planned = R.beats_zero_shot_planned(clipfit_results(effect), 16)
    [result], notes = Vd.test_claims([planned], n_boot=200)
    assert result.outcome == outcome, (result.summary(), notes)
    assert result.n_tasks == 9 and result.n_seeds == 3
    if effect:
        assert np.sign(result.estimate) == np.sign(effect)


def test_underpowered_rule_is_not_decided_and_says_why():
    df = clipfit_results(3.0)
    df = df[df["dataset"].isin(TASKS[:4])]  # 4 tasks: a sign-flip test's smallest p is 1/16
    [result], notes = Vd.test_claims([R.beats_zero_shot_planned(df, 16)], n_boot=100)
    assert result.outcome == "inconclusive"
    assert "power" in notes[R.BEATS_ZERO_SHOT.name] and "not decided" in result.test
    assert result.p_value == pytest.approx(1 / 16)  # the evidence is kept, only the decision is withheld


def test_untestable_claims_do_not_raise():
    df = clipfit_results(3.0)
    two = df[df["dataset"].isin(TASKS[:2])]
    diff = pd.DataFrame({m: [0.1, 0.2] for m in D.MEASURES}, index=TASKS[:2])
    planned = [R.regulariser_planned(two), R.drift_planned(None)[0], *D.hard_task_planned(two, diff, 16),
               D.ensemble_planned(two)]
    results, notes = Vd.test_claims(planned, n_boot=50)
    assert all(r.outcome == "inconclusive" for r in results)
    assert set(notes) == {r.claim.name for r in results}
    # a test that raises on its data (a rank correlation over 2 items) becomes an untestable claim
    claim = Claim("x", "rank_correlation")
    [r], notes = Vd.test_claims([Vd.Planned(claim, {"x": [1.0, 2.0], "y": [1.0, 2.0]})], n_boot=10)
    assert r.outcome == "inconclusive" and "not testable" in notes["x"]


def apex_results(slope: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """9 tasks of rising difficulty; VPT's advantage over CoOp and KgCoOp is slope x difficulty rank (+ noise)."""
    rng = np.random.default_rng(3)
    records = []
    for i, t in enumerate(TASKS):
        records.append(run_rows("zeroshot", t, 16, 1, accuracy=0.5))
        for s in (1, 2, 3):
            base = 0.6 + 0.01 * rng.standard_normal()
            records.append(run_rows("coop", t, 16, s, accuracy=base))
            records.append(run_rows("kgcoop", t, 16, s, accuracy=base + 0.01))
            records.append(run_rows("vpt_deep", t, 16, s, accuracy=base + slope * i / 100 +
                                    0.002 * rng.standard_normal()))
    diff = pd.DataFrame({"zero_shot_error_kappa": np.linspace(0.1, 0.9, 9), "rtd": np.linspace(0.1, 0.9, 9)[::-1],
                         "headroom": np.linspace(0.1, 0.9, 9)}, index=TASKS)
    return frame(records), diff


def test_apex_claim_one_is_per_method_with_three_measures_and_leave_one_out():
    df, diff = apex_results(2.0)
    adv = D.advantage_seeds(df, "vpt_deep", 16)
    assert len(adv) == 27
    planned = D.hard_task_planned(df, diff, 16)
    assert [p.claim.name for p in planned] == [D.hard_task_claim_for("vpt_deep").name]
    [result], _ = Vd.test_claims(planned, n_boot=200)
    assert result.outcome == "supported" and result.estimate == pytest.approx(1.0)
    by = D.hard_task_by_measure(df, diff, 16, n_boot=50).set_index("measure")
    assert by.loc["rtd", "rho"] == pytest.approx(-1.0) and bool(by.loc[D.PRIMARY_MEASURE, "primary"])
    loto = D.leave_one_task_out(df, diff, 16)
    assert list(loto.columns) == ["all", *[f"without {t}" for t in TASKS]] and (loto.loc["vpt_deep"] > 0.9).all()


def test_ensemble_share_claim():
    records = []
    for i, t in enumerate(TASKS):
        for s in (1, 2):
            new = 0.7 if i < 8 else 0.5  # the adaptive ensemble beats alpha = 1 (new 0.6) on 8 of 9 tasks
            records.append(run_rows("apex", t, 16, s, "base_to_new", base_accuracy=0.8, new_accuracy=new,
                                    **{"base_accuracy@alpha=1": 0.8, "new_accuracy@alpha=1": 0.6,
                                       "hm@alpha=1": 0.69}))
    [result], notes = Vd.test_claims([D.ensemble_planned(frame(records))], n_boot=100)
    assert result.estimate == pytest.approx(8 / 9)
    assert result.p_value == pytest.approx(10 / 512)  # P(Binom(9, 1/2) >= 8)


def ntu_results(n_seeds: int = 3) -> pd.DataFrame:
    """Each of the three methods clearly best on three of nine tasks (seed noise small)."""
    rng = np.random.default_rng(5)
    records = []
    for i, t in enumerate(TASKS):
        for s in range(1, n_seeds + 1):
            for j, m in enumerate(V.THREE):
                acc = 0.6 + (0.2 if i % 3 == j else 0.0) + 0.005 * rng.standard_normal()
                records.append(run_rows(m, t, 16, s, accuracy=acc))
    return frame(records)


def test_each_wins_with_chance_and_ceiling():
    df = ntu_results()
    classes = pd.Series({t: 10 for t in TASKS})
    planned = V.each_wins_planned(df, classes, 16, TASKS)
    assert planned.data["chance"]["t0"] == pytest.approx(10.0) and planned.data["ceiling"] == 100.0
    [result], notes = Vd.test_claims([planned], n_boot=100)
    assert result.outcome == "supported", notes
    # one seed per task: no seed noise to test a win against: inconclusive, never an error
    [one], notes = Vd.test_claims([V.each_wins_planned(ntu_results(1), classes, 16, TASKS)], n_boot=20)
    assert one.outcome == "inconclusive"


def test_winners_call_a_tie_a_tie():
    records = [run_rows(m, "colour", 16, 1, accuracy=1.0) for m in V.THREE]
    assert V.winners(frame(records)).loc["colour", "winner"] == "tie"


def test_hybrid_best_of_and_rule_claims_and_efficiency():
    rng = np.random.default_rng(2)
    records = []
    for t in TASKS:
        for s in (1, 2, 3):
            for m in V.THREE:
                records.append(run_rows(m, t, 16, s, accuracy=0.6 + 0.005 * rng.standard_normal(),
                                        trainable_parameters=100))
            records.append(run_rows("prompt+adapter", t, 16, s, accuracy=0.7 + 0.005 * rng.standard_normal(),
                                    trainable_parameters=200))
    df = frame(records)
    rule = pd.DataFrame({"choice": ["prompt+adapter"] * 9}, index=TASKS)
    seeds = V.hybrid_seeds(df, rule, 16)
    results, notes = Vd.test_claims(V.hybrid_planned(seeds), n_boot=100)
    assert [r.outcome for r in results] == ["supported", "supported"], notes
    timings = pd.DataFrame({"key": df["key"], "train_seconds": np.where(df["method_label"].str.contains(r"\+"),
                                                                        3.0, 2.0)})
    eff = V.efficiency_table(df, timings, 16)
    assert eff.loc["prompt+adapter", "parameters_ratio"] == pytest.approx(1.0)
    assert eff.loc["prompt+adapter", "seconds_ratio"] == pytest.approx(0.75)
    assert eff["train_memory_mb"].isna().all()  # results written before the column existed
    memory = df.assign(train_memory_mb=np.where(df["method_label"].str.contains(r"\+"), 5.0, 2.0))
    eff = V.efficiency_table(memory, timings, 16)
    assert eff.loc["prompt+adapter", "parts_memory_mb"] == pytest.approx(4.0)
    assert eff.loc["prompt+adapter", "memory_mb_ratio"] == pytest.approx(1.25)
    practical, why = V.practical_pick(df, 16, TASKS)
    assert practical is None and "val_accuracy" in why
    with_val = df.assign(val_accuracy=df["accuracy"])
    practical, _ = V.practical_pick(with_val, 16, TASKS)
    assert (practical["practical_pick (best few-shot val)"] == "prompt+adapter").all()


def test_depth_trend_and_first_layernorm_from_the_drift_table():
    records = []
    for dataset in ("a", "b", "c"):
        for layer in range(12):
            records.append({"method": "clipfit", "dataset": dataset, "seed": 1, "tower": "text", "layer": layer,
                            "module": "mlp.c_proj", "param": "bias", "name": f"t{layer}", "numel": 4, "norm0": 1.0,
                            "sq_l2": float(12 - layer), "rel_l2": 1.0, "rms": 1.0})
        for layer, module in [(-1, "ln_pre"), *[(i, f"ln_{j}") for i in range(12) for j in (1, 2)], (12, "ln_post")]:
            records.append({"method": "clipfit", "dataset": dataset, "seed": 1, "tower": "image", "layer": layer,
                            "module": module, "param": "weight", "name": f"i{layer}{module}", "numel": 4,
                            "norm0": 1.0, "sq_l2": 10.0 if module == "ln_pre" else 1.0 / (layer + 2),
                            "rel_l2": 1.0, "rms": 1.0})
    drift = pd.DataFrame(records)
    values, layers = R.depth_values(drift)
    assert values.shape == (3, 1, 12) and layers == list(range(12))
    _, modules = R.layernorm_values(drift)
    assert modules[0] == "layer -1 ln_pre" and modules[-1] == "layer 12 ln_post" and len(modules) == 26
    results, notes = Vd.test_claims(R.drift_planned(drift), n_boot=50)
    assert results[0].outcome == "supported" and results[0].estimate == pytest.approx(-1.0)
    assert results[1].p_value == pytest.approx(1 / 26)
    table = R.drift_measures_table(drift)
    assert {"sq_l2", "rel_l2", "rms", "sq_l2_rank"} <= set(table.columns)


def test_regulariser_trend_claim():
    records = []
    for i, t in enumerate(TASKS):
        for w, d in [(0, 0.3), (2, 0.2), (8, 0.1), (32, 0.05)]:
            records.append(run_rows(f"clipfit@lambda={w}", t, 16, 1, "base_to_new", base_accuracy=0.8,
                                    new_accuracy=0.6, text_feature_drift=d + 0.001 * i))
    planned = R.regulariser_planned(frame(records))
    [result], notes = Vd.test_claims([planned], n_boot=50)
    assert result.outcome == "supported" and result.estimate == pytest.approx(-1.0), notes
    reg = R.regulariser_ci(frame(records))
    assert {"text_feature_drift_ci_low", "hm_ci_high"} <= set(reg.columns)


def test_verdict_json_and_findings(tmp_path):
    results, notes = Vd.test_claims([R.beats_zero_shot_planned(clipfit_results(3.0), 16),
                                     R.regulariser_planned(clipfit_results(0.0))], n_boot=100)
    folder = tmp_path / "04_drift"
    Outputs(folder).verdict("drift (CLIPFit)", "CLIPFit beats zero-shot", results, "embedded", notes)
    record = json.loads((folder / "verdict.json").read_text())
    assert record["verdict"] == "partly" and record["inconclusive"] == 1 and record["supported"] == 1
    for part in record["parts"]:
        assert set(part) == set(VERDICT_KEYS)
        assert isinstance(part["ci95"], list) and len(part["ci95"]) == 2
    assert record["parts"][1]["p_value"] is None  # untestable: no regulariser runs
    text = render(tmp_path)
    assert "Overall: **partly** (1 supported, 0 contradicted, 1 inconclusive of 2 sub-claims)" in text
    line = next(x for x in text.splitlines() if "CLIPFit 1" in x)
    assert "**supported**" in line and "95% CI [" in line and "p_adj" in line


def test_summary_and_budgets_and_cis():
    records = []
    for t in TASKS[:3]:
        records.append(run_rows("zeroshot", t, 16, 1, accuracy=0.2))
        for s in (1, 2):
            for m, a in (("coop", 0.6), ("clip_adapter", 0.7)):
                records.append(run_rows(m, t, 16, s, accuracy=a + 0.01 * s, train_steps=100,
                                        train_steps_after_warmup=95, train_examples_seen=3200))
            for k in (1, 16):  # below zero-shot at 1 shot; collapsed (at chance) at 16 where the others are far above
                records.append(run_rows("layernorm", t, k, s, accuracy=0.1, train_steps=10,
                                        train_steps_after_warmup=5, train_examples_seen=40))
    df = frame(records)
    table = few_shot_seeds(df, ["coop", "zeroshot"], 16)
    assert table["zeroshot"].tolist() == [20.0] * 6
    ci = mean_ci(table, ["coop"], n_boot=200)
    assert ci.loc["coop", "mean"] == pytest.approx(61.5) and ci.loc["coop", "ci_low"] <= 61.5 <= ci.loc["coop",
                                                                                                          "ci_high"]
    best = best_with_ci(df, ["coop", "clip_adapter"], 16, n_boot=100)
    assert best["best"] == "clip_adapter" and best["stays_best"] == 1.0
    b = budgets(df)
    assert list(b.columns[:6]) == ["method", "dataset", "shots", "steps", "steps_after_warmup", "examples_seen"]
    assert len(b) == 4 * 3 and b.loc[b["method"] == "layernorm", "share_after_warmup"].eq(0.5).all()
    assert budgets(df.drop(columns=["train_steps_after_warmup"]))["steps_after_warmup"].isna().all()
    per = per_task_ci(df, ["coop"], n_boot=100)
    assert len(per) == 3 and (per["ci_low"] <= per["mean"]).all()
    fails = failure_cases(df, pd.Series({t: 10 for t in TASKS[:3]}), ["zeroshot", "coop", "clip_adapter",
                                                                       "layernorm"])
    assert set(fails["kind"]) == {"below zero-shot", "collapse"}
    assert set(fails["method"]) == {"layernorm"}


CHECK_TASKS = ("a", "b", "c", "d", "e", "f")


def convergence_frame(levels: dict[str, tuple[float, float, float]], cap: dict[str, int],
                      noise: float = 0.0) -> pd.DataFrame:
    """Runs of each method at half, one and twice its cap (labels METHOD@steps=N for the others) on 6 tasks, with
    task-level noise of the given size on each run's validation accuracy."""
    rng = np.random.default_rng(0)
    records = []
    for m, accs in levels.items():
        for t in CHECK_TASKS:
            for mult, acc in zip((0.5, 1, 2), accs):
                label = m if mult == 1 else f"{m}@steps={int(cap[m] * mult)}"
                val = acc + noise * rng.standard_normal()
                records.append({**run_rows(label, t, 16, 1, val_accuracy=val, accuracy=acc - 0.01),
                                "train_steps": int(cap[m] * mult), "method": m})
        records.append({**run_rows(m, "other", 16, 1, val_accuracy=0.1, accuracy=0.1), "train_steps": cap[m],
                        "method": m})  # a task outside the check: not part of it
    return frame(records)


def test_convergence_table_and_whether_the_caps_decide_the_ranking():
    cap = {"coop": 200, "layernorm": 40, "apex": 60, "bitfit": 40}
    # twice the steps change nothing but a little validation noise: every method converged within 2 points
    stable = convergence_frame({"coop": (0.5, 0.7, 0.7), "layernorm": (0.5, 0.6, 0.6),
                                "apex": (0.4, 0.5, 0.5), "bitfit": (0.3, 0.4, 0.4)}, cap, noise=0.002)
    table = tables.convergence_table(stable, n_boot=200)
    assert set(table["budget"]) == {0.5, 1.0, 2.0} and (table["tasks"] == 6).all()
    coop = table[table["method"] == "coop"].set_index("budget")
    assert coop.loc[1.0, "steps"] == 200 and coop.loc[2.0, "val_accuracy"] == pytest.approx(70.0, abs=0.3)
    assert (table["val_ci_low"] <= table["val_accuracy"] + 1e-9).all()
    s = tables.convergence_summary(tables.convergence_runs(stable), n_boot=200)
    assert s["tau"] == pytest.approx(1.0) and s["not_converged"] == {} and s["largest_rank_change"] == 0
    assert set(s["gains"]["status"]) == {"converged"} and not s["caps_decide"]
    # bitfit climbs from last to first with twice the steps on every task: the cap decides the ranking
    climbing = convergence_frame({"coop": (0.5, 0.7, 0.7), "layernorm": (0.5, 0.6, 0.6),
                                  "apex": (0.4, 0.5, 0.5), "bitfit": (0.3, 0.4, 0.8)}, cap, noise=0.002)
    s = tables.convergence_summary(tables.convergence_runs(climbing), n_boot=200)
    assert s["not_converged"] == {"bitfit": pytest.approx(40.0, abs=0.5)} and s["largest_rank_change"] == 3
    assert s["caps_decide"] and s["gains"].loc["bitfit", "p_value"] == pytest.approx(1 / 64)
    # validation noise of 10 points per task: a 1-point mean gain is neither shown nor ruled out
    noisy = convergence_frame({"coop": (0.5, 0.7, 0.71), "layernorm": (0.5, 0.6, 0.61),
                               "apex": (0.4, 0.5, 0.51), "bitfit": (0.3, 0.4, 0.41)}, cap, noise=0.10)
    s = tables.convergence_summary(tables.convergence_runs(noisy), n_boot=200)
    assert set(s["gains"]["status"]) == {"undetermined"} and not s["caps_decide"]
    assert tables.convergence_table(frame([run_rows("coop", "a", 16, 1, accuracy=0.5, val_accuracy=0.5,
                                                    train_steps=3)])).empty
    assert tables.convergence_summary(tables.convergence_runs(frame([run_rows(
        "coop", "a", 16, 1, accuracy=0.5, val_accuracy=0.5, train_steps=3)])))["gains"].empty
