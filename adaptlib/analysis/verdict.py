"""Verdict words and paired comparisons for the study notebooks.

A claim of a paper usually has several parts (e.g. CLIPFit: "beats zero-shot" and "low text bias layers change
most"); :func:`verdict` turns the measured truth of each part into one word. :func:`paired_difference` compares
two methods on the same items (tasks, or tasks x seeds) so a notebook can say "A beats B by x points (95% CI)".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from ._arrays import ArrayLike, as_f64

REPRODUCED, PARTLY, NOT_REPRODUCED = "reproduced", "partly", "not reproduced"


def verdict(effects: Mapping[str, bool] | Iterable[tuple[str, bool]]) -> str:
    """'reproduced' if every part of a claim holds, 'not reproduced' if none does, 'partly' otherwise."""
    items = list(effects.items() if isinstance(effects, Mapping) else effects)
    if not items:
        raise ValueError("verdict needs at least one (claim, supported) pair")
    flags = []
    for claim, supported in items:
        if not isinstance(supported, (bool, np.bool_)):
            raise TypeError(f"claim {claim!r}: supported must be a bool, got {type(supported).__name__}")
        flags.append(bool(supported))
    if all(flags):
        return REPRODUCED
    return PARTLY if any(flags) else NOT_REPRODUCED


@dataclass(frozen=True)
class PairedDifference:
    """Mean of a - b over paired items, its standard error, a seeded percentile-bootstrap CI and a sign test."""

    n: int
    mean: float
    se: float
    ci_low: float
    ci_high: float
    confidence: float
    wins: int
    losses: int
    ties: int
    sign_test_p: float

    def summary(self, unit: str = "points") -> str:
        """One line for a notebook: '+1.20 points (SE 0.40; 95% CI +0.40 to +2.10; 9 wins, 2 losses of 11; ...)'."""
        return (f"{self.mean:+.2f} {unit} (SE {self.se:.2f}; {self.confidence:.0%} CI {self.ci_low:+.2f} to "
                f"{self.ci_high:+.2f}; {self.wins} wins, {self.losses} losses of {self.n}; "
                f"sign p={self.sign_test_p:.3g})")


def paired_difference(a: ArrayLike, b: ArrayLike, *, groups: ArrayLike | None = None, confidence: float = 0.95,
                      n_boot: int = 10_000, seed: int = 0) -> PairedDifference:
    """Compare paired scores a and b (same items in the same order), e.g. accuracies per task and seed.

    With ``groups`` (e.g. the task of each item) the differences are first averaged within each group, so that
    seeds of one task do not count as independent evidence; the statistics are then over groups. SE uses
    ddof=1; the CI is the percentile bootstrap of the mean (``n_boot`` resamples, seeded); the sign test is the
    exact two-sided binomial test on non-tied items.
    """
    x, y = as_f64(a, "a", ndim=1), as_f64(b, "b", ndim=1)
    if x.shape != y.shape:
        raise ValueError(f"a and b must be paired: {len(x)} vs {len(y)} items")
    d = x - y
    if groups is not None:
        g = np.asarray(groups)
        if g.shape != d.shape:
            raise ValueError(f"groups must have one entry per item: {len(g)} vs {len(d)}")
        _, inverse = np.unique(g, return_inverse=True)
        d = np.bincount(inverse, weights=d) / np.bincount(inverse)
    if len(d) < 2:
        raise ValueError(f"a paired comparison needs at least 2 items (or groups), got {len(d)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    boot = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha])
    wins, losses = int(np.sum(d > 0)), int(np.sum(d < 0))
    p = binomtest(wins, wins + losses, 0.5).pvalue if wins + losses else 1.0
    return PairedDifference(n=len(d), mean=float(d.mean()), se=float(d.std(ddof=1) / np.sqrt(len(d))),
                            ci_low=float(low), ci_high=float(high), confidence=confidence, wins=wins,
                            losses=losses, ties=len(d) - wins - losses, sign_test_p=float(p))
