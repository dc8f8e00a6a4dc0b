"""How much of each method's accuracy comes from model selection: the same methods under two selections
(``few_shot_val`` against ``fixed``, or against the ``oracle_test`` of a paper that chose on test), per method the
accuracies with CIs and the paired gap with its test, and whether the ranking of the methods changes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..runs.selection import FEW_SHOT_VAL, FIXED, selection_label
from .tables import method_order, mean_ci

COLUMNS = ["method", "shots", "reference", "reference_ci_low", "reference_ci_high", "other", "other_ci_low",
           "other_ci_high", "gap", "gap_ci_low", "gap_ci_high", "p_value", "p_adjusted", "outcome", "tasks",
           "rank_reference", "rank_other"]


def selection_runs(df: pd.DataFrame, shots: int, selections: tuple[str, str]) -> pd.DataFrame:
    """method, dataset, seed and one accuracy column (%) per selection: the undialled few-shot runs at ``shots``
    that exist under both selections (a method run under one only is left out)."""
    rows = df[(df["setting"] == "few_shot") & ~df["dialled"] & (df["shots"] == shots)
              & df["selection"].isin(selections)]
    wide = rows.pivot_table(index=["method_label", "dataset", "seed"], columns="selection", values="accuracy")
    wide = wide.reindex(columns=list(selections)).dropna() * 100
    return wide.reset_index().rename(columns={"method_label": "method"})


def selection_comparison(df: pd.DataFrame, shots: int, selections: tuple[str, str] = (FEW_SHOT_VAL, FIXED),
                         alpha: float = 0.05, n_boot: int = 2000, seed: int = 0) -> dict:
    """Per method at ``shots``: the mean accuracy over tasks (of seed means, %) under each selection with 95%
    hierarchical-bootstrap CIs, the gap other - reference with its CI and two-sided sign-flip p over tasks, Holm-
    adjusted over the methods; outcome ``other higher`` / ``other lower`` / ``no difference shown``, or ``not
    decidable`` for every method when no data could reach alpha (``smallest_p_adjusted``: the sign-flip test's
    floor over this many tasks times the number of methods, Holm's first step). Beside it the
    rank of each method under each selection and Kendall's tau between the two rankings (``ranking_changes``:
    whether any method changes rank). ``df``: :func:`adaptlib.study.tables.load_results` with ``selection=None``."""
    from scipy.stats import kendalltau

    from ..analysis.claims import holm, paired_difference_test
    from ..analysis.resampling import smallest_sign_flip_p

    reference, other = selections
    runs = selection_runs(df, shots, selections)
    rows = []
    for method, g in runs.groupby("method", sort=False):
        means = mean_ci(g[["dataset", "seed", reference, other]], [reference, other], n_boot=n_boot, seed=seed)
        ev = paired_difference_test(g, other, reference, n_boot=n_boot, seed=seed)
        p = float(min(1.0, 2 * min(ev.p_value, ev.p_opposite)))
        rows.append({"method": method, "shots": shots, "reference": means.loc[reference, "mean"],
                     "reference_ci_low": means.loc[reference, "ci_low"],
                     "reference_ci_high": means.loc[reference, "ci_high"], "other": means.loc[other, "mean"],
                     "other_ci_low": means.loc[other, "ci_low"], "other_ci_high": means.loc[other, "ci_high"],
                     "gap": ev.estimate, "gap_ci_low": ev.ci95[0], "gap_ci_high": ev.ci95[1], "p_value": p,
                     "tasks": ev.n_tasks})
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in ("p_adjusted", "outcome", "rank_reference",
                                                                       "rank_other")])
    empty = {"table": pd.DataFrame(columns=COLUMNS), "tau": float("nan"), "tau_p": float("nan"),
             "ranking_changes": False, "selections": selections, "shots": shots, "smallest_p_adjusted": 1.0}
    if table.empty:
        return empty
    order = {m: i for i, m in enumerate(method_order(table["method"]))}
    table = table.sort_values("method", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    table["p_adjusted"] = holm(table["p_value"].to_numpy())
    floor = min(1.0, len(table) * 2 * smallest_sign_flip_p(int(table["tasks"].min())))
    if floor > alpha:  # the test cannot reject at this size: it says so instead of deciding
        table["outcome"] = f"not decidable ({int(table['tasks'].min())} tasks, {len(table)} methods)"
    else:
        table["outcome"] = np.where(table["p_adjusted"] > alpha, "no difference shown",
                                    np.where(table["gap"] > 0, f"{other} higher", f"{other} lower"))
    table["rank_reference"] = table["reference"].rank(ascending=False, method="min").astype(int)
    table["rank_other"] = table["other"].rank(ascending=False, method="min").astype(int)
    tau, tau_p = (kendalltau(table["reference"], table["other"]) if len(table) >= 3 else (float("nan"),) * 2)
    return {"table": table[COLUMNS], "tau": float(tau), "tau_p": float(tau_p), "selections": selections,
            "ranking_changes": bool((table["rank_reference"] != table["rank_other"]).any()), "shots": shots,
            "smallest_p_adjusted": floor,
            "labels": {m: selection_label(m, other) for m in table["method"]}}
