"""Resampling machinery of the claim tests (:mod:`adaptlib.analysis.claims`).

Three pieces, shared by every claim test:

- a :class:`Cube` of values indexed (task, seed, variable), the shape of a results table: tasks are the units of
  evidence, seeds are repeated runs nested inside a task (tasks may have different numbers of seeds);
- :func:`hierarchical_bootstrap`, which resamples tasks with replacement and then seeds within each drawn task, so
  that seeds of one task never count as independent tasks, for the 95% CI of an effect;
- permutation nulls that are exact where enumeration is cheap: sign flips of per-task differences
  (:func:`sign_flip_pvalues`) and within-block permutations of ranks (:func:`rank_trend_pvalues`, Spearman's
  correlation for one block, Page's trend test for several). An exact null does not depend on the data (no ties),
  so one table serves every data set of a simulation, which is what keeps the error-rate tests fast. Where the
  null is not enumerable the p-value is Monte-Carlo, ``(1 + #{null >= observed}) / (1 + n_perm)``, which is a
  valid p-value for any number of permutations, and seeded.

Everything is NumPy float64; every random draw takes a seed, so the same inputs and seed give the same outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

EXACT_SIGN_FLIP_MAX_TASKS = 16  # 2**16 sign patterns: enumerated; more tasks: Monte-Carlo
EXACT_RANK_MAX_ITEMS = 14  # the subset recursion for the rank-score null costs n * 2**(n-1) small vector adds
DEFAULT_N_PERM = 20_000


@dataclass(frozen=True)
class Cube:
    """Values indexed (task, seed slot, variable); a task with fewer seeds has NaN in its trailing seed slots."""

    values: np.ndarray  # (n_tasks, max seeds, n_variables)
    n_seeds: np.ndarray  # (n_tasks,) filled seed slots of each task (always the first ones)
    tasks: tuple
    variables: tuple

    @property
    def n_tasks(self) -> int:
        return int(self.values.shape[0])

    def task_means(self) -> np.ndarray:
        """(n_tasks, n_variables): each task's mean over its seeds."""
        return task_means(self.values[None])[0]

    def seeds_text(self) -> str:
        """'3 seeds' or '1-3 seeds' (per task), for the test descriptions."""
        lo, hi = int(self.n_seeds.min()), int(self.n_seeds.max())
        return f"{hi} seed{'s' if hi > 1 else ''}" if lo == hi else f"{lo}-{hi} seeds"


def task_means(batch: np.ndarray) -> np.ndarray:
    """(B, T, S, V) -> (B, T, V): mean over the filled seed slots (the others are NaN)."""
    filled = ~np.isnan(batch)
    return np.where(filled, batch, 0.0).sum(axis=2) / filled.sum(axis=2)


def as_cube(data: Any, value_cols: Sequence[str] | None = None, *, task_col: str = "dataset",
            seed_col: str = "seed") -> Cube:
    """A results table or an array as a :class:`Cube`.

    ``data`` is either a DataFrame with one row per (task, seed) run and one column per variable in ``value_cols``
    (e.g. the two methods of a paired comparison), or an array: 1-D ``(variables,)`` is one task with one seed, 2-D
    ``(tasks, variables)`` has one seed per task, 3-D ``(tasks, seeds, variables)`` may mark a task's missing seeds
    with NaN rows. Values must be finite: drop runs that failed before testing a claim on them.
    """
    if isinstance(data, pd.DataFrame):
        if value_cols is None:
            raise ValueError("a DataFrame needs value_cols (the columns holding the values)")
        value_cols = list(value_cols)
        missing = [c for c in [task_col, seed_col, *value_cols] if c not in data.columns]
        if missing:
            raise KeyError(f"columns {missing} not in the table (have {list(data.columns)})")
        if data.duplicated([task_col, seed_col]).any():
            dup = data.loc[data.duplicated([task_col, seed_col], keep=False), [task_col, seed_col]]
            raise ValueError(f"more than one row per (task, seed): {dup.drop_duplicates().values.tolist()[:5]}")
        vals = data[value_cols].to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(vals)):
            raise ValueError(f"columns {value_cols} contain NaN or infinite values: drop those runs first")
        groups = [(task, g.sort_values(seed_col)) for task, g in data.groupby(task_col, sort=True)]
        if not groups:
            raise ValueError("the table is empty")
        n_seeds = np.array([len(g) for _, g in groups])
        cube = np.full((len(groups), int(n_seeds.max()), len(value_cols)), np.nan)
        for i, (_, g) in enumerate(groups):
            cube[i, :len(g)] = g[value_cols].to_numpy(dtype=np.float64)
        return Cube(cube, n_seeds, tuple(t for t, _ in groups), tuple(value_cols))

    arr = np.asarray(data, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, None, :]
    elif arr.ndim == 2:
        arr = arr[:, None, :]
    elif arr.ndim != 3:
        raise ValueError(f"values must be 1-D (variables), 2-D (tasks, variables) or 3-D (tasks, seeds, "
                         f"variables), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"no values (shape {arr.shape})")
    if np.any(np.isinf(arr)):
        raise ValueError("values contain infinite entries")
    row_nan = np.isnan(arr)
    if np.any(row_nan.any(axis=2) & ~row_nan.all(axis=2)):
        raise ValueError("a (task, seed) row is partly NaN: NaN marks a missing seed, so all of its values")
    present = ~row_nan.all(axis=2)  # (T, S)
    n_seeds = present.sum(axis=1)
    if np.any(n_seeds == 0):
        raise ValueError(f"task(s) {np.flatnonzero(n_seeds == 0).tolist()} have no finite seed")
    cube = np.full((arr.shape[0], int(n_seeds.max()), arr.shape[2]), np.nan)
    for i in range(arr.shape[0]):  # pack each task's seeds into its first slots
        cube[i, :n_seeds[i]] = arr[i, present[i]]
    names = value_cols if value_cols is not None else range(arr.shape[2])
    return Cube(cube, n_seeds, tuple(range(arr.shape[0])), tuple(names))


def hierarchical_bootstrap(data: Any, statistic: Callable[[np.ndarray], np.ndarray], *,
                           value_cols: Sequence[str] | None = None, task_col: str = "dataset",
                           seed_col: str = "seed", n_boot: int = 2000, seed: int = 0, resample_tasks: bool = True,
                           resample_seeds: bool = True, batch: int = 500) -> np.ndarray:
    """Bootstrap distribution of ``statistic``: draw tasks with replacement, then, inside each drawn task, as many
    seeds as it has, with replacement from its own seeds. Tasks are the units of evidence and seeds are nested in
    them; resampling seeds as if they were tasks would make three seeds of one task look like three tasks.

    ``data``: anything :func:`as_cube` takes. ``statistic`` is vectorised: it gets a (B, T, S, V) array (B
    resamples; NaN in the seed slots a drawn task does not have, see :func:`task_means`) and returns (B,) values.
    ``resample_tasks=False`` keeps the tasks fixed (for claims about these particular tasks, e.g. "wins on some
    task"); ``resample_seeds=False`` keeps each task's seeds. Returns the (n_boot,) distribution (NaN where the
    statistic is undefined on a resample).
    """
    cube = data if isinstance(data, Cube) else as_cube(data, value_cols, task_col=task_col, seed_col=seed_col)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    vals, n_t = cube.values, cube.n_seeds
    n_tasks, n_slots, _ = vals.shape
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    slots = np.arange(n_slots)
    for start in range(0, n_boot, batch):
        b = min(batch, n_boot - start)
        ti = rng.integers(0, n_tasks, size=(b, n_tasks)) if resample_tasks else \
            np.broadcast_to(np.arange(n_tasks), (b, n_tasks))
        nt = n_t[ti]  # (b, T) seeds of each drawn task
        if resample_seeds:
            si = (rng.random((b, n_tasks, n_slots)) * nt[..., None]).astype(np.intp)
        else:
            si = np.broadcast_to(slots, (b, n_tasks, n_slots))
        sample = vals[ti[..., None], si]  # (b, T, S, V)
        sample[slots[None, None, :] >= nt[..., None]] = np.nan
        out[start:start + b] = np.asarray(statistic(sample), dtype=np.float64).reshape(b)
    return out


def percentile_ci(boot: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of a bootstrap distribution, ignoring resamples where the statistic was undefined."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    ok = np.asarray(boot, dtype=np.float64)
    ok = ok[np.isfinite(ok)]
    if ok.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(ok, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


# --- sign flips -------------------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _all_signs(n: int) -> np.ndarray:
    """(2**n, n) every +-1 pattern (the first row all +1)."""
    bits = (np.arange(2 ** n)[:, None] >> np.arange(n)[None, :]) & 1
    return 1.0 - 2.0 * bits


def smallest_sign_flip_p(n_tasks: int, *, n_perm: int = DEFAULT_N_PERM,
                         exact_max: int = EXACT_SIGN_FLIP_MAX_TASKS) -> float:
    """The smallest one-sided p-value :func:`sign_flip_pvalues` can return for ``n_tasks`` tasks, whatever the data:
    1 / 2**T exact (only the observed pattern is as extreme), 1 / (n_perm + 1) Monte-Carlo. With 9 tasks it is
    1/512, so a two-sided test Holm-adjusted over 22 comparisons can never reach 0.05 (22 x 2/512 = 0.086)."""
    if n_tasks < 1:
        raise ValueError("a sign-flip test needs at least one task")
    return 2.0 ** -n_tasks if n_tasks <= exact_max else 1.0 / (n_perm + 1)


def sign_flip_pvalues(d: np.ndarray, *, n_perm: int = DEFAULT_N_PERM, seed: int = 0,
                      exact_max: int = EXACT_SIGN_FLIP_MAX_TASKS) -> tuple[np.ndarray, np.ndarray]:
    """One-sided p-values (greater, less) of the sum of per-task differences ``d`` (B, T) under sign flips.

    Under no effect a task's difference is as likely to be +x as -x (the two conditions are exchangeable within
    the task), so all 2**T sign patterns are equally likely; the p-value counts patterns at least as extreme as the
    one observed, the observed one included. Exact for T <= ``exact_max`` (2**9 = 512 patterns for 9 tasks), else
    Monte-Carlo with ``n_perm`` seeded random patterns. Valid for tasks of different spread (only symmetry is
    assumed), unlike a t-test, which needs normality with 9 tasks.
    """
    d = np.atleast_2d(np.asarray(d, dtype=np.float64))
    n = d.shape[1]
    if n < 1:
        raise ValueError("a sign-flip test needs at least one task")
    if n <= exact_max:
        signs, extra = _all_signs(n), 0
    else:
        signs, extra = np.where(np.random.default_rng(seed).random((n_perm, n)) < 0.5, -1.0, 1.0), 1
    obs = d.sum(axis=1)
    tol = 1e-9 * (np.abs(d).sum(axis=1) + 1e-300)
    ge = np.empty(len(d))
    le = np.empty(len(d))
    chunk = max(1, 4_000_000 // len(signs))
    for i in range(0, len(d), chunk):
        null = d[i:i + chunk] @ signs.T  # (b, patterns)
        ge[i:i + chunk] = (null >= (obs - tol)[i:i + chunk, None]).sum(axis=1)
        le[i:i + chunk] = (null <= (obs + tol)[i:i + chunk, None]).sum(axis=1)
    denom = len(signs) + extra
    return (ge + extra) / denom, (le + extra) / denom


# --- rank correlations and trends -------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def rank_score_counts(n: int) -> np.ndarray:
    """counts[s] = number of permutations p of 0..n-1 with sum_i i * p(i) == s (the null of Spearman's rho).

    Computed by a recursion over the set of ranks already placed (position = how many are placed), so n up to
    ``EXACT_RANK_MAX_ITEMS`` is enumerated exactly without listing n! permutations.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if n > EXACT_RANK_MAX_ITEMS:
        raise ValueError(f"exact rank null only up to {EXACT_RANK_MAX_ITEMS} items, got {n}")
    smax = sum(i * i for i in range(n))
    layer = {0: np.zeros(smax + 1, dtype=np.int64)}
    layer[0][0] = 1
    for pos in range(n):
        nxt: dict[int, np.ndarray] = {}
        for mask, counts in layer.items():
            for r in range(n):
                if mask >> r & 1:
                    continue
                key = mask | (1 << r)
                arr = nxt.get(key)
                if arr is None:
                    arr = nxt[key] = np.zeros(smax + 1, dtype=np.int64)
                add = pos * r
                arr[add:] += counts[:smax + 1 - add]
        layer = nxt
    counts = layer[(1 << n) - 1]
    counts.setflags(write=False)
    return counts


@lru_cache(maxsize=None)
def _block_null_tails(k: int, n_blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """P(S >= s) and P(S <= s) for S = sum over independent blocks of the rank score of k items."""
    one = rank_score_counts(k) / float(np.prod(np.arange(1, k + 1, dtype=np.float64)))
    dist = np.ones(1)
    for _ in range(n_blocks):
        dist = np.convolve(dist, one)
    ge = np.cumsum(dist[::-1])[::-1]
    le = np.cumsum(dist)
    ge.setflags(write=False)
    le.setflags(write=False)
    return ge, le


def rank_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis (NaN where either side is constant); on ranks it is Spearman's."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(axis=-1) / np.where(den > 0, den, 1.0), np.nan)


def rank_trend_pvalues(levels: np.ndarray, y: np.ndarray, *, n_perm: int = DEFAULT_N_PERM,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rank trend of ``y`` (B, T, K) along ``levels`` (K,) within each of T blocks.

    Statistic: S = sum over blocks of sum_l rank(level_l) * rank(y_bl), i.e. Page's L (one block: Spearman's rho).
    Null: within every block the K values are exchangeable across levels (independently between blocks), so the
    ranks of a block are a uniformly random permutation. Exact (the block null of :func:`rank_score_counts`
    convolved T times) when K <= ``EXACT_RANK_MAX_ITEMS`` and no block has tied values or levels; otherwise
    Monte-Carlo over ``n_perm`` seeded within-block permutations of the (mid)ranks.

    Returns (mean over blocks of the within-block Spearman rho, p greater, p less, exact flag), each (B,).
    """
    levels = np.asarray(levels, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 3 or y.shape[2] != len(levels):
        raise ValueError(f"y must be (B, blocks, {len(levels)}), got {y.shape}")
    n_b, n_blocks, k = y.shape
    if k < 2:
        raise ValueError("a rank trend needs at least 2 levels")
    rl = rankdata(levels) - 1.0
    ry = rankdata(y, axis=-1) - 1.0
    rho = rank_pearson(np.broadcast_to(rl, ry.shape), ry)
    rho_mean = np.nanmean(np.where(np.isnan(rho), 0.0, rho), axis=1)
    score = (ry * rl).sum(axis=(1, 2))
    levels_tied = len(np.unique(levels)) < k
    untied = np.all(np.diff(np.sort(y, axis=-1), axis=-1) > 0, axis=(1, 2)) & (not levels_tied)
    exact = untied & (k <= EXACT_RANK_MAX_ITEMS)
    p_g = np.empty(n_b)
    p_l = np.empty(n_b)
    if exact.any():
        ge, le = _block_null_tails(k, n_blocks)
        s = np.rint(score[exact]).astype(np.int64)
        p_g[exact], p_l[exact] = ge[s], le[s]
    if (~exact).any():
        rng = np.random.default_rng(seed)
        perm_levels = rl[np.argsort(rng.random((n_perm, n_blocks, k)), axis=-1)]  # (P, T, K)
        for i in np.flatnonzero(~exact):
            null = np.einsum("ptk,tk->p", perm_levels, ry[i])
            tol = 1e-9 * (abs(score[i]) + 1.0)
            p_g[i] = (1 + np.sum(null >= score[i] - tol)) / (1 + n_perm)
            p_l[i] = (1 + np.sum(null <= score[i] + tol)) / (1 + n_perm)
    return rho_mean, np.minimum(p_g, 1.0), np.minimum(p_l, 1.0), exact


def smallest_rank_trend_p(k: int, n_blocks: int = 1) -> float:
    """The smallest one-sided p-value an exact rank trend over k levels and n_blocks blocks can reach, (1/k!)**b:
    with 3 layers and one profile it is 1/6, so no such claim can be supported at 5%."""
    return float(np.prod(np.arange(1, k + 1, dtype=np.float64)) ** -n_blocks)
