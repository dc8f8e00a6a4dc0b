"""The transfer-difficulty question (APEX): how hard is each task, which methods gain where, and does the
difficulty-adaptive ensemble help.

APEX's claims tested here:
1. visual prompts and text adapters matter on hard tasks: the advantage of the methods built on them (VPT,
   the text adapter, APEX) over text-prompt methods (CoOp, CoCoOp, KgCoOp) grows with transfer difficulty;
2. the adaptive ensemble with the frozen model helps everywhere: on new classes its harmonic mean is at least
   that of the adapted model alone (alpha = 1) on (nearly) every task.

The class counts and APEX's class distance of each task come from the measures stage (``adaptlib.measures``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ..analysis import difficulty_table
from .tables import ZERO_SHOT, base_to_new_long, few_shot_long, harmonic_mean

VISUAL_PROMPT_OR_TEXT_ADAPTER = ("vpt_shallow", "vpt_deep", "text_adapter", "apex")
TEXT_PROMPT_ONLY = ("coop", "cocoop", "kgcoop")
MEASURES = ("rtd", "zero_shot_error_kappa", "headroom")


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


def hard_task_claim(advantage: pd.DataFrame) -> dict:
    """Claim 1: the advantage grows with difficulty (Spearman rho > 0) and is larger on the harder half."""
    rho = float(spearmanr(advantage["difficulty"], advantage["advantage"]).statistic)
    ordered = advantage.sort_values("difficulty")
    half = len(ordered) // 2
    easy, hard = ordered["advantage"].iloc[:half].mean(), ordered["advantage"].iloc[-half:].mean()
    return {"claim": "visual prompts and text adapters matter more on harder tasks",
            "spearman_rho": rho, "advantage_easier_half": float(easy), "advantage_harder_half": float(hard),
            "supported": bool(rho > 0 and hard > easy)}


def base_new_gap(df: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """Methods x shots: mean over tasks of (base - new) accuracy in points (the generalisation gap)."""
    long = base_to_new_long(df)
    long = long[long["method"].isin(methods)]
    long = long.assign(gap=long["base"] - long["new"])
    return long.groupby(["method", "shots"])["gap"].mean().unstack("shots")


def ensemble_sweep(df: pd.DataFrame, method: str = "apex") -> pd.DataFrame:
    """Per task: new-class accuracy and HM of the adaptive ensemble and of every fixed alpha (seed means, %)."""
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
        row["best_fixed_alpha"] = max(hm_fixed, key=lambda a: (hm_fixed[a], -a)) if hm_fixed else float("nan")
        row["hm_best_fixed"] = hm_fixed.get(row["best_fixed_alpha"], float("nan"))
        out.append(row)
    return pd.DataFrame(out).set_index("dataset")


def ensemble_claim(sweep: pd.DataFrame, tolerance: float = 0.0) -> dict:
    """Claim 2: the adaptive ensemble's HM is at least the adapted model's (alpha = 1) on >= 80% of tasks."""
    if "hm@1" not in sweep.columns:
        raise ValueError("the ensemble sweep needs alpha = 1 (the adapted model alone)")
    helps = sweep["hm_adaptive"] >= sweep["hm@1"] - tolerance
    share = float(helps.mean())
    return {"claim": "the adaptive ensemble helps on every task", "tasks_helped": int(helps.sum()),
            "tasks": int(len(sweep)), "mean_hm_gain_over_alpha1": float((sweep["hm_adaptive"] - sweep["hm@1"]).mean()),
            "mean_hm_gain_over_best_fixed": float((sweep["hm_adaptive"] - sweep["hm_best_fixed"]).mean()),
            "supported": bool(share >= 0.8)}


def correlation(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = ~(np.isnan(x) | np.isnan(y))
    return float(spearmanr(x[ok], y[ok]).statistic) if ok.sum() > 2 else float("nan")
