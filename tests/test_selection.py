"""Model selection as a protocol axis (runs.selection): few_shot_val, fixed and oracle_test, in specs, profiles,
runs and the results table."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from adaptlib.cli import main
from adaptlib.runs.profile import ProfileError, parse_profile
from adaptlib.runs.run import RunContext, execute
from adaptlib.runs.selection import SELECTIONS, selection_label
from adaptlib.runs.spec import RunSpec
from adaptlib.runs.table import collect_with_problems
from adaptlib.study.selection import selection_comparison

TINY = dict(backbone="adaptlib-test", pretrained=None)


def spec(method: str, selection: str = "few_shot_val", **kw) -> RunSpec:
    base = dict(dataset="colour", shots=4, seed=1, crop_scale=(1.0, 1.0), train={"max_steps": 3}, **TINY)
    base.update(kw)
    return RunSpec(method, selection=selection, **base)


def test_the_default_leaves_every_existing_run_as_it_was():
    """The default is not in the config, so keys and hashes of runs made before the axis are unchanged."""
    default = spec("coop")
    assert "selection" not in default.to_dict()
    assert RunSpec.from_dict(default.to_dict()) == default
    keys = {s: spec("coop", s).key() for s in SELECTIONS}
    assert len(set(keys.values())) == 3
    assert "-fixed-" in keys["fixed"] and "-oracle_test-" in keys["oracle_test"]
    assert "few_shot_val" not in keys["few_shot_val"]
    fixed = spec("coop", "fixed")
    assert RunSpec.from_dict(fixed.to_dict()) == fixed


def test_an_unknown_selection_is_refused_by_name():
    with pytest.raises(KeyError, match="unknown model selection 'few_shot'.*few_shot_val"):
        spec("coop", "few_shot")


@pytest.mark.parametrize("method, part, fixed", [
    ("tip_adapter", "tip_cache", {"alpha": 1.17, "beta": 1.0}),
    ("gda", "gda", {"alpha": 0.1}),
])
def test_each_selection_makes_the_parts_choice_where_it_says(method, part, fixed):
    results = {s: execute(spec(method, s)) for s in SELECTIONS}
    chosen = results["fixed"]["chosen"][part]
    assert {k: chosen[k] for k in fixed} == fixed and "val_accuracy" not in chosen  # published, no data looked at
    val, oracle = results["few_shot_val"], results["oracle_test"]
    assert val["chosen"][part]["val_accuracy"] == pytest.approx(val["metrics"]["val_accuracy"])
    # the oracle's search scores the test split, so its best score is the run's test accuracy, and no choice on
    # the same grid does better on test
    assert oracle["chosen"][part]["val_accuracy"] == pytest.approx(oracle["metrics"]["accuracy"])
    assert oracle["metrics"]["accuracy"] >= max(val["metrics"]["accuracy"], results["fixed"]["metrics"]["accuracy"])


def test_the_linear_probe_without_validation_uses_its_fixed_c():
    fixed = execute(spec("linear_probe", "fixed"))["chosen"]["linear_head"]
    assert fixed["C"] == 1.0 and fixed["C_tried"] == 0 and fixed["val_accuracy"] is None
    searched = execute(spec("linear_probe"))["chosen"]["linear_head"]
    assert searched["C_tried"] >= 7
    oracle = execute(spec("linear_probe", "oracle_test"))
    assert oracle["chosen"]["linear_head"]["val_accuracy"] == pytest.approx(oracle["metrics"]["accuracy"])


def test_methods_without_choices_give_the_same_numbers_under_every_selection():
    """CoOp learns everything by gradient: only where its hyper-parameters come from can differ, and a run
    given the same training options computes the same bits."""
    accuracies = {s: execute(spec("coop", s))["metrics"]["accuracy"] for s in SELECTIONS}
    assert len(set(accuracies.values())) == 1


PROFILE = {
    "name": "sel", "backbone": "adaptlib-test", "pretrained": None, "datasets": ["colour"], "shots": [1, 4],
    "seeds": [1], "selections": ["few_shot_val", "fixed"],
    "methods": {"coop": {"train": {"max_steps": 5}, "train_by_shots": {1: {"lr": 0.5}, 4: {"lr": 0.05}}},
                "zeroshot": {}},
    "settings": {"few_shot": {"methods": ["coop", "zeroshot"]}},
}


def test_a_profile_runs_each_selection_and_fixed_drops_the_calibrated_rates():
    profile = parse_profile(PROFILE)
    specs = profile.expand()
    assert len(specs) == 2 * 2 * 2  # methods x shots x selections
    by = {(s.method, s.shots, s.selection): s for s in specs}
    assert by["coop", 4, "few_shot_val"].train_overrides() == {"max_steps": 5, "lr": 0.05}
    assert by["coop", 4, "fixed"].train_overrides() == {"max_steps": 5}  # the recipe's published rate, same cap


@pytest.mark.parametrize("where, body, message", [
    ("top", ["val"], "profile: selections: unknown model selection 'val'"),
    ("top", [], "profile: selections must be a non-empty list"),
    ("group", ["oracle"], "groups.extra.selections: unknown model selection 'oracle'"),
])
def test_a_bad_selection_in_a_profile_names_the_place(where, body, message):
    raw = copy.deepcopy(PROFILE)
    if where == "top":
        raw["selections"] = body
    else:
        raw["groups"] = {"extra": {"methods": ["coop"], "selections": body}}
    with pytest.raises(ProfileError, match=message):
        parse_profile(raw)


def test_results_table_and_cli_carry_the_selection(tmp_path, capsys):
    results = tmp_path / "results"
    for selection in ("few_shot_val", "fixed"):
        argv = ["run", "--method", "tip_adapter", "--dataset", "colour", "--shots", "2", "--backbone",
                "adaptlib-test", "--pretrained", "random", "--crop-scale", "1,1", "--selection", selection,
                "--results", str(results), "--quiet"]
        assert main(argv) == 0
    out = capsys.readouterr().out
    assert "tip_adapter [fixed] on colour" in out
    table, problems = collect_with_problems(results)
    assert not problems
    assert sorted(table["selection"]) == ["few_shot_val", "fixed"]
    assert selection_label("tip_adapter", "oracle_test") == "tip_adapter [oracle: test]"


def test_runs_built_for_the_oracle_score_with_the_context_default():
    """oracle_test chooses on test; the result's metrics are still the test metrics of the run."""
    result = execute(spec("tip_adapter", "oracle_test"), RunContext())
    assert result["config"]["selection"] == "oracle_test"
    assert 0 <= result["metrics"]["accuracy"] <= 1


def synthetic_results(gaps: dict[str, float], tasks: int = 8, seeds: int = 3, noise: float = 1.0,
                      rng_seed: int = 0) -> pd.DataFrame:
    """Few-shot runs of methods under few_shot_val and fixed: accuracy = task level + method level + the method's
    gap under fixed + noise (fractions, as results.csv holds them)."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for m, (method, gap) in enumerate(gaps.items()):
        for t in range(tasks):
            level = 40 + 5 * t - 3 * m  # the first method best
            for s in range(1, seeds + 1):
                for selection, shift in (("few_shot_val", 0.0), ("fixed", gap)):
                    acc = level + shift + rng.normal(0, noise)
                    rows.append({"setting": "few_shot", "dialled": False, "shots": 16, "method_label": method,
                                 "dataset": f"task{t}", "seed": s, "selection": selection, "accuracy": acc / 100})
    return pd.DataFrame(rows)


def test_the_comparison_finds_a_real_gap_and_a_rank_change():
    result = selection_comparison(synthetic_results({"a": -12.0, "b": 0.0, "c": 0.0}), 16, n_boot=300)
    table = result["table"].set_index("method")
    assert table.loc["a", "outcome"] == "fixed lower"
    assert table.loc["a", "gap"] == pytest.approx(-12, abs=1)
    assert table.loc["a", "gap_ci_low"] < table.loc["a", "gap"] < table.loc["a", "gap_ci_high"] < -10
    assert set(table.loc[["b", "c"], "outcome"]) == {"no difference shown"}
    assert table.loc["a", "rank_reference"] == 1 and table.loc["a", "rank_other"] == 3  # best, then last
    assert result["ranking_changes"]


def test_the_comparison_rarely_finds_a_gap_where_there_is_none():
    """Under no gap at all, the Holm-adjusted test names a difference for at most about 5% of the datasets."""
    false = sum((selection_comparison(synthetic_results({"a": 0.0, "b": 0.0, "c": 0.0}, noise=3.0, rng_seed=r), 16,
                                      n_boot=50)["table"]["outcome"] != "no difference shown").any()
                for r in range(60))
    assert false / 60 <= 0.1


def test_the_comparison_says_when_its_test_cannot_decide():
    """9 tasks give a sign-flip floor of 1/512: two-sided and Holm-adjusted over 22 methods it is 0.086, so no
    data could show a difference; every outcome says so instead of 'no difference shown'."""
    gaps = {f"m{i}": (-30.0 if i == 0 else 0.0) for i in range(22)}
    result = selection_comparison(synthetic_results(gaps, tasks=9, seeds=1), 16, n_boot=50)
    assert result["smallest_p_adjusted"] == pytest.approx(22 * 2 / 512)
    assert set(result["table"]["outcome"]) == {"not decidable (9 tasks, 22 methods)"}
    assert result["table"].set_index("method").loc["m0", "p_value"] == pytest.approx(2 / 512)
    few = selection_comparison(synthetic_results({"a": -30.0, "b": 0.0}, tasks=9, seeds=1), 16, n_boot=50)
    assert few["smallest_p_adjusted"] == pytest.approx(2 * 2 / 512)
    assert few["table"].set_index("method").loc["a", "outcome"] == "fixed lower"


@pytest.mark.parametrize("tasks, expected", [(1, 0.5), (9, 1 / 512), (16, 2.0 ** -16), (17, 1 / 20_001)])
def test_the_sign_flip_floor(tasks, expected):
    from adaptlib.analysis.resampling import sign_flip_pvalues, smallest_sign_flip_p

    assert smallest_sign_flip_p(tasks) == pytest.approx(expected)
    if tasks <= 16:  # reached by data that all point one way
        greater, _ = sign_flip_pvalues(np.arange(1.0, tasks + 1)[None])
        assert greater[0] == pytest.approx(expected)
