"""The transfer-difficulty question (APEX): how hard is each task, which methods gain where, and does the
difficulty-adaptive ensemble help.

APEX's claims tested here (declared as ``Claim`` s, tested through :func:`adaptlib.study.verdicts.test_claims`):
1. visual prompts and text adapters matter on hard tasks: for *each* method built on them (VPT, the text
   adapter, APEX; not pooled), its advantage over the text-prompt methods (CoOp, CoCoOp, KgCoOp) grows with
   transfer difficulty: Spearman's rho over tasks with the primary measure (1 - kappa, declared below), exact
   permutation p; the other two measures and a leave-one-task-out table are shown beside it;
2. the adaptive ensemble with the frozen model helps everywhere: its base-to-new harmonic mean beats the adapted
   model alone (alpha = 1) on most tasks (exact sign test over tasks). The fixed alpha with the best test HM is
   an oracle (chosen on test) and is labelled so.

The class counts and APEX's class distance of each task come from the measures stage (``adaptlib.measures``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ..analysis import difficulty_table
from ..analysis.claims import Claim, rank_correlation_test
from .tables import ZERO_SHOT, base_to_new_long, few_shot_long, few_shot_seeds, harmonic_mean
from .verdicts import Planned, complete, seed_pivot, sizes_of

VISUAL_PROMPT_OR_TEXT_ADAPTER = ("vpt_shallow", "vpt_deep", "text_adapter", "apex")
TEXT_PROMPT_ONLY = ("coop", "cocoop", "kgcoop")
MEASURES = ("rtd", "zero_shot_error_kappa", "headroom")
# Declared before the data: the difficulty measure that decides claim 1 (the others are shown beside it). 1 - kappa
# corrects the zero-shot error for chance, so it does not rank tasks by their class count as RTD does, and it needs
# no trained model, unlike the headroom (which uses the 16-shot linear probe's test accuracy).
PRIMARY_MEASURE = "zero_shot_error_kappa"
MEASURE_LABEL = {"zero_shot_error_kappa": "chance-corrected zero-shot error 1 - kappa",
                 "rtd": "relative transfer difficulty RTD", "headroom": "headroom (linear probe - zero-shot)"}

# --- the claims, declared before any result is read --------------------------------------------------------------


def hard_task_claim_for(method: str) -> Claim:
    """APEX claim 1 for one visual-prompt / text-adapter method (not pooled): its accuracy advantage over the mean
    of the text-prompt methods grows with the task's difficulty (primary measure), over tasks."""
    return Claim(f"APEX 1 ({method}): its advantage over text-prompt methods grows with difficulty",
                 "rank_correlation", "greater")


ENSEMBLE_CLAIM = Claim("APEX 2: the adaptive ensemble's base-to-new HM beats the adapted model alone (alpha = 1) "
                       "on most tasks", "share_of_tasks", "greater", unit="of tasks")


def task_difficulty(df: pd.DataFrame, classes: Mapping[str, int], shots: int = 16) -> pd.DataFrame:
    """Per task: classes, zero-shot and 16-shot linear-probe accuracy (fractions), RTD, 1 - kappa, headroom, ranks.
    ``classes``: each task's number of classes (the measures table ``tasks``: ``Measures.classes``)."""
    long = few_shot_long(df, [ZERO_SHOT, "linear_probe"])
    sel = long[long["shots"] == shots].pivot(index="dataset", columns="method", values="mean") / 100
    missing = [d for d in sel.index if d not in classes]
    if missing:
        raise KeyError(f"no class count of task(s) {missing}: the measures are not of these results "
                       f"(make measures)")
    table = pd.DataFrame({"dataset": sel.index, "classes": [classes[d] for d in sel.index],
                          "zero_shot": sel[ZERO_SHOT].values, "linear_probe_16": sel["linear_probe"].values})
    out = difficulty_table(table)
    return out.set_index("dataset") if "dataset" in out.columns else out


def gains_over_zero_shot(df: pd.DataFrame, shots: int = 16) -> pd.DataFrame:
    """Methods x tasks: accuracy minus zero-shot accuracy, in points, at ``shots``."""
    long = few_shot_long(df)
    sel = long[long["shots"] == shots].pivot(index="method", columns="dataset", values="mean")
    return sel.sub(sel.loc[ZERO_SHOT], axis=1).drop(index=ZERO_SHOT)


def gain_correlations(gains: pd.DataFrame, difficulty: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlation, over tasks, between each method's gain and each difficulty measure."""
    rows = []
    for method, g in gains.iterrows():
        row = {"method": method}
        for measure in MEASURES:
            d = difficulty.loc[g.index, measure]
            row[measure] = float(spearmanr(g.values, d.values).statistic) if len(g) > 2 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def hard_task_advantage(gains: pd.DataFrame, difficulty: pd.DataFrame,
                        measure: str = "zero_shot_error_kappa") -> pd.DataFrame:
    """Per task: mean gain of visual-prompt / text-adapter methods, of text-prompt-only methods, and the
    difference (the advantage), with the task's difficulty."""
    vp = [m for m in VISUAL_PROMPT_OR_TEXT_ADAPTER if m in gains.index]
    tp = [m for m in TEXT_PROMPT_ONLY if m in gains.index]
    if not vp or not tp:
        raise ValueError(f"the advantage needs methods of both groups; have {list(gains.index)}")
    table = pd.DataFrame({"visual_prompt_or_text_adapter": gains.loc[vp].mean(), "text_prompt_only": gains.loc[tp].mean()})
    table["advantage"] = table["visual_prompt_or_text_adapter"] - table["text_prompt_only"]
    table["difficulty"] = difficulty.loc[table.index, measure]
    return table.sort_values("difficulty")


def base_new_gap(df: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """Methods x shots: mean over tasks of (base - new) accuracy in points (the generalisation gap)."""
    long = base_to_new_long(df)
    long = long[long["method"].isin(methods)]
    long = long.assign(gap=long["base"] - long["new"])
    return long.groupby(["method", "shots"])["gap"].mean().unstack("shots")


def ensemble_sweep(df: pd.DataFrame, method: str = "apex") -> pd.DataFrame:
    """Per task: new-class accuracy and HM of the adaptive ensemble and of every fixed alpha (seed means, %), and
    the fixed alpha with the best test HM (``oracle_alpha``, ``hm_oracle_alpha``: chosen on test, an oracle)."""
    rows = df[(df["setting"] == "base_to_new") & (df["method_label"] == method) & ~df["dialled"]]
    if rows.empty:
        raise ValueError(f"no base-to-new runs of {method!r} in the results")
    alphas = sorted({float(c.split("=")[1]) for c in rows.columns if c.startswith("hm@alpha=") and
                     rows[c].notna().any()})
    out = []
    for dataset, g in rows.groupby("dataset"):
        row = {"dataset": dataset, "base": 100 * g["base_accuracy"].mean(), "new_adaptive": 100 * g["new_accuracy"].mean()}
        row["hm_adaptive"] = harmonic_mean(row["base"], row["new_adaptive"])
        for a in alphas:
            base, new = 100 * g[f"base_accuracy@alpha={a:g}"].mean(), 100 * g[f"new_accuracy@alpha={a:g}"].mean()
            row[f"new@{a:g}"], row[f"hm@{a:g}"] = new, harmonic_mean(base, new)
        hm_fixed = {a: row[f"hm@{a:g}"] for a in alphas}
        # chosen on the test split: an oracle, not a method (no practitioner could pick it)
        row["oracle_alpha"] = max(hm_fixed, key=lambda a: (hm_fixed[a], -a)) if hm_fixed else float("nan")
        row["hm_oracle_alpha"] = hm_fixed.get(row["oracle_alpha"], float("nan"))
        out.append(row)
    return pd.DataFrame(out).set_index("dataset")


def advantage_seeds(df: pd.DataFrame, method: str, shots: int) -> pd.DataFrame:
    """Per (dataset, seed): ``method``'s few-shot accuracy minus the mean of the text-prompt methods' (CoOp,
    CoCoOp, KgCoOp, those run) at the same seed (same few-shot data), in points; column ``advantage``. Zero-shot
    cancels out of the difference of gains, so this is the gain advantage. Rows where a method is missing are
    dropped."""
    tp = [m for m in TEXT_PROMPT_ONLY if m in set(df["method_label"])]
    table = few_shot_seeds(df, [method, *tp], shots)
    tp = [m for m in tp if m in table.columns]
    if method not in table.columns or not tp:
        return pd.DataFrame(columns=["dataset", "seed", "advantage"])
    table = complete(table, [method, *tp])
    return table.assign(advantage=table[method] - table[tp].mean(axis=1))[["dataset", "seed", "advantage"]]


def _advantage_matrix(adv: pd.DataFrame) -> pd.DataFrame:
    """tasks x seeds (NaN where a task lacks a seed)."""
    return adv.pivot(index="dataset", columns="seed", values="advantage").sort_index()


def hard_task_planned(df: pd.DataFrame, difficulty: pd.DataFrame, shots: int,
                      measure: str = PRIMARY_MEASURE) -> list[Planned]:
    """APEX claim 1, one declared claim per visual-prompt / text-adapter method run: rank correlation over tasks
    of its per-seed advantage (seed means) with the difficulty ``measure``."""
    planned = []
    for m in [m for m in VISUAL_PROMPT_OR_TEXT_ADAPTER if m in set(df["method_label"])]:
        claim = hard_task_claim_for(m)
        adv = advantage_seeds(df, m, shots)
        n_t, n_s = sizes_of(adv)
        if n_t < 3:
            planned.append(Planned(claim, problem=f"{n_t} task(s) with {m} and a text-prompt method at {shots} "
                                                  f"shots; a rank correlation needs 3", n_tasks=n_t, n_seeds=n_s))
            continue
        y = _advantage_matrix(adv)
        x = difficulty.loc[y.index, measure].to_numpy(dtype=float)
        planned.append(Planned(claim, {"x": x, "y": y.to_numpy(dtype=float)}, n_tasks=n_t, n_seeds=n_s))
    return planned


def hard_task_by_measure(df: pd.DataFrame, difficulty: pd.DataFrame, shots: int, n_boot: int = 500) -> pd.DataFrame:
    """Per method and difficulty measure: Spearman's rho of the advantage with difficulty over tasks, its 95% CI
    and the exact one-sided p (greater), unadjusted: all three measures side by side (only the primary decides)."""
    rows = []
    for m in [m for m in VISUAL_PROMPT_OR_TEXT_ADAPTER if m in set(df["method_label"])]:
        y = _advantage_matrix(advantage_seeds(df, m, shots))
        for measure in MEASURES:
            row = {"method": m, "measure": measure, "primary": measure == PRIMARY_MEASURE, "tasks": len(y)}
            if len(y) >= 3:
                ev = rank_correlation_test(difficulty.loc[y.index, measure].to_numpy(dtype=float),
                                           y.to_numpy(dtype=float), n_boot=n_boot)
                row.update(rho=ev.estimate, ci_low=ev.ci95[0], ci_high=ev.ci95[1], p_greater=ev.p_value)
            else:
                row.update(rho=np.nan, ci_low=np.nan, ci_high=np.nan, p_greater=np.nan)
            rows.append(row)
    return pd.DataFrame(rows)


def leave_one_task_out(df: pd.DataFrame, difficulty: pd.DataFrame, shots: int,
                       measure: str = PRIMARY_MEASURE) -> pd.DataFrame:
    """Methods x dropped task: Spearman's rho of the advantage with difficulty over the other tasks (column
    ``all``: none dropped). A claim that flips sign when one task is dropped rests on that task."""
    rows = {}
    for m in [m for m in VISUAL_PROMPT_OR_TEXT_ADAPTER if m in set(df["method_label"])]:
        y = _advantage_matrix(advantage_seeds(df, m, shots)).mean(axis=1)
        if len(y) < 3:
            continue
        x = difficulty.loc[y.index, measure]
        row = {"all": correlation(x, y)}
        for task in y.index:
            keep = y.index != task
            row[f"without {task}"] = correlation(x[keep], y[keep]) if keep.sum() >= 3 else np.nan
        rows[m] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")


def advantage_by_task(df: pd.DataFrame, difficulty: pd.DataFrame, shots: int,
                      measure: str = PRIMARY_MEASURE) -> pd.DataFrame:
    """method, dataset, difficulty, advantage (seed mean), ci_low, ci_high (95% bootstrap over the task's seeds),
    seeds: the data of claim 1, for the plot."""
    from .tables import mean_ci

    rows = []
    for m in [m for m in VISUAL_PROMPT_OR_TEXT_ADAPTER if m in set(df["method_label"])]:
        adv = advantage_seeds(df, m, shots)
        for task, g in adv.groupby("dataset"):
            ci = mean_ci(g.assign(dataset=task), ["advantage"], n_boot=500, over="seeds").iloc[0]
            rows.append({"method": m, "dataset": task, "difficulty": float(difficulty.loc[task, measure]),
                         "advantage": float(g["advantage"].mean()), "ci_low": ci["ci_low"], "ci_high": ci["ci_high"],
                         "seeds": len(g)})
    return pd.DataFrame(rows, columns=["method", "dataset", "difficulty", "advantage", "ci_low", "ci_high", "seeds"])


def ensemble_seeds(df: pd.DataFrame, method: str = "apex") -> pd.DataFrame:
    """Per (dataset, seed) of ``method``'s base-to-new runs: ``hm_adaptive`` (the adaptive ensemble) and ``hm@a``
    for every fixed alpha a, each the harmonic mean of that run's base and new accuracy (%)."""
    rows = df[(df["setting"] == "base_to_new") & (df["method_label"] == method) & ~df["dialled"]]
    alphas = sorted({float(c.split("=")[1]) for c in rows.columns if c.startswith("hm@alpha=") and
                     rows[c].notna().any()})
    out = []
    for (dataset, seed), g in rows.groupby(["dataset", "seed"]):
        row = {"dataset": dataset, "seed": seed,
               "hm_adaptive": harmonic_mean(100 * g["base_accuracy"].mean(), 100 * g["new_accuracy"].mean())}
        for a in alphas:
            row[f"hm@{a:g}"] = harmonic_mean(100 * g[f"base_accuracy@alpha={a:g}"].mean(),
                                             100 * g[f"new_accuracy@alpha={a:g}"].mean())
        out.append(row)
    return pd.DataFrame(out)


def ensemble_planned(df: pd.DataFrame, method: str = "apex") -> Planned:
    """APEX claim 2: exact sign test over tasks of the per-task seed mean of hm_adaptive - hm@1."""
    table = ensemble_seeds(df, method)
    if table.empty or "hm@1" not in table.columns:
        return Planned(ENSEMBLE_CLAIM, problem=f"no base-to-new runs of {method} with alpha = 1 evaluated")
    table = complete(table, ["hm_adaptive", "hm@1"])
    n_t, n_s = sizes_of(table)
    return Planned(ENSEMBLE_CLAIM, {"data": table, "a_col": "hm_adaptive", "b_col": "hm@1"}, n_tasks=n_t,
                   n_seeds=n_s)


def gains_by_task(df: pd.DataFrame, shots: int, methods: list[str]) -> pd.DataFrame:
    """method, dataset, gain, ci_low, ci_high: each method's few-shot accuracy minus zero-shot's (points) per task
    at ``shots``, the seed mean with a 95% bootstrap CI over the task's seeds (zero-shot is one run per task)."""
    from .tables import per_task_ci

    per = per_task_ci(df, [*methods, ZERO_SHOT])
    per = per[per["shots"] == shots]
    zs = per[per["method"] == ZERO_SHOT].set_index("dataset")["mean"]
    out = per[(per["method"] != ZERO_SHOT) & per["dataset"].isin(zs.index)].copy()
    base = out["dataset"].map(zs)
    out = out.assign(gain=out["mean"] - base, ci_low=out["ci_low"] - base, ci_high=out["ci_high"] - base)
    return out[["method", "dataset", "gain", "ci_low", "ci_high", "seeds"]].reset_index(drop=True)


def base_new_gap_ci(df: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """method, shots, mean, ci_low, ci_high: the mean over tasks of (base - new) accuracy (points) with a 95% CI
    (bootstrap over tasks, then seeds)."""
    from .tables import base_to_new_seeds, mean_ci

    rows = []
    shot_list = sorted(df.loc[(df["setting"] == "base_to_new") & df["method_label"].isin(methods), "shots"].unique())
    for k in shot_list:
        base, new = base_to_new_seeds(df, methods, int(k), "base"), base_to_new_seeds(df, methods, int(k), "new")
        for m in [m for m in methods if m in base.columns and m in new.columns]:
            t = base[["dataset", "seed", m]].merge(new[["dataset", "seed", m]], on=["dataset", "seed"],
                                                   suffixes=("_b", "_n"))
            t = t.assign(gap=t[f"{m}_b"] - t[f"{m}_n"])[["dataset", "seed", "gap"]].dropna()
            if len(t):
                ci = mean_ci(t, ["gap"], n_boot=1000).iloc[0]
                rows.append({"method": m, "shots": int(k), "mean": ci["mean"], "ci_low": ci["ci_low"],
                             "ci_high": ci["ci_high"], "tasks": ci["tasks"]})
    return pd.DataFrame(rows, columns=["method", "shots", "mean", "ci_low", "ci_high", "tasks"])


def correlation(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = ~(np.isnan(x) | np.isnan(y))
    return float(spearmanr(x[ok], y[ok]).statistic) if ok.sum() > 2 else float("nan")
