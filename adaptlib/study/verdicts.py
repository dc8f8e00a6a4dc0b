"""A notebook's sub-claims, tested: the glue between the study's tables and :mod:`adaptlib.analysis.claims`.

Each notebook declares its sub-claims as :class:`~adaptlib.analysis.claims.Claim` s (in the study module of its
question, before any data is read), builds the per-(task, seed) data of each from ``results.csv`` and the measures
tables (functions of that module), and calls :func:`test_claims` here, which

1. runs each claim's test; a test that cannot run on these data (e.g. fewer tasks than it needs) does not raise:
   the claim is reported **inconclusive** with the reason in its ``test`` text;
2. Holm-adjusts the p-values of all the notebook's claims (:func:`adaptlib.analysis.claims.evaluate_claims`);
3. checks each rule's power at the notebook's own sample size (:func:`adaptlib.analysis.claims.power_at`, with the
   planted effect the error-rate suite states for that rule, ``tests/test_claim_error_rates.py``, in units of one
   run's noise SD): where the rule cannot reach 80% power here, the claim is reported **inconclusive** ("not
   decided"), whatever its p-value, and the reason is printed by the notebook and kept in ``test``.

The overall verdict (:func:`adaptlib.analysis.claims.overall_verdict`) is computed from the outcomes, never typed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..analysis.claims import (INCONCLUSIVE, Claim, ClaimResult, Evidence, evaluate_claims, evidence_for,
                               overall_verdict, power_at, verdict_record)

POWER_TARGET = 0.8

# The planted effect (in SDs of one run's noise) and the simulation model options at which each rule must reach
# 80% power: the values of tests/test_claim_error_rates.py (RULES), so "can decide" means the same here as there.
DESIGNS: dict[str, dict] = {
    "rank_correlation": dict(effect=1.5, noise=1.0, task_noise=1.0),
    "share_of_tasks": dict(effect=1.7, noise=1.0, task_noise=1.0),
    "each_wins": dict(effect=5.0, noise=1.0),
    "best_of": dict(effect=3.0, noise=1.0, task_noise=1.0),
    "paired_difference": dict(effect=1.2, noise=1.0, task_noise=1.0),
    "depth_trend": dict(effect=1.25, noise=1.0, task_noise=1.0),
    "argmax_is_first": dict(effect=4.0, noise=1.0, task_noise=1.0),
    "trend": dict(effect=0.7, noise=1.0),
}


@dataclass
class Planned:
    """A declared claim with the data of its test (the keyword arguments of its test function) and the sizes the
    power check needs beyond tasks and seeds (``n_items``: levels, layers, modules or methods; ``n_candidates`` /
    ``n_baselines`` for best-of), or why it could not be built (``problem``: the claim is then inconclusive)."""

    claim: Claim
    data: Mapping[str, Any] | None = None
    sizes: Mapping[str, int] = field(default_factory=dict)
    problem: str = ""
    n_tasks: int = 0
    n_seeds: int = 0


def untestable(claim: Claim, reason: str, n_tasks: int = 0, n_seeds: int = 0) -> Evidence:
    """Evidence that decides nothing (NaN p-values, left out of Holm's family): the reason is in ``test``."""
    return Evidence(claim.effect, claim.direction, float("nan"), (float("nan"), float("nan")), float("nan"),
                    float("nan"), f"{claim.test}; not testable here: {reason}", int(n_tasks), int(n_seeds),
                    claim.margin, {"untestable": reason})


def power_reason(claim: Claim, evidence: Evidence, sizes: Mapping[str, int], *, n_sims: int = 400,
                 seed: int = 0) -> tuple[float, str]:
    """(power, reason) of the claim's rule at the evidence's sample size; reason is '' when it reaches 80%."""
    design = dict(DESIGNS[claim.effect])
    size = f"{evidence.n_tasks} task(s) x {evidence.n_seeds} seed(s)" + \
        "".join(f", {v} {k.removeprefix('n_')}" for k, v in sizes.items())
    if evidence.n_tasks < 1 or evidence.n_seeds < 1:
        return 0.0, f"no data ({size})"
    try:
        options = {**design, **sizes}
        if claim.effect == "best_of" and claim.margin:
            options["margin"] = claim.margin
        power = power_at(claim.effect, n_tasks=int(evidence.n_tasks), n_seeds=int(evidence.n_seeds),
                         n_sims=n_sims, seed=seed, **options)
    except ValueError as err:
        return 0.0, f"power not computable at {size}: {err}"
    if power.power >= POWER_TARGET:
        return power.power, ""
    return power.power, (f"power {power.power:.0%} < 80% at {size} for the suite's planted effect of "
                         f"{design['effect']:g} noise SD: not decided")


def test_claims(planned: Sequence[Planned], *, alpha: float = 0.05, n_boot: int = 2000, seed: int = 0,
                check_power: bool = True, n_sims: int = 400) -> tuple[list[ClaimResult], dict[str, str]]:
    """Test, Holm-adjust and decide a notebook's claims; returns (results, {claim name: why not decided})."""
    items, notes = [], {}
    for i, p in enumerate(planned):
        if p.problem or p.data is None:
            ev = untestable(p.claim, p.problem or "no data", p.n_tasks, p.n_seeds)
        else:
            try:
                ev = evidence_for(p.claim, p.data, n_boot=n_boot, seed=seed + i)
            except (ValueError, KeyError) as err:
                ev = untestable(p.claim, str(err), p.n_tasks, p.n_seeds)
        if "untestable" in ev.details:
            notes[p.claim.name] = f"not testable: {ev.details['untestable']}"
        elif check_power:
            _, reason = power_reason(p.claim, ev, p.sizes, n_sims=n_sims, seed=seed + i)
            if reason:
                notes[p.claim.name] = reason
                ev = dataclasses.replace(ev, test=f"{ev.test}; {reason}")
        items.append((p.claim, ev))
    results = evaluate_claims(items, alpha=alpha, n_boot=n_boot, seed=seed)
    results = [dataclasses.replace(r, outcome=INCONCLUSIVE) if r.claim.name in notes else r for r in results]
    return results, notes


def results_frame(results: Sequence[ClaimResult]) -> pd.DataFrame:
    """One row per sub-claim: the verdict.json record (the CI as two columns) and a one-line summary."""
    rows = []
    for r in results:
        d = r.to_dict()
        lo, hi = d.pop("ci95")
        rows.append({**{k: d[k] for k in ("claim", "outcome", "estimate")}, "ci_low": lo, "ci_high": hi,
                     **{k: d[k] for k in ("p_value", "p_adjusted", "n_tasks", "n_seeds", "test")},
                     "summary": r.summary()})
    return pd.DataFrame(rows).set_index("claim")


def verdict_text(results: Sequence[ClaimResult], notes: Mapping[str, str] | None = None) -> str:
    """Markdown: the overall verdict with its counts, then one line per sub-claim (estimate, CI, adjusted p)."""
    overall = overall_verdict(results)
    lines = [f"**Verdict: {overall['verdict']}** ({overall['summary']})", ""]
    for r in results:
        note = f" — {notes[r.claim.name]}" if notes and r.claim.name in notes else ""
        lines.append(f"- *{r.claim.name}*: {r.summary()}{note}")
    return "\n".join(lines)


def record(results: Sequence[ClaimResult], notes: Mapping[str, str] | None = None) -> dict:
    """The evidence part of verdict.json (:func:`adaptlib.analysis.claims.verdict_record`) plus the reasons for
    claims that were not decided."""
    out = verdict_record(results)
    out["not_decided"] = dict(notes or {})
    return out


def seed_pivot(rows: pd.DataFrame, column: str, values: str, scale: float = 100.0) -> pd.DataFrame:
    """Rows of runs -> one row per (dataset, seed), one column per value of ``column``: ``values`` x ``scale``;
    a (dataset, column) with several runs of one seed is averaged."""
    if rows.empty:
        return pd.DataFrame(columns=["dataset", "seed"])
    table = rows.assign(_v=scale * rows[values].astype(float)).pivot_table(
        index=["dataset", "seed"], columns=column, values="_v", aggfunc="mean")
    table.columns = [str(c) for c in table.columns]
    return table.reset_index()


def with_single_seed_baseline(table: pd.DataFrame, baseline: pd.Series, name: str) -> pd.DataFrame:
    """Add a one-seed baseline (zero-shot: one run per task) as column ``name``, its task's value repeated on each
    seed's row, so that every seed of a method is paired with it (the baseline has no seed noise of its own: the
    test's seed noise is the method's alone)."""
    out = table.copy()
    out[name] = out["dataset"].map(baseline)
    return out


def complete(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The (dataset, seed) rows where every one of ``columns`` has a finite value (a test needs them all)."""
    columns = [c for c in columns]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        return table.iloc[0:0]
    ok = np.isfinite(table[columns].to_numpy(dtype=np.float64)).all(axis=1)
    return table.loc[ok, ["dataset", "seed", *columns]].reset_index(drop=True)


def sizes_of(table: pd.DataFrame) -> tuple[int, int]:
    """(tasks, most seeds of a task) of a per-(dataset, seed) table."""
    if table.empty:
        return 0, 0
    return int(table["dataset"].nunique()), int(table.groupby("dataset")["seed"].nunique().max())


def finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
