"""Claim testing for the study notebooks: every sub-claim of a paper is declared, then tested, then decided.

Why: a sub-claim decided as a bare inequality on a point estimate ("rho < 0", "the winner is not always the same")
says "supported" on pure noise far too often (simulated with no effect: 41% for APEX claim 1, 99.99% for NTU's
"each wins", 50% for CLIPFit's depth trend over three layers). Here a sub-claim is

1. **declared** before any data is seen, as a :class:`Claim`: what effect it is about (a paired difference, the
   best of several methods against baselines, a share of tasks, a rank correlation, a trend over levels or
   layers, "each method wins somewhere", "the first module changes most"), in which direction, and so with which
   test;
2. **tested** by a function of this module that returns :class:`Evidence`: the effect's estimate, a 95% CI from a
   hierarchical bootstrap (tasks, then seeds within a task; :mod:`.resampling`), and two one-sided p-values, one
   in the claimed direction and one in the opposite direction, from a test that is valid with the study's few
   tasks (exact permutation or sign-flip nulls, exact binomial, intersection-union arguments);
3. **decided** by :func:`evaluate_claims` with the p-values of one notebook's sub-claims Holm-adjusted (each
   direction separately): **supported** if the adjusted p in the claimed direction is <= alpha, **contradicted**
   if the adjusted p in the opposite direction is <= alpha, **inconclusive** otherwise. Each decision is a
   one-sided level-alpha test with Holm's family-wise control over the notebook's claims, so with no effect at
   all a claim is called supported at most alpha of the time (and reaches either decision at most 2 alpha of the
   time). The decision uses the test only; the CI describes the effect's size and may, at the margin, disagree
   with the test (a percentile bootstrap over 9 tasks is somewhat too narrow).

:func:`overall_verdict` turns the outcomes into a paper's verdict and :meth:`ClaimResult.to_dict` gives the
``verdict.json`` record of each sub-claim. :func:`power_at` simulates a rule at given sample sizes so that a
notebook can say "this rule cannot reach 80% power here" instead of deciding; ``tests/test_claim_error_rates.py``
checks every rule's false-positive rate and power with the study's sample sizes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import binom
from scipy.stats import t as student_t

from .resampling import (DEFAULT_N_PERM, EXACT_RANK_MAX_ITEMS, EXACT_SIGN_FLIP_MAX_TASKS, Cube, as_cube,
                         hierarchical_bootstrap, percentile_ci, rank_pearson, rank_trend_pvalues, sign_flip_pvalues,
                         smallest_rank_trend_p, task_means)

Direction = Literal["greater", "less"]
Outcome = Literal["supported", "contradicted", "inconclusive"]
SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
REPRODUCED, PARTLY, NOT_REPRODUCED = "reproduced", "partly", "not reproduced"

EFFECTS = ("paired_difference", "best_of", "share_of_tasks", "rank_correlation", "trend", "depth_trend",
           "each_wins", "argmax_is_first")
DIRECTIONS = ("greater", "less")
VERDICT_KEYS = ("claim", "outcome", "estimate", "ci95", "p_value", "p_adjusted", "test", "n_tasks", "n_seeds")

TEST_OF = {
    "paired_difference": "sign-flip permutation test of the mean over tasks of per-task mean differences",
    "best_of": "intersection-union of sign-flip tests (a candidate against every baseline), Bonferroni over "
               "candidates",
    "share_of_tasks": "exact sign test on per-task mean differences",
    "rank_correlation": "Spearman's rho over items, exact permutation p",
    "trend": "Page's trend test (within-task Spearman rho with the level), exact permutation p",
    "depth_trend": "Spearman's rho of the per-layer profile with depth, exact permutation p over layers",
    "each_wins": "intersection-union over methods of strict per-task wins (t-tests with each task's own seed "
                 "noise), Bonferroni over tasks",
    "argmax_is_first": "rank of the first module among all modules, exact permutation p over modules",
}
_MARGIN_EFFECTS = ("paired_difference", "best_of")
_GREATER_ONLY = ("each_wins",)


def _check_direction(direction: str) -> int:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    return 1 if direction == "greater" else -1


@dataclass(frozen=True)
class Claim:
    """A sub-claim as declared before the data is seen: its effect kind, the claimed direction and the test.

    ``margin`` (paired differences and best-of only) turns "A beats B" into the non-inferiority claim "A is at
    least B minus ``margin``" (in the claimed direction), e.g. "a hybrid at least matches the best single method
    within 1 point". ``unit`` is only for :meth:`ClaimResult.summary`.
    """

    name: str
    effect: str
    direction: str = "greater"
    test: str = ""
    margin: float = 0.0
    unit: str = ""

    def __post_init__(self):
        if not self.name:
            raise ValueError("a claim needs a name")
        if self.effect not in EFFECTS:
            raise ValueError(f"effect must be one of {EFFECTS}, got {self.effect!r}")
        _check_direction(self.direction)
        if self.effect in _GREATER_ONLY and self.direction != "greater":
            raise ValueError(f"a {self.effect} claim is only ever 'greater' (each method wins somewhere)")
        if not (math.isfinite(self.margin) and self.margin >= 0):
            raise ValueError(f"margin must be finite and >= 0, got {self.margin}")
        if self.margin and self.effect not in _MARGIN_EFFECTS:
            raise ValueError(f"a margin applies to {_MARGIN_EFFECTS} claims only, not {self.effect!r}")
        if not self.test:
            object.__setattr__(self, "test", TEST_OF[self.effect])


@dataclass(frozen=True)
class Evidence:
    """What a test function measured: the effect's estimate and 95% CI, the one-sided p-values in the claimed
    (``p_value``) and the opposite (``p_opposite``) direction (NaN: the data cannot test it), the exact test."""

    effect: str
    direction: str
    estimate: float
    ci95: tuple[float, float]
    p_value: float
    p_opposite: float
    test: str
    n_tasks: int
    n_seeds: int
    margin: float = 0.0
    details: Mapping[str, Any] = field(default_factory=dict)


def _num(x: Any) -> float | None:
    """A JSON number: NaN/inf -> None, else 6 significant digits."""
    if x is None:
        return None
    x = float(x)
    return float(f"{x:.6g}") if math.isfinite(x) else None


@dataclass(frozen=True)
class ClaimResult:
    """A decided sub-claim: the evidence, the Holm-adjusted p-values of its notebook and the outcome."""

    claim: Claim
    outcome: str
    estimate: float
    ci95: tuple[float, float]
    p_value: float
    p_adjusted: float
    p_opposite: float
    p_opposite_adjusted: float
    test: str
    n_tasks: int
    n_seeds: int
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The ``verdict.json`` record of the sub-claim (exactly :data:`VERDICT_KEYS`; NaN becomes null).
        ``p_value``/``p_adjusted`` are in the claimed direction; a 'contradicted' outcome rests on the opposite
        direction's ``p_opposite_adjusted`` (an attribute, not a key)."""
        return {"claim": self.claim.name, "outcome": self.outcome, "estimate": _num(self.estimate),
                "ci95": [_num(self.ci95[0]), _num(self.ci95[1])], "p_value": _num(self.p_value),
                "p_adjusted": _num(self.p_adjusted), "test": self.test, "n_tasks": int(self.n_tasks),
                "n_seeds": int(self.n_seeds)}

    def summary(self) -> str:
        """One line: '+0.23 points [-1.97, +2.73], p_adj 0.81: inconclusive'."""
        label = {"rank_correlation": "rho ", "depth_trend": "rho ", "trend": "mean rho ",
                 "share_of_tasks": "share "}.get(self.claim.effect, "")
        fmt = "{:.2f}" if self.claim.effect == "share_of_tasks" else "{:+.2f}"
        unit = f" {self.claim.unit}" if self.claim.unit else ""
        est = "n/a" if not math.isfinite(self.estimate) else fmt.format(self.estimate)
        lo, hi = self.ci95
        ci = "[n/a]" if not (math.isfinite(lo) and math.isfinite(hi)) else \
            f"[{fmt.format(lo)}, {fmt.format(hi)}]"
        if self.outcome == CONTRADICTED:
            p = f"p_adj (opposite) {self.p_opposite_adjusted:.2g}"
        else:
            p = "p_adj n/a" if not math.isfinite(self.p_adjusted) else f"p_adj {self.p_adjusted:.2g}"
        return f"{label}{est}{unit} {ci}, {p}: {self.outcome}"


# --- decisions ---------------------------------------------------------------------------------------------------

def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment (family-wise error control under any dependence); NaN entries (claims the
    data cannot test) stay NaN and do not count in the family."""
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if ok.size:
        if np.any((p[ok] < 0) | (p[ok] > 1)):
            raise ValueError(f"p-values must lie in [0, 1], got {p[ok].tolist()}")
        order = ok[np.argsort(p[ok], kind="stable")]
        m = len(order)
        adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
        out[order] = np.minimum(adjusted, 1.0)
    return out


def decide(p_adjusted: float, p_opposite_adjusted: float = float("nan"), alpha: float = 0.05) -> str:
    """'supported' if the (adjusted) one-sided test in the claimed direction rejects no-effect (p <= alpha, the
    usual level-alpha rule), 'contradicted' if the test in the opposite direction does, 'inconclusive' otherwise
    (also when a p-value is NaN, i.e. the data cannot test the claim, or, impossibly for a proper pair of tests,
    both reject)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    claimed = bool(np.isfinite(p_adjusted) and p_adjusted <= alpha)
    opposite = bool(np.isfinite(p_opposite_adjusted) and p_opposite_adjusted <= alpha)
    if claimed and not opposite:
        return SUPPORTED
    if opposite and not claimed:
        return CONTRADICTED
    return INCONCLUSIVE


def overall_verdict(results: Sequence[ClaimResult]) -> dict:
    """A paper's verdict from its sub-claims: 'reproduced' if all are supported, 'not reproduced' if none is
    supported and at least one is contradicted, 'inconclusive' if none is supported or contradicted, 'partly'
    otherwise; with the counts, so that 'partly' with 3 inconclusive sub-claims reads as such."""
    outcomes = [r.outcome for r in results]
    if not outcomes:
        raise ValueError("a verdict needs at least one sub-claim")
    n_sup, n_con, n_inc = (outcomes.count(o) for o in (SUPPORTED, CONTRADICTED, INCONCLUSIVE))
    if n_sup == len(outcomes):
        word = REPRODUCED
    elif n_sup == 0:
        word = NOT_REPRODUCED if n_con else INCONCLUSIVE
    else:
        word = PARTLY
    return {"verdict": word, "supported": n_sup, "contradicted": n_con, "inconclusive": n_inc,
            "claims": len(outcomes),
            "summary": f"{word}: {n_sup} of {len(outcomes)} sub-claims supported, {n_con} contradicted, "
                       f"{n_inc} inconclusive"}


def verdict_record(results: Sequence[ClaimResult]) -> dict:
    """The evidence part of ``verdict.json``: the overall verdict, its counts and every sub-claim's record."""
    return {**overall_verdict(results), "parts": [r.to_dict() for r in results]}


# --- the tests' cores (vectorised over a leading batch of data sets: the same code decides a notebook's claim
# --- and thousands of simulated ones) ----------------------------------------------------------------------------

def _best_of_core(means: np.ndarray, n_candidates: int, sign: int, margin: float, n_perm: int,
                  seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """means (B, T, C + K): candidates first. One-sided sign-flip p's of 'candidate c beats baseline b' on the
    per-task differences sign*(c - b) + margin; p = Bonferroni over candidates of the largest p over baselines
    (intersection-union: beating every baseline needs every comparison to reject); opposite p = the largest over
    candidates of Bonferroni over baselines of 'some baseline beats c'. Returns (p, p_opposite, p per candidate)."""
    n_b, _, k = means.shape
    n_base = k - n_candidates
    if n_candidates < 1 or n_base < 1:
        raise ValueError("need at least one candidate and one baseline")
    p_g = np.empty((n_b, n_candidates, n_base))
    p_l = np.empty((n_b, n_candidates, n_base))
    for c in range(n_candidates):
        for b in range(n_base):
            d = sign * (means[..., c] - means[..., n_candidates + b]) + margin
            p_g[:, c, b], p_l[:, c, b] = sign_flip_pvalues(d, n_perm=n_perm, seed=seed)
    p_cand = p_g.max(axis=2)
    p_claim = np.minimum(1.0, n_candidates * p_cand.min(axis=1))
    p_opp = np.minimum(1.0, n_base * p_l.min(axis=2)).max(axis=1)
    return p_claim, p_opp, np.minimum(1.0, n_candidates * p_cand)


def _share_core(d: np.ndarray, sign: int, tie: float, null_share: float):
    """d (B, T) per-task mean differences. Exact binomial (sign) test on the tasks whose difference is beyond
    ``tie``: p = P(Binom(n, null_share) >= wins), opposite p = P(Binom(n, null_share) <= wins)."""
    ds = sign * d
    wins = (ds > tie).sum(axis=1)
    losses = (ds < -tie).sum(axis=1)
    n = wins + losses
    p_claim = binom.sf(wins - 1, n, null_share)
    p_opp = binom.cdf(wins, n, null_share)
    return np.minimum(p_claim, 1.0), np.minimum(p_opp, 1.0), wins, losses


def _each_wins_core(x: np.ndarray, n_seeds: np.ndarray, eligible: np.ndarray):
    """x (B, T, S, K) seed values (NaN in absent seed slots; the seeds are paired across methods), eligible (B, T).

    A method m wins task t when it beats every other method j there: one-sided t-test of the difference of the
    two methods' seed means on t, with the task's own seed noise, the residual variance of the methods x seeds
    table of that task (additive seed effects: same seed, same few-shot data; df = (seeds - 1)(methods - 1), 4 for
    3 seeds and 3 methods). Each task keeps its own noise level: pooling the seed variance over tasks gains power
    but called wins at 10% instead of 5% in simulations where the noisiest tasks held the ties. p_win(m, t) = the
    largest p over j (intersection-union). m wins somewhere when its smallest p_win, Bonferroni-multiplied by the
    number of testable eligible tasks, is small; "every method wins somewhere" is an intersection over methods,
    so its p is the largest of those (no correction needed). Opposite ("some method never wins"): m never wins
    when on every testable eligible task some j beats it (Bonferroni over the K - 1 j's, intersection over tasks:
    largest p over tasks); union over methods: Bonferroni by K. Tasks with one seed cannot be tested and are left
    out; with none left both p's are NaN. Returns (p, p_opposite, p_win Bonferroni-adjusted (B, K, T), df (T,)).
    """
    n_b, n_t, n_s, k = x.shape
    filled = ~np.isnan(x[..., 0])  # (B, T, S)
    ns = n_seeds.astype(np.float64)
    df = (n_seeds - 1) * (k - 1)  # (T,)
    testable = eligible & (df > 0)[None, :]
    n_test = testable.sum(axis=1)
    xz = np.where(filled[..., None], x, 0.0)
    col = xz.sum(axis=2) / ns[None, :, None]  # (B, T, K) method means
    row = xz.mean(axis=3)  # (B, T, S) seed means over methods (0 in absent slots)
    grand = col.mean(axis=2)  # (B, T)
    resid = np.where(filled[..., None], xz - row[..., None] - col[:, :, None, :] + grand[:, :, None, None], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        s2 = (resid ** 2).sum(axis=(2, 3)) / np.where(df > 0, df, 1)  # (B, T)
    se = np.sqrt(2.0 * s2 / ns[None, :])
    p_gt = np.ones((n_b, k, k, n_t))  # p of "m > j on t"
    for m in range(k):
        for j in range(m + 1, k):
            diff = col[..., m] - col[..., j]
            with np.errstate(invalid="ignore", divide="ignore"):
                tstat = np.where(se > 0, diff / np.where(se > 0, se, 1.0), np.sign(diff) * np.inf)
                p_mj = student_t.sf(tstat, np.maximum(df, 1)[None, :])
                p_jm = student_t.cdf(tstat, np.maximum(df, 1)[None, :])
            no_test = ~testable | ((se == 0) & (diff == 0))  # untestable, or an exact tie
            p_gt[:, m, j] = np.where(no_test, 1.0, p_mj)
            p_gt[:, j, m] = np.where(no_test, 1.0, p_jm)
    others = ~np.eye(k, dtype=bool)
    p_win = np.where(others[None, :, :, None], p_gt, -np.inf).max(axis=2)  # (B, K, T)
    p_win_adj = np.minimum(1.0, n_test[:, None, None] * p_win)
    p_claim = p_win_adj.min(axis=2).max(axis=1)
    p_beaten = np.where(others[None, :, :, None], p_gt.transpose(0, 2, 1, 3), np.inf).min(axis=2)  # some j > m
    p_lose = np.where(testable[:, None, :], np.minimum(1.0, (k - 1) * p_beaten), -np.inf).max(axis=2)  # (B, K)
    p_opp = np.minimum(1.0, k * p_lose.min(axis=1))
    p_claim = np.where(n_test == 0, np.nan, p_claim)
    p_opp = np.where(n_test == 0, np.nan, p_opp)
    return p_claim, p_opp, p_win_adj, df


def _first_rank_core(profile: np.ndarray, sign: int) -> tuple[np.ndarray, np.ndarray]:
    """profile (B, M). Under exchangeable modules the first one's rank from the top is uniform on 1..M, so
    P(rank <= r) = r / M; ties count against the claim."""
    p = sign * profile
    first, rest = p[:, :1], p[:, 1:]
    m = p.shape[1]
    p_claim = (1 + (rest >= first).sum(axis=1)) / m
    p_opp = (1 + (rest <= first).sum(axis=1)) / m
    return p_claim, p_opp


# --- the tests -------------------------------------------------------------------------------------------------

def _seed_info(cube: Cube) -> int:
    return int(cube.n_seeds.max())


def _margin_text(margin: float) -> str:
    return f", non-inferiority margin {margin:g}" if margin else ""


def _sign_flip_name(n_tasks: int) -> str:
    return "exact sign-flip test" if n_tasks <= EXACT_SIGN_FLIP_MAX_TASKS else "Monte-Carlo sign-flip test"


def paired_difference_test(data: Any, a_col: str, b_col: str, *, task_col: str = "dataset", seed_col: str = "seed",
                           direction: str = "greater", margin: float = 0.0, n_boot: int = 2000, seed: int = 0,
                           n_perm: int = DEFAULT_N_PERM) -> Evidence:
    """Is A better (``direction='greater'``) or worse than B on the same tasks and seeds?

    ``data``: one row per (task, seed) run with columns ``a_col`` and ``b_col`` (a one-seed baseline such as
    zero-shot is repeated on each seed's row). Estimate: the mean over tasks of each task's seed-mean difference
    a - b (every task weighs the same, however many seeds it has). p: the sign-flip permutation test of that mean
    (exact for <= 16 tasks) — tasks are the units, so the test is valid for 9 tasks of unequal noise where a t-test
    leans on normality, and a bootstrap p undercovers. With ``margin`` the claim is non-inferiority: H0 is
    "A is worse than B by ``margin`` or more". CI: hierarchical bootstrap (tasks, then seeds).
    """
    sign = _check_direction(direction)
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be finite and >= 0, got {margin}")
    cube = as_cube(data, [a_col, b_col], task_col=task_col, seed_col=seed_col)
    means = cube.task_means()
    p, p_opp, _ = _best_of_core(means[None], 1, sign, margin, n_perm, seed)
    diff = means[:, 0] - means[:, 1]
    def stat(s: np.ndarray) -> np.ndarray:
        tm = task_means(s)
        return (tm[..., 0] - tm[..., 1]).mean(axis=1)

    boot = hierarchical_bootstrap(cube, stat, n_boot=n_boot, seed=seed)
    test = (f"{_sign_flip_name(cube.n_tasks)} over {cube.n_tasks} tasks of the per-task mean difference "
            f"{a_col} - {b_col} ({cube.seeds_text()} per task), one-sided ({direction}){_margin_text(margin)}; "
            f"CI: hierarchical bootstrap (tasks, then seeds)")
    return Evidence("paired_difference", direction, float(diff.mean()), percentile_ci(boot), float(p[0]),
                    float(p_opp[0]), test, cube.n_tasks, _seed_info(cube), margin,
                    {"per_task": dict(zip(cube.tasks, diff.tolist()))})


def best_of_test(data: Any, candidates: Sequence[str], baselines: Sequence[str], *, task_col: str = "dataset",
                 seed_col: str = "seed", direction: str = "greater", margin: float = 0.0, n_boot: int = 2000,
                 seed: int = 0, n_perm: int = DEFAULT_N_PERM) -> Evidence:
    """Does some candidate (e.g. one of the fixed hybrids) beat every baseline (e.g. each single method)?

    "The best hybrid at least matches the best single method" picks both bests on the same data; testing the
    picked pair would be biased upward. Instead: a candidate beats the best baseline iff it beats every baseline,
    an intersection (its p is the largest of its sign-flip p's, no correction needed); "some candidate does" is a
    union over the candidates (Bonferroni). Estimate: the best candidate's smallest mean difference to a
    baseline, with the selection redone in every bootstrap resample. ``margin``: as in
    :func:`paired_difference_test`.
    """
    sign = _check_direction(direction)
    candidates, baselines = list(candidates), list(baselines)
    if not candidates or not baselines:
        raise ValueError("need at least one candidate and one baseline")
    if set(candidates) & set(baselines):
        raise ValueError(f"{sorted(set(candidates) & set(baselines))} are both candidate and baseline")
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be finite and >= 0, got {margin}")
    cube = as_cube(data, candidates + baselines, task_col=task_col, seed_col=seed_col)
    n_c = len(candidates)

    def stat(batch_means: np.ndarray) -> np.ndarray:  # (B, T, C + K) -> (B,)
        d = batch_means[..., :n_c, None] - batch_means[..., None, n_c:]  # (B, T, C, K)
        worst = (sign * d.mean(axis=1)).min(axis=2)  # each candidate's worst case, in the claimed direction
        return sign * worst.max(axis=1)

    means = cube.task_means()
    p, p_opp, p_cand = _best_of_core(means[None], n_c, sign, margin, n_perm, seed)
    boot = hierarchical_bootstrap(cube, lambda s: stat(task_means(s)), n_boot=n_boot, seed=seed)
    d = means[:, :n_c, None] - means[:, None, n_c:]
    worst = sign * (sign * d.mean(axis=0)).min(axis=1)
    test = (f"intersection-union of {_sign_flip_name(cube.n_tasks)}s over {cube.n_tasks} tasks "
            f"({cube.seeds_text()} per task): a candidate must beat each of {len(baselines)} baselines, one-sided "
            f"({direction}){_margin_text(margin)}, Bonferroni over {n_c} candidate(s); CI: hierarchical bootstrap "
            f"(tasks, then seeds) of the best candidate's smallest difference, selection included")
    details = {"candidates": {c: {"worst_difference": float(w), "p": float(pc)}
                              for c, w, pc in zip(candidates, worst, p_cand[0])}}
    return Evidence("best_of", direction, float(stat(means[None])[0]), percentile_ci(boot), float(p[0]),
                    float(p_opp[0]), test, cube.n_tasks, _seed_info(cube), margin, details)


def share_test(data: Any, a_col: str, b_col: str, *, task_col: str = "dataset", seed_col: str = "seed",
               direction: str = "greater", tie: float = 0.0, null_share: float = 0.5, n_boot: int = 2000,
               seed: int = 0) -> Evidence:
    """Is A better than B on most tasks (e.g. "the adaptive ensemble helps on (nearly) every task")?

    A mean difference >= 0 can come from one large gain and many losses; the claim is about tasks. Each task's
    seed-mean difference counts as a win (beyond ``tie`` in the claimed direction), a loss, or a tie (dropped,
    e.g. when the ensemble chose alpha = 1 and equals the adapted model); the exact binomial (sign) test asks
    whether wins exceed ``null_share`` of the untied tasks (0.5: "most"). With 9 tasks that needs 8 wins of 9.
    Estimate: the share of untied tasks going the claimed way; CI: hierarchical bootstrap.
    """
    sign = _check_direction(direction)
    if not 0 < null_share < 1:
        raise ValueError(f"null_share must be in (0, 1), got {null_share}")
    if tie < 0:
        raise ValueError(f"tie must be >= 0, got {tie}")
    cube = as_cube(data, [a_col, b_col], task_col=task_col, seed_col=seed_col)
    means = cube.task_means()
    d = means[:, 0] - means[:, 1]
    p, p_opp, wins, losses = _share_core(d[None], sign, tie, null_share)

    def stat(s: np.ndarray) -> np.ndarray:
        tm = task_means(s)
        ds = sign * (tm[..., 0] - tm[..., 1])
        w, lo = (ds > tie).sum(axis=1), (ds < -tie).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(w + lo > 0, w / np.maximum(w + lo, 1), np.nan)

    boot = hierarchical_bootstrap(cube, stat, n_boot=n_boot, seed=seed)
    w, lo = int(wins[0]), int(losses[0])
    test = (f"exact sign test over {cube.n_tasks} tasks of the per-task mean difference {a_col} - {b_col} "
            f"({cube.seeds_text()} per task; |difference| <= {tie:g} is a tie): {w} win(s), {lo} loss(es), "
            f"{cube.n_tasks - w - lo} tie(s) against a share of {null_share:g}, one-sided ({direction}); "
            f"CI: hierarchical bootstrap (tasks, then seeds)")
    estimate = w / (w + lo) if w + lo else float("nan")
    return Evidence("share_of_tasks", direction, estimate, percentile_ci(boot), float(p[0]), float(p_opp[0]), test,
                    cube.n_tasks, _seed_info(cube), 0.0,
                    {"wins": w, "losses": lo, "ties": cube.n_tasks - w - lo, "per_task": dict(zip(cube.tasks,
                                                                                             d.tolist()))})


def _item_cube(x: np.ndarray, y: np.ndarray) -> Cube:
    """Items as tasks, y's seeds (columns, NaN-padded) as seeds, x repeated on each seed: variables (x, y)."""
    y3 = y.reshape(len(y), -1, 1)
    x3 = np.where(np.isnan(y3), np.nan, np.broadcast_to(x[:, None, None], y3.shape))
    return as_cube(np.concatenate([x3, y3], axis=2), ["x", "y"])


def _spearman_boot(cube: Cube, n_boot: int, seed: int) -> np.ndarray:
    from scipy.stats import rankdata

    def stat(s: np.ndarray) -> np.ndarray:
        tm = task_means(s)
        return rank_pearson(rankdata(tm[..., 0], axis=1), rankdata(tm[..., 1], axis=1))

    return hierarchical_bootstrap(cube, stat, n_boot=n_boot, seed=seed)


def rank_correlation_test(x: Any, y: Any, *, direction: str = "greater", n_boot: int = 2000, seed: int = 0,
                          n_perm: int = DEFAULT_N_PERM) -> Evidence:
    """Does y rise (``'greater'``) or fall with x over items (e.g. APEX's hard-task advantage against task
    difficulty)?

    ``x``: one value per item; ``y``: one per item, or (items, seeds) with NaN for missing seeds (y's seed means
    are correlated). Spearman's rho; p from the permutation null of the ranks, exact up to 14 items without ties
    (9 tasks: 9! orderings). CI: bootstrap over items (then seeds), so it reflects which items were sampled.
    """
    sign = _check_direction(direction)
    xa = np.asarray(x, dtype=np.float64).reshape(-1)
    ya = np.asarray(y, dtype=np.float64)
    if ya.ndim not in (1, 2) or len(ya) != len(xa):
        raise ValueError(f"y must be (items,) or (items, seeds) with {len(xa)} items, got shape {ya.shape}")
    if len(xa) < 3:
        raise ValueError(f"a rank correlation needs at least 3 items, got {len(xa)}")
    if not np.all(np.isfinite(xa)):
        raise ValueError("x contains NaN or infinite values")
    cube = _item_cube(xa, ya)
    ybar = cube.task_means()[:, 1]
    rho, p_g, p_l, exact = rank_trend_pvalues(xa, ybar[None, None, :], n_perm=n_perm, seed=seed)
    p, p_opp = (p_g, p_l) if sign > 0 else (p_l, p_g)
    boot = _spearman_boot(cube, n_boot, seed)
    kind = "exact" if exact[0] else f"Monte-Carlo ({n_perm} permutations)"
    test = (f"Spearman's rho over {len(xa)} items ({cube.seeds_text()} per item), {kind} permutation p, one-sided "
            f"({direction}); CI: bootstrap over items (then seeds)")
    return Evidence("rank_correlation", direction, float(rho[0]), percentile_ci(boot), float(p[0]), float(p_opp[0]),
                    test, len(xa), _seed_info(cube))


def depth_trend_test(values: Any, *, direction: str = "less", n_boot: int = 2000, seed: int = 0,
                     n_perm: int = DEFAULT_N_PERM) -> Evidence:
    """Does drift fall (``'less'``) with depth (CLIPFit: "low text layers change most")?

    ``values``: per layer, in depth order: (layers,), (tasks, layers) or (tasks, seeds, layers) with NaN for
    missing seeds; the profile is the mean over tasks of seed means. The layers are the units: under no trend
    the layers' drifts are exchangeable with respect to depth, so p is the exact permutation p of Spearman's rho
    over the layers. Tasks are not used as replicates for p, because a layer's own size (e.g. its bias's norm)
    repeats across tasks and would pass for a trend; :func:`trend_test` does treat tasks as blocks, if a
    reviewer takes the layers as fixed. With 3 layers the smallest p is 1/6: such a claim is never supported.
    CI: bootstrap over layers.
    """
    _check_direction(direction)
    cube = as_cube(values)
    n_layers = cube.values.shape[2]
    if n_layers < 3:
        raise ValueError(f"a depth trend needs at least 3 layers, got {n_layers}")
    profile = cube.task_means().mean(axis=0)
    ev = rank_correlation_test(np.arange(n_layers, dtype=np.float64), profile, direction=direction, n_boot=n_boot,
                               seed=seed, n_perm=n_perm)
    exact = "exact" if n_layers <= EXACT_RANK_MAX_ITEMS else "Monte-Carlo"
    test = (f"Spearman's rho of drift with depth over {n_layers} layers (profile = mean of {cube.n_tasks} task(s), "
            f"{cube.seeds_text()}), {exact} permutation p over layers (smallest possible "
            f"{smallest_rank_trend_p(n_layers):.3g}), one-sided ({direction}); CI: bootstrap over layers")
    return Evidence("depth_trend", direction, ev.estimate, ev.ci95, ev.p_value, ev.p_opposite, test, cube.n_tasks,
                    _seed_info(cube), 0.0, {"profile": profile.tolist()})


def trend_test(data: Any, columns: Sequence[str] | None = None, levels: Sequence[float] | None = None, *,
               task_col: str = "dataset", seed_col: str = "seed", direction: str = "greater", n_boot: int = 2000,
               seed: int = 0, n_perm: int = DEFAULT_N_PERM) -> Evidence:
    """Does a value rise (``'greater'``) or fall along an applied dial within each task (CLIPFit: the text drift
    falls as the regulariser's weight grows)?

    ``data``: one row per (task, seed) with one column per level (``columns``, in level order; ``levels`` their
    numeric values, default 0, 1, ...), or an array (tasks, levels) / (tasks, seeds, levels). The dial is an
    intervention applied to each task, so with no effect a task's runs are exchangeable across levels: Page's
    trend test, i.e. the sum over tasks of the within-task rank correlation with the level, exact permutation p
    (the within-task nulls convolved). Estimate: the mean over tasks of the within-task Spearman rho; CI:
    hierarchical bootstrap (tasks, then seeds).
    """
    sign = _check_direction(direction)
    cube = as_cube(data, columns, task_col=task_col, seed_col=seed_col)
    k = cube.values.shape[2]
    lv = np.arange(k, dtype=np.float64) if levels is None else np.asarray(levels, dtype=np.float64).reshape(-1)
    if len(lv) != k:
        raise ValueError(f"{len(lv)} levels for {k} columns")
    if len(np.unique(lv)) < k:
        raise ValueError(f"levels must be distinct, got {lv.tolist()}")
    if k < 2:
        raise ValueError("a trend needs at least 2 levels")
    means = cube.task_means()
    rho, p_g, p_l, exact = rank_trend_pvalues(lv, means[None], n_perm=n_perm, seed=seed)
    p, p_opp = (p_g, p_l) if sign > 0 else (p_l, p_g)
    from scipy.stats import rankdata
    rl = rankdata(lv)

    def stat(s: np.ndarray) -> np.ndarray:
        r = rank_pearson(np.broadcast_to(rl, s.shape[:2] + (k,)), rankdata(task_means(s), axis=-1))
        return np.nanmean(np.where(np.isnan(r), 0.0, r), axis=1)

    boot = hierarchical_bootstrap(cube, stat, n_boot=n_boot, seed=seed)
    kind = "exact" if exact[0] else f"Monte-Carlo ({n_perm} permutations)"
    test = (f"Page's trend test over {k} levels {lv.tolist()} within each of {cube.n_tasks} tasks "
            f"({cube.seeds_text()} per task), {kind} permutation p (smallest possible "
            f"{smallest_rank_trend_p(k, cube.n_tasks):.3g}), one-sided ({direction}); CI: hierarchical bootstrap "
            f"(tasks, then seeds)")
    return Evidence("trend", direction, float(rho[0]), percentile_ci(boot), float(p[0]), float(p_opp[0]), test,
                    cube.n_tasks, _seed_info(cube), 0.0, {"levels": lv.tolist()})


def argmax_is_first_test(values: Any, *, direction: str = "greater", names: Sequence[str] | None = None,
                         n_boot: int = 2000, seed: int = 0) -> Evidence:
    """Does the first module change most (CLIPFit: "the first image LayerNorm changes most"; ``'less'``: least)?

    ``values``: per module in network order (first module first): (modules,), (tasks, modules) or (tasks, seeds,
    modules); the profile is the mean over tasks of seed means. The modules are the units: if position carried no
    information, the first module's rank would be uniform over 1..M, so p = (its rank from the top) / M, exact.
    Only M >= 20 modules can give p <= 0.05 (26 image LayerNorms in a 12-layer ViT: 1/26 = 0.038; 8 in the
    3-layer test backbone: 1/8, never supported). Estimate: the first module's margin over the largest other
    (``'less'``: over the smallest); CI: hierarchical bootstrap over tasks and seeds (NaN with one run).
    """
    sign = _check_direction(direction)
    cube = as_cube(values, names)
    m = cube.values.shape[2]
    if m < 2:
        raise ValueError(f"need at least 2 modules, got {m}")
    profile = cube.task_means().mean(axis=0)
    p, p_opp = _first_rank_core(profile[None], sign)

    def stat(s: np.ndarray) -> np.ndarray:
        prof = task_means(s).mean(axis=1)
        return prof[:, 0] - (prof[:, 1:].max(axis=1) if sign > 0 else prof[:, 1:].min(axis=1))

    single = cube.n_tasks == 1 and int(cube.n_seeds[0]) == 1
    boot = np.full(1, np.nan) if single else hierarchical_bootstrap(cube, stat, n_boot=n_boot, seed=seed)
    rank = int(1 + np.sum(sign * profile[1:] >= sign * profile[0]))  # ties count against the claim, as in p
    test = (f"rank of the first of {m} modules ({rank} from the {'top' if sign > 0 else 'bottom'}) in the profile "
            f"of {cube.n_tasks} task(s) ({cube.seeds_text()}), exact permutation p = rank / modules (smallest "
            f"possible {1 / m:.3g}); CI: hierarchical bootstrap (tasks, then seeds) of its margin")
    return Evidence("argmax_is_first", direction, float(stat(cube.values[None])[0]), percentile_ci(boot),
                    float(p[0]), float(p_opp[0]), test, cube.n_tasks, _seed_info(cube), 0.0,
                    {"profile": dict(zip(map(str, cube.variables), profile.tolist())), "rank": rank})


def _per_task(value: Any, tasks: tuple, name: str) -> np.ndarray:
    """A scalar, a mapping task -> value, or a sequence aligned with the tasks, as (T,) floats (NaN: none)."""
    if value is None:
        return np.full(len(tasks), np.nan)
    if isinstance(value, Mapping):
        missing = [t for t in tasks if t not in value]
        if missing:
            raise KeyError(f"no {name} for task(s) {missing}")
        return np.array([float(value[t]) for t in tasks])
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(len(tasks), float(arr))
    if arr.shape != (len(tasks),):
        raise ValueError(f"{name} needs one value per task ({len(tasks)}), got shape {arr.shape}")
    return arr


def each_wins_test(data: Any, methods: Sequence[str] | None = None, *, task_col: str = "dataset",
                   seed_col: str = "seed", ceiling: Any = None, chance: Any = None, tol: float = 0.0,
                   n_boot: int = 2000, seed: int = 0) -> Evidence:
    """Does each of the methods win on some task (NTU: prompt tuning, adapter and LayerNorm tuning "each win")?

    "Two distinct winners" happens almost always with three exchangeable methods. Here a method wins a task only
    strictly: it must beat every other method there, each by a one-sided t-test on that task's seed means with
    the task's own seed noise (the residual of its methods x seeds table, see ``_each_wins_core``; with 3 seeds and
    3 methods df = 4), Bonferroni over the testable eligible tasks (any of them may be where it wins). The claim is
    an intersection over methods, so its p is the largest method's p (intersection-union test: the level holds
    whatever the other methods do, e.g. when two methods win clearly and the third only ties the best).
    Assumptions: within a task the methods' seed noise is similar and seed effects are additive; across tasks the
    noise may differ. No winner on a task: ties, a task at the ceiling (the runner-up's mean within ``tol`` of
    ``ceiling``) or at chance (the best mean within ``tol`` of ``chance``); such tasks are left out.
    ``ceiling``/``chance``: scalar, mapping task -> value, or one value per task, in the data's unit (e.g. 100 and
    100 / classes for accuracies in %). One seed per task: no seed noise to test against (p NaN, inconclusive).

    ``data``: one row per (task, seed), one column per method (the seeds are paired: same seed, same few-shot
    data), or an array (tasks, seeds, methods). Estimate: the weakest method's largest margin over the best other
    method (> 0 iff every method is the best somewhere); CI: bootstrap over seeds within the tasks (the claim is
    about these tasks).
    """
    if methods is None and isinstance(data, pd.DataFrame):
        raise ValueError("a DataFrame needs methods (the method columns)")
    cube = as_cube(data, list(methods) if methods is not None else None, task_col=task_col, seed_col=seed_col)
    k = cube.values.shape[2]
    if k < 2:
        raise ValueError(f"need at least 2 methods, got {k}")
    means = cube.task_means()  # (T, K)
    top2 = np.sort(means, axis=1)[:, -2:]
    ceil_t, chance_t = _per_task(ceiling, cube.tasks, "ceiling"), _per_task(chance, cube.tasks, "chance")
    at_ceiling = np.isfinite(ceil_t) & (top2[:, 0] >= ceil_t - tol)
    at_chance = np.isfinite(chance_t) & (top2[:, 1] <= chance_t + tol)
    eligible = ~(at_ceiling | at_chance)
    p, p_opp, p_win, df = _each_wins_core(cube.values[None], cube.n_seeds, eligible[None])

    def stat(s: np.ndarray) -> np.ndarray:
        tm = task_means(s)  # (B, T, K)
        best_other = np.stack([np.delete(tm, m, axis=2).max(axis=2) for m in range(k)], axis=2)
        margin = np.where(eligible[None, :, None], tm - best_other, -np.inf)
        out = margin.max(axis=1).min(axis=1)
        return np.where(np.isfinite(out), out, np.nan)

    boot = hierarchical_bootstrap(cube, stat, n_boot=n_boot, seed=seed, resample_tasks=False)
    names = [str(v) for v in cube.variables]
    per_method = {}
    for m in range(k):
        margins = np.where(eligible, means[:, m] - np.delete(means, m, axis=1).max(axis=1), -np.inf)
        t_best = int(np.argmax(margins)) if eligible.any() else None
        per_method[names[m]] = {
            "best_task": cube.tasks[t_best] if t_best is not None else None,
            "margin": float(margins[t_best]) if t_best is not None else float("nan"),
            "p": float(p_win[0, m].min()) if np.isfinite(p[0]) else float("nan"),
            "best_on": [cube.tasks[t] for t in range(cube.n_tasks) if eligible[t] and margins[t] > 0],
            "p_by_task": {cube.tasks[t]: float(p_win[0, m, t]) for t in range(cube.n_tasks) if eligible[t]}}
    excluded = {cube.tasks[t]: ("ceiling" if at_ceiling[t] else "chance") for t in range(cube.n_tasks)
                if not eligible[t]}
    n_test = int((eligible & (df > 0)).sum())
    test = (f"intersection-union over {k} methods: each must beat every other on some task (one-sided t-tests "
            f"of seed means, {cube.seeds_text()} per task, each task's own seed noise from its methods x seeds "
            f"residual, df {int(df.max())}), Bonferroni over {n_test} testable task(s); p = largest over methods"
            + (f"; {len(excluded)} task(s) at ceiling/chance excluded" if excluded else "")
            + ("; no task with 2+ seeds left: untestable" if not np.isfinite(p[0]) else "")
            + "; CI: bootstrap over seeds within tasks")
    return Evidence("each_wins", "greater", float(stat(cube.values[None])[0]), percentile_ci(boot), float(p[0]),
                    float(p_opp[0]), test, cube.n_tasks, _seed_info(cube), 0.0,
                    {"methods": per_method, "excluded_tasks": excluded})


# --- evaluating a notebook's claims ------------------------------------------------------------------------------

_TESTS = {"paired_difference": paired_difference_test, "best_of": best_of_test, "share_of_tasks": share_test,
          "rank_correlation": rank_correlation_test, "trend": trend_test, "depth_trend": depth_trend_test,
          "each_wins": each_wins_test, "argmax_is_first": argmax_is_first_test}


def evidence_for(claim: Claim, data: Mapping[str, Any], *, n_boot: int = 2000, seed: int = 0) -> Evidence:
    """Run the test the claim declared on ``data`` (the keyword arguments of its test function, without
    ``direction``/``margin``, which come from the claim)."""
    kwargs = dict(data)
    for key in ("direction", "margin"):
        if key in kwargs:
            raise ValueError(f"claim {claim.name!r}: {key} is declared by the Claim, not passed with the data")
    if claim.effect != "each_wins":
        kwargs["direction"] = claim.direction
    if claim.effect in _MARGIN_EFFECTS:
        kwargs["margin"] = claim.margin
    kwargs.setdefault("n_boot", n_boot)
    kwargs.setdefault("seed", seed)
    return _TESTS[claim.effect](**kwargs)



def evaluate_claims(items: Sequence[tuple[Claim, Mapping[str, Any] | Evidence]], *, alpha: float = 0.05,
                    n_boot: int = 2000, seed: int = 0) -> list[ClaimResult]:
    """Test and decide one notebook's sub-claims: each item is (claim, data for its test) or (claim, Evidence
    already computed for it). The p-values in the claimed direction are Holm-adjusted over the items, and so are
    those in the opposite direction; see :func:`decide`. Claim i's resampling uses seed ``seed + i``."""
    if not items:
        raise ValueError("no claims to evaluate")
    names = [c.name for c, _ in items]
    if len(set(names)) != len(names):
        raise ValueError(f"claim names must be unique within a notebook: {names}")
    evidence = []
    for i, (claim, data) in enumerate(items):
        if not isinstance(claim, Claim):
            raise TypeError(f"item {i}: expected a Claim, got {type(claim).__name__}")
        if isinstance(data, Evidence):
            if (data.effect, data.direction, data.margin) != (claim.effect, claim.direction, claim.margin):
                raise ValueError(f"claim {claim.name!r} declared {claim.effect}/{claim.direction}/margin "
                                 f"{claim.margin:g}, its evidence is {data.effect}/{data.direction}/margin "
                                 f"{data.margin:g}")
            evidence.append(data)
        else:
            evidence.append(evidence_for(claim, data, n_boot=n_boot, seed=seed + i))
    p_adj = holm([e.p_value for e in evidence])
    p_opp_adj = holm([e.p_opposite for e in evidence])
    return [ClaimResult(claim, decide(pa, po, alpha), e.estimate, tuple(e.ci95), e.p_value, float(pa),
                        e.p_opposite, float(po), e.test, e.n_tasks, e.n_seeds, e.details)
            for (claim, _), e, pa, po in zip(items, evidence, p_adj, p_opp_adj)]


# --- power -------------------------------------------------------------------------------------------------------

RULES = EFFECTS


@dataclass(frozen=True)
class Power:
    """The share of simulated data sets in which a rule's claim came out supported, with its Monte-Carlo SE."""

    rule: str
    power: float
    se: float
    n_sims: int
    alpha: float
    effect: float
    n_tasks: int
    n_seeds: int
    n_items: int | None

    def reaches(self, target: float = 0.8) -> bool:
        return self.power >= target

    def summary(self) -> str:
        items = f" x {self.n_items} items" if self.n_items else ""
        return (f"{self.rule}: power {self.power:.1%} (MC SE {self.se:.1%}) at effect {self.effect:g}, "
                f"{self.n_tasks} tasks x {self.n_seeds} seeds{items}, alpha {self.alpha:g}")


def _z(n: int) -> np.ndarray:
    z = np.arange(n, dtype=np.float64)
    return (z - z.mean()) / z.std()


def simulate_pvalues(rule: str, *, n_tasks: int, n_seeds: int = 1, effect: float = 0.0, noise: Any = 1.0,
                     task_noise: float = 0.0, n_items: int | None = None, n_sims: int = 1000, seed: int = 0,
                     means: Any = None, n_candidates: int = 1, n_baselines: int = 1, margin: float = 0.0,
                     tie: float = 0.0, null_share: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(p in the claimed direction, p in the opposite direction) of ``rule`` on ``n_sims`` simulated data sets.

    Models (``noise``: SD of one run around its task's value, a number or one per task; ``task_noise``: SD of a
    random effect; ``effect`` is always planted in the claimed direction, in the data's units):

    - paired_difference, share_of_tasks: the run's difference a - b = effect + task_noise*u_task + noise*e;
    - best_of: ``n_candidates`` then ``n_baselines`` methods, run = means[method] + task_noise*u_(task, method) +
      noise*e; ``means`` default: candidate 0 at ``effect``, the rest 0;
    - rank_correlation: ``n_tasks`` items at standardised positions z; run = effect*z + task_noise*u_item +
      noise*e;
    - trend: ``n_tasks`` tasks x ``n_items`` levels; run = effect*z_level + task_noise*u_(task, level) + noise*e;
    - depth_trend: ``n_items`` layers; run = -effect*z_layer + task_noise*u_layer (a layer's own size, shared by
      the tasks) + noise*e, averaged over tasks and seeds (claimed direction: drift falls with depth);
    - each_wins: ``n_items`` methods (default 3); ``means`` (tasks, methods), default: method m is ``effect``
      above the others on the tasks t with t % methods == m; run = mean + task_noise*u_(task, method) + noise*e
      (``task_noise`` > 0 makes real per-task winners: not a null model for this rule);
    - argmax_is_first: ``n_items`` modules; ``means`` default: the first at ``effect``, the rest 0; run = mean +
      task_noise*u_module + noise*e, averaged over tasks and seeds.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if n_tasks < 1 or n_seeds < 1 or n_sims < 1:
        raise ValueError("n_tasks, n_seeds and n_sims must be >= 1")
    rng = np.random.default_rng(seed)
    b, t, s = n_sims, n_tasks, n_seeds
    noise_arr = np.asarray(noise, dtype=np.float64)
    if noise_arr.ndim and noise_arr.shape != (t,):
        raise ValueError(f"noise must be a number or one per task ({t}), got shape {noise_arr.shape}")

    def runs(*shape: int) -> np.ndarray:
        """noise * N(0, 1) of shape (b, t, seeds, ...), each task's noise on its own rows."""
        scale = noise_arr if not noise_arr.ndim else noise_arr.reshape((t,) + (1,) * len(shape))
        return scale * rng.standard_normal((b, t) + shape)

    def shared(*shape: int) -> np.ndarray:
        return task_noise * rng.standard_normal((b,) + shape)

    if rule in ("paired_difference", "share_of_tasks"):
        d = (effect + shared(t, 1) + runs(s)).mean(axis=2)
        if rule == "share_of_tasks":
            p, p_opp, _, _ = _share_core(d, 1, tie, null_share)
        else:
            p, p_opp, _ = _best_of_core(d[..., None] * np.array([1.0, 0.0]), 1, 1, margin, DEFAULT_N_PERM, seed)
        return p, p_opp
    if rule == "best_of":
        k = n_candidates + n_baselines
        mu = np.zeros(k) if means is None else np.asarray(means, dtype=np.float64).reshape(k)
        if means is None:
            mu[0] = effect
        x = mu + shared(t, 1, k) + runs(s, k)
        p, p_opp, _ = _best_of_core(x.mean(axis=2), n_candidates, 1, margin, DEFAULT_N_PERM, seed)
        return p, p_opp
    if rule == "rank_correlation":
        z = _z(t)
        y = (effect * z[:, None] + shared(t, 1) + runs(s)).mean(axis=2)
        _, p, p_opp, _ = rank_trend_pvalues(z, y[:, None, :], seed=seed)
        return p, p_opp
    k = n_items if n_items is not None else 3
    if k < 2:
        raise ValueError(f"n_items must be >= 2, got {k}")
    z = _z(k)
    if rule == "trend":
        y = (effect * z + shared(t, 1, k) + runs(s, k)).mean(axis=2)
        _, p, p_opp, _ = rank_trend_pvalues(z, y, seed=seed)
        return p, p_opp
    if rule == "depth_trend":
        y = (-effect * z + shared(1, 1, k) + runs(s, k)).mean(axis=(1, 2))
        _, p_g, p_l, _ = rank_trend_pvalues(z, y[:, None, :], seed=seed)
        return p_l, p_g
    if rule == "argmax_is_first":
        mu = np.zeros(k) if means is None else np.asarray(means, dtype=np.float64).reshape(k)
        if means is None:
            mu[0] = effect
        return _first_rank_core((mu + shared(1, 1, k) + runs(s, k)).mean(axis=(1, 2)), 1)
    # each_wins
    if means is None:
        mu = np.zeros((t, k))
        mu[np.arange(t), np.arange(t) % k] = effect
    else:
        mu = np.asarray(means, dtype=np.float64)
        if mu.shape != (t, k):
            raise ValueError(f"means must be (tasks, methods) = {(t, k)}, got {mu.shape}")
    x = mu[:, None, :] + shared(t, 1, k) + runs(s, k)
    p, p_opp, _, _ = _each_wins_core(x, np.full(t, s), np.ones((b, t), dtype=bool))
    return p, p_opp


def power_at(rule: str, *, n_tasks: int, n_seeds: int = 1, effect: float, noise: Any = 1.0,
             task_noise: float = 0.0, n_items: int | None = None, n_sims: int = 1000, alpha: float = 0.05,
             seed: int = 0, **options: Any) -> Power:
    """Power of ``rule`` (the share of simulated data sets whose claim is supported at ``alpha``) at these sample
    sizes and this planted effect (models: :func:`simulate_pvalues`); ``effect=0`` gives the false-positive rate.
    A notebook whose rule falls short of 80% power here says so instead of deciding; pass ``alpha / m`` for the
    worst case of Holm over m claims."""
    p, _ = simulate_pvalues(rule, n_tasks=n_tasks, n_seeds=n_seeds, effect=effect, noise=noise,
                            task_noise=task_noise, n_items=n_items, n_sims=n_sims, seed=seed, **options)
    hits = np.nan_to_num(p, nan=1.0) <= alpha
    power = float(hits.mean())
    return Power(rule, power, float(np.sqrt(power * (1 - power) / n_sims)), n_sims, alpha, effect, n_tasks, n_seeds,
                 n_items)
