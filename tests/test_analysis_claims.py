"""Unit tests of the claim-testing layer (adaptlib.analysis.claims, adaptlib.analysis.resampling): every function
against answers known by hand or by brute-force enumeration."""

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from adaptlib.analysis import claims as C
from adaptlib.analysis.claims import (VERDICT_KEYS, Claim, ClaimResult, Evidence, argmax_is_first_test, best_of_test,
                                      decide, depth_trend_test, each_wins_test, evaluate_claims, holm,
                                      overall_verdict, paired_difference_test, power_at, rank_correlation_test,
                                      share_test, trend_test, verdict_record)
from adaptlib.analysis.resampling import (as_cube, hierarchical_bootstrap, percentile_ci, rank_score_counts,
                                          rank_trend_pvalues, sign_flip_pvalues, smallest_rank_trend_p, task_means)


def long_table(diffs_by_task: dict, b: float = 50.0) -> pd.DataFrame:
    """Rows (dataset, seed, a, b) with a - b = the given per-seed differences."""
    return pd.DataFrame([{"dataset": t, "seed": s, "a": b + d, "b": b} for t, ds in diffs_by_task.items()
                         for s, d in enumerate(ds)])


# --- Holm, decisions, verdicts ----------------------------------------------------------------------------------

def test_holm_known_values():
    # sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5]), [0.5])
    np.testing.assert_allclose(holm([0.6, 0.9]), [1.0, 1.0])


def test_holm_leaves_untestable_claims_out_of_the_family():
    out = holm([0.02, np.nan, 0.01])
    assert math.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], [0.02, 0.02])
    with pytest.raises(ValueError):
        holm([0.5, 1.5])


@pytest.mark.parametrize("p,p_opp,expected", [
    (0.01, np.nan, "supported"), (0.05, 0.99, "supported"), (0.5, 0.01, "contradicted"),
    (0.5, 0.5, "inconclusive"), (np.nan, np.nan, "inconclusive"), (0.051, 0.9, "inconclusive"),
    (0.01, 0.01, "inconclusive"),
])
def test_decide(p, p_opp, expected):
    assert decide(p, p_opp) == expected


def _result(outcome: str, name: str = "c") -> ClaimResult:
    return ClaimResult(Claim(name, "paired_difference"), outcome, 0.0, (0.0, 0.0), 0.5, 0.5, 0.5, 0.5, "t", 9, 3)


@pytest.mark.parametrize("outcomes,word", [
    (["supported", "supported"], "reproduced"), (["supported", "inconclusive"], "partly"),
    (["supported", "contradicted"], "partly"), (["contradicted", "inconclusive"], "not reproduced"),
    (["inconclusive", "inconclusive"], "inconclusive"), (["contradicted"], "not reproduced"),
])
def test_overall_verdict(outcomes, word):
    v = overall_verdict([_result(o, f"c{i}") for i, o in enumerate(outcomes)])
    assert v["verdict"] == word
    assert (v["supported"], v["contradicted"], v["inconclusive"]) == tuple(
        outcomes.count(o) for o in ("supported", "contradicted", "inconclusive"))
    assert f"{v['inconclusive']} inconclusive" in v["summary"]
    with pytest.raises(ValueError):
        overall_verdict([])


def test_to_dict_has_exactly_the_verdict_keys_and_is_json():
    r = ClaimResult(Claim("beats zero-shot", "paired_difference", unit="points"), "inconclusive", 0.23,
                    (-1.97, 2.73), 0.4, 0.81, 0.6, 1.0, "sign flips", 9, 3)
    d = r.to_dict()
    assert tuple(d) == VERDICT_KEYS
    assert d["claim"] == "beats zero-shot" and d["ci95"] == [-1.97, 2.73] and d["n_seeds"] == 3
    assert r.summary() == "+0.23 points [-1.97, +2.73], p_adj 0.81: inconclusive"
    nan = ClaimResult(Claim("x", "each_wins"), "inconclusive", float("nan"), (float("nan"), float("nan")),
                      float("nan"), float("nan"), float("nan"), float("nan"), "t", 9, 1).to_dict()
    assert nan["estimate"] is None and nan["ci95"] == [None, None] and nan["p_adjusted"] is None
    json.dumps(nan, allow_nan=False)
    record = verdict_record([r])
    assert record["verdict"] == "inconclusive" and record["parts"] == [d]
    json.dumps(record, allow_nan=False)


def test_summary_of_a_contradicted_claim_shows_the_opposite_p():
    r = ClaimResult(Claim("rho", "rank_correlation"), "contradicted", -0.9, (-1.0, -0.5), 0.999, 1.0, 0.001,
                    0.003, "t", 9, 1)
    assert r.summary() == "rho -0.90 [-1.00, -0.50], p_adj (opposite) 0.003: contradicted"


@pytest.mark.parametrize("kwargs", [
    dict(name="x", effect="mean"), dict(name="x", effect="paired_difference", direction="up"),
    dict(name="x", effect="each_wins", direction="less"), dict(name="x", effect="rank_correlation", margin=1.0),
    dict(name="x", effect="paired_difference", margin=-1.0), dict(name="", effect="trend"),
])
def test_claim_rejects_bad_declarations(kwargs):
    with pytest.raises(ValueError):
        Claim(**kwargs)


def test_claim_fills_in_its_test():
    assert Claim("x", "depth_trend", "less").test == C.TEST_OF["depth_trend"]
    assert Claim("x", "trend", test="mine").test == "mine"


# --- resampling -------------------------------------------------------------------------------------------------

def test_as_cube_packs_tasks_and_seeds():
    df = pd.DataFrame({"dataset": ["b", "a", "a", "a"], "seed": [1, 3, 1, 2], "v": [10.0, 3.0, 1.0, 2.0]})
    cube = as_cube(df, ["v"])
    assert cube.tasks == ("a", "b") and cube.n_seeds.tolist() == [3, 1]
    np.testing.assert_array_equal(cube.values[0, :, 0], [1.0, 2.0, 3.0])
    assert np.isnan(cube.values[1, 1:, 0]).all()
    np.testing.assert_allclose(cube.task_means()[:, 0], [2.0, 10.0])
    arr = np.array([[[1.0], [np.nan], [3.0]], [[5.0], [np.nan], [np.nan]]])  # NaN rows = missing seeds
    c2 = as_cube(arr)
    assert c2.n_seeds.tolist() == [2, 1]
    np.testing.assert_allclose(c2.task_means()[:, 0], [2.0, 5.0])
    with pytest.raises(ValueError):
        as_cube(pd.concat([df, df]), ["v"])  # two rows per (task, seed)
    with pytest.raises(ValueError):
        as_cube(df.assign(v=[1.0, np.nan, 2.0, 3.0]), ["v"])
    with pytest.raises(ValueError):
        as_cube(np.array([[[1.0, np.nan]]]))  # partly NaN row


def test_bootstrap_without_resampling_returns_the_statistic():
    x = np.random.default_rng(0).normal(size=(4, 3, 1))
    boot = hierarchical_bootstrap(x, lambda s: task_means(s)[..., 0].mean(axis=1), n_boot=7, resample_tasks=False,
                                  resample_seeds=False)
    np.testing.assert_allclose(boot, x.mean())


def test_bootstrap_draws_seeds_only_from_the_drawn_task():
    # value = 100 * task + seed; tasks have 3, 1 and 2 seeds
    arr = np.full((3, 3, 1), np.nan)
    for t, n in enumerate([3, 1, 2]):
        arr[t, :n, 0] = 100 * t + np.arange(n)
    seen = []

    def check(s):
        v = s[..., 0]
        task = np.floor(v / 100)
        filled = ~np.isnan(v)
        for b in range(len(v)):
            for t in range(v.shape[1]):
                row = task[b, t][filled[b, t]]
                assert len(set(row.tolist())) == 1  # one task's seeds only
                assert filled[b, t].sum() == [3, 1, 2][int(row[0])]  # as many seeds as that task has
                assert np.all(v[b, t][filled[b, t]] % 100 < [3, 1, 2][int(row[0])])
                seen.append(int(row[0]))
        return np.zeros(len(v))

    hierarchical_bootstrap(arr, check, n_boot=200, seed=1)
    assert set(seen) == {0, 1, 2}


def test_bootstrap_one_level_matches_the_plain_bootstrap_of_task_means():
    x = np.random.default_rng(3).normal(size=12)
    boot = hierarchical_bootstrap(x[:, None], lambda s: task_means(s)[..., 0].mean(axis=1), n_boot=20_000, seed=2)
    assert boot.mean() == pytest.approx(x.mean(), abs=0.01)
    assert boot.std() == pytest.approx(x.std(ddof=0) / math.sqrt(len(x)), rel=0.05)


def test_bootstrap_is_deterministic_and_dataframe_equals_array():
    df = long_table({"t1": [1.0, 2.0, 0.5], "t2": [3.0, -1.0, 2.0], "t3": [0.0, 0.2, 0.1]})
    stat = lambda s: (task_means(s)[..., 0] - task_means(s)[..., 1]).mean(axis=1)  # noqa: E731
    a = hierarchical_bootstrap(df, stat, value_cols=["a", "b"], n_boot=300, seed=5)
    b = hierarchical_bootstrap(df, stat, value_cols=["a", "b"], n_boot=300, seed=5)
    c = hierarchical_bootstrap(as_cube(df, ["a", "b"]).values, stat, n_boot=300, seed=5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, hierarchical_bootstrap(df, stat, value_cols=["a", "b"], n_boot=300, seed=6))


def test_percentile_ci():
    assert percentile_ci(np.arange(101.0)) == pytest.approx((2.5, 97.5))
    assert percentile_ci(np.array([np.nan, 1.0, 1.0])) == (1.0, 1.0)
    assert all(math.isnan(v) for v in percentile_ci(np.array([np.nan])))


def test_sign_flip_known_values():
    p_g, p_l = sign_flip_pvalues(np.array([[1.0, 2.0, 3.0], [1.0, -1.0, 0.0], [0.0, 0.0, 0.0]]))
    # [1,2,3]: sums 6,4,2,0,0,-2,-4,-6 -> P(>=6) = 1/8; [1,-1,0]: sums 0,2,-2,0 (x2) -> P(>=0) = 3/4
    np.testing.assert_allclose(p_g, [1 / 8, 3 / 4, 1.0])
    np.testing.assert_allclose(p_l, [1.0, 3 / 4, 1.0])
    assert sign_flip_pvalues(np.ones((1, 9)))[0][0] == pytest.approx(1 / 512)


def test_sign_flip_monte_carlo_beyond_16_tasks_is_valid_and_seeded():
    d = np.ones((1, 20))
    p1 = sign_flip_pvalues(d, n_perm=999, seed=1)[0][0]
    assert 1 / 1000 <= p1 <= 3 / 1000
    assert p1 == sign_flip_pvalues(d, n_perm=999, seed=1)[0][0]


def _brute_score_counts(n):
    return np.bincount([sum(i * p for i, p in enumerate(perm)) for perm in itertools.permutations(range(n))])


@pytest.mark.parametrize("n", range(1, 8))
def test_rank_score_counts_match_enumeration(n):
    counts = rank_score_counts(n)
    brute = _brute_score_counts(n)
    np.testing.assert_array_equal(counts[:len(brute)], brute)
    assert counts.sum() == math.factorial(n)


def _brute_trend_p(levels, y):
    """One-sided p's by enumerating every within-block permutation of the (mid)ranks."""
    rl = rankdata(levels)
    ry = [rankdata(b) for b in y]
    obs = sum(np.dot(rl, r) for r in ry)
    sums = [sum(np.dot(rl, np.asarray(r)[list(p)]) for r, p in zip(ry, combo))
            for combo in itertools.product(*[list(itertools.permutations(range(len(rl))))] * len(ry))]
    sums = np.array(sums)
    return np.mean(sums >= obs - 1e-9), np.mean(sums <= obs + 1e-9)


def test_spearman_exact_p_matches_enumeration():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=6), rng.normal(size=6)
    rho, p_g, p_l, exact = rank_trend_pvalues(x, y[None, None, :])
    assert exact[0]
    assert rho[0] == pytest.approx(np.corrcoef(rankdata(x), rankdata(y))[0, 1])
    np.testing.assert_allclose([p_g[0], p_l[0]], _brute_trend_p(x, [y]))


def test_page_exact_p_matches_enumeration():
    y = np.array([[0.1, 0.5, 0.3], [1.0, 2.0, 3.0]])
    _, p_g, p_l, exact = rank_trend_pvalues(np.arange(3.0), y[None])
    assert exact[0]
    np.testing.assert_allclose([p_g[0], p_l[0]], _brute_trend_p(np.arange(3.0), y))


def test_rank_trend_with_ties_falls_back_to_monte_carlo():
    y = np.array([[1.0, 1.0, 2.0, 3.0, 5.0], [2.0, 1.0, 1.0, 4.0, 4.0]])
    _, p_g, p_l, exact = rank_trend_pvalues(np.arange(5.0), y[None], n_perm=20_000, seed=0)
    assert not exact[0]
    brute = _brute_trend_p(np.arange(5.0), y)
    assert p_g[0] == pytest.approx(brute[0], abs=0.01) and p_l[0] == pytest.approx(brute[1], abs=0.01)


def test_smallest_rank_trend_p():
    assert smallest_rank_trend_p(3) == pytest.approx(1 / 6)
    assert smallest_rank_trend_p(4, 9) == pytest.approx(24.0 ** -9)


# --- the tests ---------------------------------------------------------------------------------------------------

def test_paired_difference_weighs_tasks_not_runs():
    # task t1: 3 seeds of differences 1, 2, 3 (mean 2); task t2: 1 seed of 4 -> estimate (2 + 4) / 2 = 3
    ev = paired_difference_test(long_table({"t1": [1.0, 2.0, 3.0], "t2": [4.0]}), "a", "b", n_boot=200)
    assert ev.estimate == pytest.approx(3.0)
    assert (ev.n_tasks, ev.n_seeds) == (2, 3)
    assert ev.p_value == pytest.approx(1 / 4) and ev.p_opposite == pytest.approx(1.0)
    assert "1-3 seeds" in ev.test
    assert ev.details["per_task"] == {"t1": pytest.approx(2.0), "t2": pytest.approx(4.0)}


def test_paired_difference_exact_p_directions_and_margin():
    df = long_table({f"t{i}": [1.0 + i, 0.5 + i, 2.0] for i in range(9)})
    ev = paired_difference_test(df, "a", "b", n_boot=500)
    assert ev.p_value == pytest.approx(1 / 512) and ev.p_opposite == pytest.approx(1.0)
    assert ev.ci95[0] <= ev.estimate <= ev.ci95[1]
    less = paired_difference_test(df, "a", "b", direction="less", n_boot=500)
    assert less.p_value == pytest.approx(1.0) and less.p_opposite == pytest.approx(1 / 512)
    assert less.estimate == ev.estimate
    # a is 0.5 below b everywhere: not better, but within a margin of 1 (non-inferior)
    worse = long_table({f"t{i}": [-0.5, -0.5] for i in range(9)})
    assert paired_difference_test(worse, "a", "b", n_boot=50).p_value == pytest.approx(1.0)
    assert paired_difference_test(worse, "a", "b", margin=1.0, n_boot=50).p_value == pytest.approx(1 / 512)
    assert paired_difference_test(df, "a", "b", n_boot=300, seed=4) == paired_difference_test(df, "a", "b",
                                                                                              n_boot=300, seed=4)


def test_best_of_is_intersection_union_with_bonferroni_over_candidates():
    rng = np.random.default_rng(0)
    rows = []
    for t in range(9):
        for s in range(2):
            base = rng.normal(50, 5)
            rows.append({"dataset": t, "seed": s, "h1": base + 3, "h2": base - 1, "s1": base, "s2": base + 1})
    df = pd.DataFrame(rows)
    ev = best_of_test(df, ["h1"], ["s1", "s2"], n_boot=200)
    assert ev.p_value == pytest.approx(1 / 512) and ev.estimate == pytest.approx(2.0)
    two = best_of_test(df, ["h1", "h2"], ["s1", "s2"], n_boot=200)
    assert two.p_value == pytest.approx(2 / 512) and two.estimate == pytest.approx(2.0)
    assert two.details["candidates"]["h2"]["worst_difference"] == pytest.approx(-2.0)
    # h2 loses to both singles everywhere: contradicted side, Bonferroni over the 2 baselines
    bad = best_of_test(df, ["h2"], ["s1", "s2"], n_boot=200)
    assert bad.p_value == pytest.approx(1.0) and bad.p_opposite == pytest.approx(2 / 512)
    with pytest.raises(ValueError):
        best_of_test(df, ["h1"], ["h1"])


def test_share_test_is_an_exact_sign_test_with_ties_dropped():
    df = long_table({f"t{i}": [d] for i, d in enumerate([1, 2, 3, 1, 1, 2, 5, 1, -1])})
    ev = share_test(df, "a", "b", n_boot=200)
    assert ev.p_value == pytest.approx(10 / 512)  # P(Binom(9, 1/2) >= 8)
    assert ev.estimate == pytest.approx(8 / 9)
    assert (ev.details["wins"], ev.details["losses"], ev.details["ties"]) == (8, 1, 0)
    tied = long_table({f"t{i}": [d] for i, d in enumerate([1, 2, 3, 1, 1, 2, 5, 1, 0.05])})
    ev = share_test(tied, "a", "b", tie=0.1, n_boot=200)
    assert (ev.details["wins"], ev.details["ties"]) == (8, 1)
    assert ev.p_value == pytest.approx(1 / 256) and ev.estimate == pytest.approx(1.0)
    # the mean can be positive while most tasks lose: contradicted side
    most_lose = long_table({f"t{i}": [d] for i, d in enumerate([50, -1, -1, -1, -1, -1, -1, -1, -1])})
    ev = share_test(most_lose, "a", "b", n_boot=200)
    assert ev.p_value == pytest.approx(511 / 512) and ev.p_opposite == pytest.approx(10 / 512)


def test_rank_correlation_exact_and_with_seeds():
    x = np.arange(9.0)
    ev = rank_correlation_test(x, x ** 2, n_boot=200)
    assert ev.estimate == pytest.approx(1.0) and ev.p_value == pytest.approx(1 / math.factorial(9))
    assert ev.p_opposite == pytest.approx(1.0)
    neg = rank_correlation_test(x, -x, n_boot=200)
    assert neg.p_value == pytest.approx(1.0) and neg.p_opposite == pytest.approx(1 / math.factorial(9))
    y = np.stack([x, x + 0.5, np.full(9, np.nan)], axis=1)  # 2 seeds, third slot missing
    ev2 = rank_correlation_test(x, y, n_boot=200)
    assert ev2.estimate == pytest.approx(1.0) and ev2.n_seeds == 2
    with pytest.raises(ValueError):
        rank_correlation_test(x, x[:5])


def test_depth_trend_over_three_layers_can_never_be_supported():
    ev = depth_trend_test([3.0, 2.0, 1.0], n_boot=100)
    assert ev.estimate == pytest.approx(-1.0) and ev.p_value == pytest.approx(1 / 6)
    [r] = evaluate_claims([(Claim("low layers change most", "depth_trend", "less"), {"values": [3.0, 2.0, 1.0]})])
    assert r.outcome == "inconclusive"


def test_depth_trend_over_twelve_layers_averages_tasks():
    layers = np.arange(12.0)
    values = np.stack([12 - layers, 24 - 2 * layers + 0.1, 13 - layers])  # 3 tasks, all falling
    ev = depth_trend_test(values, n_boot=100)
    assert ev.p_value == pytest.approx(1 / math.factorial(12))
    assert (ev.n_tasks, ev.n_seeds) == (3, 1)
    np.testing.assert_allclose(ev.details["profile"], values.mean(axis=0))


def test_argmax_is_first_p_is_rank_over_modules():
    prof = np.r_[30.0, np.arange(25.0)]
    ev = argmax_is_first_test(prof, n_boot=50)
    assert ev.p_value == pytest.approx(1 / 26) and ev.estimate == pytest.approx(30.0 - 24.0)
    assert math.isnan(ev.ci95[0])  # one run: no CI
    second = argmax_is_first_test(np.r_[23.5, np.arange(25.0)], n_boot=50)
    assert second.p_value == pytest.approx(2 / 26) and second.details["rank"] == 2
    assert argmax_is_first_test(np.r_[10.0, np.arange(7.0)], n_boot=50).p_value == pytest.approx(1 / 8)
    least = argmax_is_first_test(np.r_[-1.0, np.arange(25.0)], direction="less", n_boot=50)
    assert least.p_value == pytest.approx(1 / 26)
    tasks = np.stack([prof, prof + 1, prof * 2])
    ev3 = argmax_is_first_test(tasks, n_boot=200)
    assert ev3.n_tasks == 3 and ev3.ci95[0] <= ev3.estimate <= ev3.ci95[1]


def test_trend_test_blocks_tasks():
    values = np.array([[4.0, 3.0, 2.0, 1.0]] * 9) + np.arange(9.0)[:, None]  # every task falls with the weight
    ev = trend_test(values, levels=[0, 2, 8, 32], direction="less", n_boot=100)
    assert ev.estimate == pytest.approx(-1.0) and ev.p_value == pytest.approx(24.0 ** -9)
    df = pd.DataFrame([{"dataset": t, "seed": 1, **{f"w{w}": values[t, i] for i, w in enumerate([0, 2, 8, 32])}}
                       for t in range(9)])
    ev2 = trend_test(df, ["w0", "w2", "w8", "w32"], [0, 2, 8, 32], direction="less", n_boot=100)
    assert ev2.p_value == ev.p_value and ev2.n_tasks == 9
    one = trend_test(values[:1], direction="less", n_boot=10)  # one task, 4 levels: smallest p 1/24
    assert one.p_value == pytest.approx(1 / 24)
    with pytest.raises(ValueError):
        trend_test(values, levels=[0, 0, 1, 2])


def _wins_array(margin=10.0, noise=0.5, seeds=3, tasks=9, k=3, seed=0):
    rng = np.random.default_rng(seed)
    x = 50 + noise * rng.standard_normal((tasks, seeds, k))
    for t in range(tasks):
        x[t, :, t % k] += margin
    return x


def test_each_wins_supported_when_every_method_wins_clearly():
    x = _wins_array()
    ev = each_wins_test(x, n_boot=200)
    assert ev.p_value < 1e-3 and ev.p_opposite == pytest.approx(1.0)
    assert ev.estimate == pytest.approx(10.0, abs=1.5)
    assert ev.details["methods"]["0"]["best_on"] == [0, 3, 6]
    df = pd.DataFrame([{"dataset": f"t{t}", "seed": s, "coop": x[t, s, 0], "adapter": x[t, s, 1],
                        "ln": x[t, s, 2]} for t in range(9) for s in range(3)])
    ev_df = each_wins_test(df, ["coop", "adapter", "ln"], n_boot=200)
    assert ev_df.p_value == pytest.approx(ev.p_value)
    assert set(ev_df.details["methods"]) == {"coop", "adapter", "ln"}


def test_each_wins_contradicted_when_a_method_always_loses():
    x = _wins_array()
    x[:, :, 2] = x[:, :, :2].max(axis=2) - 10  # ln is 10 below the best on every task
    ev = each_wins_test(x, n_boot=100)
    assert ev.p_value == pytest.approx(1.0) and ev.p_opposite < 1e-3 and ev.estimate < 0


def test_each_wins_ties_and_ceiling_are_no_winner():
    tied = np.full((9, 3, 3), 100.0)
    ev = each_wins_test(tied, ceiling=100.0, n_boot=50)
    assert math.isnan(ev.p_value) and len(ev.details["excluded_tasks"]) == 9
    ev_nc = each_wins_test(tied, n_boot=50)  # no ceiling given: exact ties are simply not wins
    assert ev_nc.p_value == pytest.approx(1.0) and ev_nc.estimate == 0.0
    x = _wins_array()
    x[0, :, 0], x[0, :, 1], x[0, :, 2] = 100.0, 99.8, 60.0  # task 0 saturated: the two best at the ceiling
    ev2 = each_wins_test(x, ceiling=100.0, tol=0.5, chance={t: 10.0 for t in range(9)}, n_boot=50)
    assert ev2.details["excluded_tasks"] == {0: "ceiling"}
    assert 0 not in ev2.details["methods"]["0"]["p_by_task"]
    x[1] = 10.0 + 0.01 * np.arange(3)  # task 1 at chance
    ev3 = each_wins_test(x, ceiling=100.0, tol=0.5, chance=10.0, n_boot=50)
    assert ev3.details["excluded_tasks"] == {0: "ceiling", 1: "chance"}


def test_each_wins_needs_two_seeds():
    ev = each_wins_test(_wins_array(seeds=1), n_boot=20)
    assert math.isnan(ev.p_value) and "untestable" in ev.test
    [r] = evaluate_claims([(Claim("each wins", "each_wins"), {"data": _wins_array(seeds=1)})])
    assert r.outcome == "inconclusive"


def test_each_wins_p_by_hand_for_two_methods_one_task():
    # one task, 3 seeds, 2 methods: the test is the paired t-test (df 2), times 1 task
    from scipy.stats import ttest_rel
    a = np.array([5.0, 6.5, 7.0])
    b = np.array([4.0, 4.5, 6.8])
    ev = each_wins_test(np.stack([a, b], axis=1)[None], n_boot=20)
    p_a = ttest_rel(a, b, alternative="greater").pvalue
    p_b = ttest_rel(b, a, alternative="greater").pvalue
    assert ev.p_value == pytest.approx(max(p_a, p_b))  # both must win somewhere: b's p
    assert ev.details["methods"]["0"]["p"] == pytest.approx(p_a)


# --- evaluating claims ------------------------------------------------------------------------------------------

def test_evaluate_claims_applies_holm_within_the_notebook():
    df = long_table({f"t{i}": [1.0 + 0.1 * i, 2.0] for i in range(9)})
    x = np.arange(9.0)
    items = [
        (Claim("beats zero-shot", "paired_difference", unit="points"), {"data": df, "a_col": "a", "b_col": "b"}),
        (Claim("advantage grows with difficulty", "rank_correlation"), {"x": x, "y": x + np.r_[0, 3, 0, 3, 0, 3, 0,
                                                                                                3, 0]}),
        (Claim("first LN changes most", "argmax_is_first"), {"values": np.r_[9.0, np.arange(9.0)]}),
    ]
    results = evaluate_claims(items, n_boot=200)
    p = [r.p_value for r in results]
    np.testing.assert_allclose([r.p_adjusted for r in results], holm(p))
    assert results[0].p_value == pytest.approx(1 / 512) and results[0].outcome == "supported"
    assert results[2].p_value == pytest.approx(1 / 10) and results[2].outcome == "inconclusive"
    assert overall_verdict(results)["verdict"] == "partly"
    again = evaluate_claims(items, n_boot=200)
    assert [r.to_dict() for r in again] == [r.to_dict() for r in results]
    json.dumps(verdict_record(results), allow_nan=False)


def test_evaluate_claims_checks_declarations():
    df = long_table({f"t{i}": [1.0] for i in range(3)})
    claim = Claim("c", "paired_difference")
    with pytest.raises(ValueError, match="declared by the Claim"):
        evaluate_claims([(claim, {"data": df, "a_col": "a", "b_col": "b", "direction": "less"})])
    with pytest.raises(ValueError, match="unique"):
        evaluate_claims([(claim, {"data": df, "a_col": "a", "b_col": "b"})] * 2)
    ev = paired_difference_test(df, "a", "b", direction="less", n_boot=10)
    with pytest.raises(ValueError, match="declared"):
        evaluate_claims([(claim, ev)])
    good = paired_difference_test(df, "a", "b", n_boot=10)
    [r] = evaluate_claims([(claim, good)])
    assert r.p_value == good.p_value == pytest.approx(1 / 8)
    assert isinstance(good, Evidence)


def test_claim_margin_reaches_the_test():
    df = long_table({f"t{i}": [-0.5] for i in range(9)})
    [plain, margin] = evaluate_claims([
        (Claim("hybrid beats", "paired_difference"), {"data": df, "a_col": "a", "b_col": "b"}),
        (Claim("hybrid matches within 1", "paired_difference", margin=1.0), {"data": df, "a_col": "a",
                                                                             "b_col": "b"})], n_boot=50)
    assert plain.outcome == "contradicted" and margin.outcome == "supported"


def test_power_at_is_deterministic_and_says_when_a_rule_cannot_decide():
    a = power_at("paired_difference", n_tasks=9, n_seeds=3, effect=1.0, n_sims=200, seed=3)
    assert a == power_at("paired_difference", n_tasks=9, n_seeds=3, effect=1.0, n_sims=200, seed=3)
    three = power_at("depth_trend", n_tasks=3, n_items=3, effect=10.0, n_sims=200)
    assert three.power == 0.0 and not three.reaches(0.8)
    assert "power 0.0%" in three.summary()
    with pytest.raises(ValueError):
        power_at("mean", n_tasks=9, effect=1.0)


def test_claim_modules_do_not_import_torch():
    for name in ("claims.py", "resampling.py"):
        src = (Path(C.__file__).parent / name).read_text()
        assert "import torch" not in src and "from torch" not in src
