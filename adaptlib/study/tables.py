"""Main-results tables from the collected results: per method, task and shot count; curves; base-to-new.

Every accuracy here is in percent, averaged over seeds first (a task's number is the mean of its seeds), then
over tasks; spreads are standard deviations over seeds. Base-to-new reports the harmonic mean of the averaged
base and new accuracies, the standard protocol (APEX's paper averages per-task harmonic means instead).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

ZERO_SHOT = "zeroshot"


def load_results(results_dir: str | Path) -> pd.DataFrame:
    """The results table of a store: ``results.csv`` when ``adaptlib results`` wrote it, else collected now."""
    results_dir = Path(results_dir)
    csv = results_dir / "results.csv"
    if csv.is_file():
        df = pd.read_csv(csv)
    else:
        from ..runs.table import collect_with_problems

        df, _ = collect_with_problems(results_dir)
    if df.empty:
        raise FileNotFoundError(f"no results under {results_dir}: run the sweep first (make sweep, or adaptlib sweep)")
    df = df.copy()
    if "state_file" in df.columns:  # stored relative to the results folder, wherever that is now
        df["state_file"] = [str((results_dir / p).resolve()) if isinstance(p, str) else p for p in df["state_file"]]
    df["task"] = df["dataset"].astype(str).str.split("@").str[0]
    df["dialled"] = df["dataset"].astype(str).str.contains("@")
    return df


def method_order(labels) -> list[str]:
    """Methods in the registry's order (the order of the literature), hybrids and variants after."""
    from ..methods import RECIPES

    known = [m for m in RECIPES if m in set(labels)]
    return known + sorted(set(labels) - set(known))


def _seed_stats(df: pd.DataFrame, metric: str, by: list[str]) -> pd.DataFrame:
    values = df.dropna(subset=[metric]).assign(value=lambda d: 100 * d[metric].astype(float))
    out = values.groupby(by)["value"].agg(["mean", "std", "count"]).reset_index()
    return out.rename(columns={"count": "seeds"})


def few_shot_long(df: pd.DataFrame, methods: list[str] | None = None) -> pd.DataFrame:
    """method, dataset, shots, mean, std, seeds: the undialled few-shot runs. Zero-shot, run once per task,
    is repeated at every shot count (it does not depend on the shots)."""
    rows = df[(df["setting"] == "few_shot") & ~df["dialled"]]
    if methods is not None:
        rows = rows[rows["method_label"].isin(methods)]
    stats = _seed_stats(rows, "accuracy", ["method_label", "dataset", "shots"])
    shots = sorted(stats.loc[stats["method_label"] != ZERO_SHOT, "shots"].unique())
    zs = stats[stats["method_label"] == ZERO_SHOT]
    if len(zs) and shots:
        zs = zs.drop(columns="shots").merge(pd.DataFrame({"shots": shots}), how="cross")
        stats = pd.concat([stats[stats["method_label"] != ZERO_SHOT], zs], ignore_index=True)
    return stats.rename(columns={"method_label": "method"})


def few_shot_matrix(long: pd.DataFrame, shots: int) -> pd.DataFrame:
    """Methods x tasks at ``shots`` (seed means, %), with the average over tasks as the last column."""
    sel = long[long["shots"] == shots]
    table = sel.pivot(index="method", columns="dataset", values="mean")
    table["average"] = table.mean(axis=1)
    return table.loc[method_order(table.index)]


def average_curve(long: pd.DataFrame) -> pd.DataFrame:
    """Methods x shots: the average over tasks of the seed means (%)."""
    table = long.groupby(["method", "shots"])["mean"].mean().unstack("shots")
    return table.loc[method_order(table.index)]


def average_curve_spread(df: pd.DataFrame, methods: list[str] | None = None) -> pd.DataFrame:
    """Methods x shots: standard deviation over seeds of the task-averaged accuracy (the curve's error bars)."""
    rows = df[(df["setting"] == "few_shot") & ~df["dialled"] & (df["method_label"] != ZERO_SHOT)]
    if methods is not None:
        rows = rows[rows["method_label"].isin(methods)]
    per_seed = rows.groupby(["method_label", "shots", "seed"])["accuracy"].mean().mul(100)
    spread = per_seed.groupby(["method_label", "shots"]).std().unstack("shots")
    spread.index.name = "method"
    return spread.loc[method_order(spread.index)]


def harmonic_mean(base: float, new: float) -> float:
    return 2 * base * new / (base + new) if base + new > 0 else float("nan")


def base_to_new_long(df: pd.DataFrame, shots: int | None = None) -> pd.DataFrame:
    """method, dataset, shots, base, new (seed means, %)."""
    rows = df[(df["setting"] == "base_to_new") & ~df["dialled"]]
    if shots is not None:
        rows = rows[rows["shots"] == shots]
    by = ["method_label", "dataset", "shots"]
    base = _seed_stats(rows, "base_accuracy", by).rename(columns={"mean": "base", "std": "base_std"})
    new = _seed_stats(rows, "new_accuracy", by).rename(columns={"mean": "new", "std": "new_std"})
    out = base.merge(new.drop(columns="seeds"), on=by, how="left")
    return out.rename(columns={"method_label": "method"})


def base_to_new_table(df: pd.DataFrame, shots: int = 16) -> pd.DataFrame:
    """Per method: base, new and HM of the averages over tasks (%), and the number of tasks."""
    long = base_to_new_long(df, shots)
    rows = []
    for method, g in long.groupby("method"):
        base, new = g["base"].mean(), g["new"].mean() if g["new"].notna().all() else float("nan")
        rows.append({"method": method, "base": base, "new": new, "hm": harmonic_mean(base, new), "tasks": len(g)})
    table = pd.DataFrame(rows).set_index("method")
    return table.loc[method_order(table.index)]


def parameter_table(df: pd.DataFrame) -> pd.DataFrame:
    """Trainable parameters of each method on the study's backbone (median over runs; class-dependent parts vary)."""
    rows = df[(df["setting"] == "few_shot") & ~df["dialled"]]
    table = rows.groupby("method_label")["trainable_parameters"].agg(["min", "median", "max"])
    table.index.name = "method"
    return table.loc[method_order(table.index)]


def rank_table(matrix: pd.DataFrame) -> pd.DataFrame:
    """Rank of each method on each task (1 = best), and its mean rank."""
    ranks = matrix.drop(columns=["average"], errors="ignore").rank(ascending=False, method="min")
    ranks["mean rank"] = ranks.mean(axis=1)
    return ranks.sort_values("mean rank")


def seeds_complete(df: pd.DataFrame) -> dict:
    """How many runs, tasks, methods and seeds the table holds (for the notebooks' provenance line)."""
    return {"runs": int(len(df)), "methods": int(df["method_label"].nunique()),
            "tasks": int(df.loc[~df["dialled"], "dataset"].nunique()), "seeds": sorted(map(int, df["seed"].unique())),
            "shots": sorted(map(int, df["shots"].unique()))}
