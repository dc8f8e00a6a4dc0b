"""Main-results tables from the collected results: per method, task and shot count; curves; base-to-new.

Every accuracy here is in percent, averaged over seeds first (a task's number is the mean of its seeds), then
over tasks; spreads are standard deviations over seeds. Base-to-new reports the harmonic mean of the averaged
base and new accuracies, the standard protocol (APEX's paper averages per-task harmonic means instead).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..runs.selection import FEW_SHOT_VAL

ZERO_SHOT = "zeroshot"


def load_results(results_dir: str | Path, selection: str | None = FEW_SHOT_VAL) -> pd.DataFrame:
    """The results table of a store: ``results.csv`` when ``adaptlib results`` wrote it, else collected now. Only
    the runs of model selection ``selection`` (the study's analyses compare methods under one protocol; None: all
    runs, with their ``selection`` column)."""
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
    if "selection" not in df.columns:  # a table written before the axis: every run selected on few-shot val
        df["selection"] = FEW_SHOT_VAL
    if selection is not None:
        df = df[df["selection"] == selection].reset_index(drop=True)
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


# --- per-(task, seed) tables: the units the claim tests and the bootstrap CIs resample ----------------------------

def few_shot_seeds(df: pd.DataFrame, methods: list[str] | None = None, shots: int | None = None,
                   datasets: list[str] | None = None, dialled: bool = False) -> pd.DataFrame:
    """One row per (dataset, seed), one column per method: few-shot test accuracy (%) at ``shots``.

    Zero-shot has one run per task (seed 1, any shot count): its value is repeated on every seed's row, so each
    seed of a method is paired with the task's single zero-shot value (zero-shot has no seed noise of its own)."""
    from .verdicts import seed_pivot

    rows = df[(df["setting"] == "few_shot") & (df["dialled"] == dialled)]
    if methods is not None:
        rows = rows[rows["method_label"].isin(methods)]
    if datasets is not None:
        rows = rows[rows["dataset"].isin(datasets)]
    trained = rows[rows["method_label"] != ZERO_SHOT]
    if shots is not None:
        trained = trained[trained["shots"] == shots]
    table = seed_pivot(trained, "method_label", "accuracy")
    zs = rows[rows["method_label"] == ZERO_SHOT]
    if len(zs) and (methods is None or ZERO_SHOT in methods):
        zs_value = zs.groupby("dataset")["accuracy"].mean().mul(100)
        if table.empty:
            table = pd.DataFrame({"dataset": zs_value.index, "seed": 1})
        table[ZERO_SHOT] = table["dataset"].map(zs_value)
    return table.sort_values(["dataset", "seed"]).reset_index(drop=True)


def base_to_new_seeds(df: pd.DataFrame, methods: list[str] | None = None, shots: int | None = None,
                      metric: str = "hm") -> pd.DataFrame:
    """One row per (dataset, seed), one column per method: base-to-new ``metric`` (hm: the harmonic mean of that
    seed's base and new accuracy; or base, new) in %, at ``shots``. Zero-shot's one run per task is repeated on every
    seed's row (see :func:`few_shot_seeds`)."""
    from .verdicts import seed_pivot

    rows = df[(df["setting"] == "base_to_new") & ~df["dialled"]]
    if methods is not None:
        rows = rows[rows["method_label"].isin(methods)]
    rows = rows.assign(hm=[harmonic_mean(b, n) if pd.notna(b) and pd.notna(n) else float("nan")
                           for b, n in zip(rows["base_accuracy"], rows["new_accuracy"])],
                       base=rows["base_accuracy"], new=rows["new_accuracy"])
    trained = rows[rows["method_label"] != ZERO_SHOT]
    if shots is not None:
        trained = trained[trained["shots"] == shots]
    table = seed_pivot(trained, "method_label", metric)
    zs = rows[rows["method_label"] == ZERO_SHOT]
    if len(zs) and (methods is None or ZERO_SHOT in methods):
        value = zs.groupby("dataset")[metric].mean().mul(100)
        if table.empty:
            table = pd.DataFrame({"dataset": value.index, "seed": 1})
        table[ZERO_SHOT] = table["dataset"].map(value)
    return table.sort_values(["dataset", "seed"]).reset_index(drop=True)


def mean_ci(seeds: pd.DataFrame, columns: list[str] | None = None, n_boot: int = 2000, seed: int = 0,
            over: str = "tasks then seeds") -> pd.DataFrame:
    """Per column of a per-(dataset, seed) table: the mean over tasks of seed means (%) and its 95% percentile CI
    from the hierarchical bootstrap (``over='tasks then seeds'``: resample tasks, then seeds within a task) or over
    seeds only (``over='seeds'``: the tasks fixed). NaN values (runs that are missing) are dropped per column."""
    from ..analysis.resampling import hierarchical_bootstrap, percentile_ci, task_means

    if over not in ("tasks then seeds", "seeds"):
        raise ValueError(f"over must be 'tasks then seeds' or 'seeds', got {over!r}")
    columns = columns or [c for c in seeds.columns if c not in ("dataset", "seed")]
    rows = []
    for c in columns:
        sel = seeds[["dataset", "seed", c]].dropna()
        if sel.empty:
            rows.append({"method": c, "mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"),
                         "tasks": 0})
            continue
        mean = float(sel.groupby("dataset")[c].mean().mean())
        boot = hierarchical_bootstrap(sel, lambda s: task_means(s)[..., 0].mean(axis=1), value_cols=[c],
                                      n_boot=n_boot, seed=seed, resample_tasks=over == "tasks then seeds")
        lo, hi = percentile_ci(boot)
        rows.append({"method": c, "mean": mean, "ci_low": lo, "ci_high": hi, "tasks": int(sel["dataset"].nunique())})
    return pd.DataFrame(rows).set_index("method")


def curve_ci(df: pd.DataFrame, methods: list[str], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """method, shots, mean, ci_low, ci_high: the average few-shot curve over tasks with its bootstrap CI (tasks,
    then seeds). Zero-shot (one run per task) has a CI over tasks only."""
    out = []
    shot_list = sorted(int(s) for s in df.loc[(df["setting"] == "few_shot") & ~df["dialled"] &
                                              (df["method_label"] != ZERO_SHOT), "shots"].unique())
    for k in shot_list:
        table = few_shot_seeds(df, methods, k)
        cols = [m for m in methods if m in table.columns]
        if cols:
            out.append(mean_ci(table, cols, n_boot=n_boot, seed=seed).reset_index().assign(shots=k))
    if not out:
        return pd.DataFrame(columns=["method", "shots", "mean", "ci_low", "ci_high", "tasks"])
    return pd.concat(out, ignore_index=True)


def best_with_ci(df: pd.DataFrame, methods: list[str], shots: int, n_boot: int = 2000, seed: int = 0) -> dict:
    """The method with the best average over tasks at ``shots`` (zero-shot excluded), its mean and 95% CI
    (hierarchical bootstrap, tasks then seeds), the runner-up, and the share of bootstrap resamples in which the
    best stays best (selection redone in each resample: how stable the pick is)."""
    from ..analysis.resampling import as_cube, hierarchical_bootstrap, percentile_ci, task_means

    cand = [m for m in methods if m != ZERO_SHOT]
    table = few_shot_seeds(df, cand, shots)
    cols = [m for m in cand if m in table.columns and table[m].notna().all()]
    if not cols:
        return {"shots": int(shots), "best": None}
    cube = as_cube(table, cols)
    means = cube.task_means().mean(axis=0)
    order = np.argsort(-means)
    best = int(order[0])
    boot = hierarchical_bootstrap(cube, lambda s: task_means(s)[..., best].mean(axis=1), n_boot=n_boot, seed=seed)
    picks = hierarchical_bootstrap(cube, lambda s: task_means(s).mean(axis=1).argmax(axis=1).astype(float),
                                   n_boot=n_boot, seed=seed)
    lo, hi = percentile_ci(boot)
    return {"shots": int(shots), "best": cols[best], "mean": float(means[best]), "ci95": [lo, hi],
            "runner_up": cols[int(order[1])] if len(cols) > 1 else None,
            "runner_up_mean": float(means[order[1]]) if len(cols) > 1 else float("nan"),
            "stays_best": float(np.mean(picks == best)), "tasks": cube.n_tasks}


# --- budgets, timings, failure cases ------------------------------------------------------------------------------

BUDGET_COLUMNS = {"train_steps": "steps", "train_steps_after_warmup": "steps_after_warmup",
                  "train_examples_seen": "examples_seen"}


def budgets(df: pd.DataFrame) -> pd.DataFrame:
    """method, dataset, shots, steps, steps_after_warmup, examples_seen (medians over seeds), share_after_warmup:
    one row per trained method x dataset x shots of the few-shot runs (undialled). Columns the results table does
    not have yet are NaN (results written before they were recorded)."""
    rows = df[(df["setting"] == "few_shot") & ~df["dialled"] & (df["method_label"] != ZERO_SHOT)].copy()
    for col in BUDGET_COLUMNS:
        if col not in rows.columns:
            rows[col] = np.nan
        rows[col] = pd.to_numeric(rows[col], errors="coerce")
    table = rows.groupby(["method_label", "dataset", "shots"])[list(BUDGET_COLUMNS)].median()
    table = table.rename(columns=BUDGET_COLUMNS).reset_index().rename(columns={"method_label": "method"})
    with np.errstate(divide="ignore", invalid="ignore"):
        table["share_after_warmup"] = np.where(table["steps"] > 0, table["steps_after_warmup"] / table["steps"],
                                               np.nan)
    order = {m: i for i, m in enumerate(method_order(table["method"].unique()))}
    table = table.sort_values(["method", "dataset", "shots"], key=lambda s: s.map(order) if s.name == "method"
                              else s, kind="stable")
    return table.reset_index(drop=True)


def load_timings(results_dir: str | Path) -> pd.DataFrame:
    """``timings.csv`` of a results folder (key, wall_seconds, train_seconds, ...), or an empty table."""
    path = Path(results_dir) / "timings.csv"
    if not path.is_file():
        return pd.DataFrame(columns=["key", "wall_seconds", "train_seconds"])
    return pd.read_csv(path)


def failure_cases(df: pd.DataFrame, classes: pd.Series | dict, methods: list[str] | None = None,
                  collapse_factor: float = 2.0) -> pd.DataFrame:
    """The failures a reader should see, with their numbers (seed means, %):

    - ``below zero-shot``: a trained method below zero-shot on a task at the smallest shot count;
    - ``collapse``: a method within ``collapse_factor`` x chance (chance = 100 / classes) on a task where the
      best single method is above twice that.
    One row per (kind, method, dataset, shots)."""
    long = few_shot_long(df, methods)
    if long.empty:
        return pd.DataFrame(columns=["kind", "method", "dataset", "shots", "accuracy", "reference", "note"])
    out = []
    zs = long[long["method"] == ZERO_SHOT].drop_duplicates("dataset").set_index("dataset")["mean"]
    k_min = long.loc[long["method"] != ZERO_SHOT, "shots"].min()
    for _, r in long[(long["shots"] == k_min) & (long["method"] != ZERO_SHOT)].iterrows():
        if r["dataset"] in zs.index and r["mean"] < zs[r["dataset"]]:
            out.append({"kind": "below zero-shot", "method": r["method"], "dataset": r["dataset"],
                        "shots": int(r["shots"]), "accuracy": r["mean"], "reference": zs[r["dataset"]],
                        "note": f"{r['mean'] - zs[r['dataset']]:+.1f} points vs zero-shot"})
    singles = [m for m in long["method"].unique() if "+" not in m and "@" not in m and m != ZERO_SHOT]
    for (dataset, shots), g in long[long["method"] != ZERO_SHOT].groupby(["dataset", "shots"]):
        if dataset not in classes:
            continue
        chance = 100.0 / float(classes[dataset])
        best_single = g.loc[g["method"].isin(singles), "mean"].max()
        if not np.isfinite(best_single) or best_single <= collapse_factor * 2 * chance:
            continue
        for _, r in g[g["mean"] <= collapse_factor * chance].iterrows():
            out.append({"kind": "collapse", "method": r["method"], "dataset": dataset, "shots": int(shots),
                        "accuracy": r["mean"], "reference": best_single,
                        "note": f"within {collapse_factor:g}x chance ({chance:.1f}%); best single method "
                                f"{best_single:.1f}%"})
    cols = ["kind", "method", "dataset", "shots", "accuracy", "reference", "note"]
    return pd.DataFrame(out, columns=cols)


def _seed_boot_ci(values: np.ndarray, n_boot: int, rng) -> tuple[float, float]:
    """95% percentile CI of the mean of one task's seed values (a single seed: that value, no spread)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan")
    if len(v) == 1:
        return float(v[0]), float(v[0])
    boot = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return float(lo), float(hi)


def per_task_ci(df: pd.DataFrame, methods: list[str], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """method, dataset, shots, mean, ci_low, ci_high, seeds: each task's few-shot accuracy (%) with a 95%
    percentile bootstrap CI over its seeds (zero-shot: one run, no CI)."""
    rng = np.random.default_rng(seed)
    out = []
    shot_list = sorted(int(s) for s in df.loc[(df["setting"] == "few_shot") & ~df["dialled"] &
                                              (df["method_label"] != ZERO_SHOT), "shots"].unique())
    for k in shot_list:
        table = few_shot_seeds(df, methods, k)
        for m in [m for m in methods if m in table.columns]:
            for task, g in table.groupby("dataset"):
                v = g[m].to_numpy(dtype=float)
                if not np.isfinite(v).any():
                    continue
                lo, hi = _seed_boot_ci(v, n_boot, rng)
                out.append({"method": m, "dataset": task, "shots": k, "mean": float(np.nanmean(v)), "ci_low": lo,
                            "ci_high": hi, "seeds": int(np.isfinite(v).sum())})
    return pd.DataFrame(out, columns=["method", "dataset", "shots", "mean", "ci_low", "ci_high", "seeds"])


def base_to_new_ci(df: pd.DataFrame, methods: list[str], shots: int, n_boot: int = 1000,
                   seed: int = 0) -> pd.DataFrame:
    """Per method: base, new and HM (the HM of the task-averaged base and new, as :func:`base_to_new_table`) in %,
    each with a 95% CI from the hierarchical bootstrap (tasks, then seeds; HM recomputed in each resample)."""
    from ..analysis.resampling import as_cube, hierarchical_bootstrap, percentile_ci, task_means

    base = base_to_new_seeds(df, methods, shots, "base")
    new = base_to_new_seeds(df, methods, shots, "new")
    rows = []
    for m in [m for m in methods if m in base.columns and m in new.columns]:
        t = base[["dataset", "seed", m]].rename(columns={m: "base"}).merge(
            new[["dataset", "seed", m]].rename(columns={m: "new"}), on=["dataset", "seed"]).dropna()
        if t.empty:
            continue
        cube = as_cube(t, ["base", "new"])
        avg = cube.task_means().mean(axis=0)
        row = {"method": m, "base": avg[0], "new": avg[1], "hm": harmonic_mean(avg[0], avg[1]),
               "tasks": cube.n_tasks}
        for i, name in enumerate(("base", "new")):
            b = hierarchical_bootstrap(cube, lambda s, i=i: task_means(s)[..., i].mean(axis=1), n_boot=n_boot,
                                       seed=seed)
            row[f"{name}_ci_low"], row[f"{name}_ci_high"] = percentile_ci(b)

        def hm_stat(s):
            a = task_means(s).mean(axis=1)
            return 2 * a[:, 0] * a[:, 1] / np.where(a.sum(axis=1) > 0, a.sum(axis=1), np.nan)

        row["hm_ci_low"], row["hm_ci_high"] = percentile_ci(hierarchical_bootstrap(cube, hm_stat, n_boot=n_boot,
                                                                                   seed=seed))
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.set_index("method") if len(table) else table


def chance_level(classes, datasets) -> dict[str, float]:
    """Chance accuracy (%) per dataset: 100 / classes (a dialled 'task@dials' dataset has its task's classes)."""
    return {d: 100.0 / float(classes[str(d).split("@")[0]]) for d in datasets if str(d).split("@")[0] in classes}


# --- convergence: do the step caps decide the ranking? -------------------------------------------------------------

STEPS_LABEL = re.compile(r"^(?P<method>[^@]+)@steps=(?P<steps>\d+)$")


def convergence_runs(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run of the convergence check: every method the profile also trained at other step caps (labels
    ``METHOD@steps=N``), at those caps and at its own, on the tasks, shots and seeds of those runs: method,
    dataset, seed, steps, budget (steps / its own cap), val_accuracy (few-shot validation, %), accuracy (test, %).
    Runs of one method, task, seed and step count in several groups (the drift group) are averaged into one row."""
    cols = ["method", "dataset", "seed", "steps", "budget", "val_accuracy", "accuracy"]
    few = df[(df["setting"] == "few_shot") & ~df["dialled"]]
    labels = few["method_label"].astype(str)
    match = labels.str.extract(STEPS_LABEL)
    found = match["method"].notna()
    if not found.any():
        return pd.DataFrame(columns=cols)
    variants = few[found].assign(method=match.loc[found, "method"], steps=match.loc[found, "steps"].astype(float))
    cell = variants[["dataset", "shots", "seed"]].drop_duplicates()
    own = few[few["method_label"].isin(variants["method"].unique())].merge(cell, on=["dataset", "shots", "seed"])
    own = own.assign(method=own["method_label"], steps=pd.to_numeric(own["train_steps"], errors="coerce"))
    both = pd.concat([own, variants], ignore_index=True)
    cap = own.groupby("method")["steps"].median()
    both = both.assign(budget=both["steps"] / both["method"].map(cap),
                       val_accuracy=both["val_accuracy"] * 100, accuracy=both["accuracy"] * 100)
    # a method whose own runs are also in another group of the same cell (the drift group) counts once: their mean
    return both[cols].groupby(["method", "dataset", "seed", "steps", "budget"], as_index=False, sort=False).mean()


def convergence_table(df: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per method and budget of the convergence check: steps, budget, val_accuracy and accuracy (means over the
    check's tasks of seed means, %) with their 95% bootstrap CIs (tasks, then seeds), and the number of tasks.
    Empty without convergence runs."""
    runs = convergence_runs(df)
    cols = ["method", "steps", "budget", "val_accuracy", "val_ci_low", "val_ci_high", "accuracy", "ci_low",
            "ci_high", "tasks"]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for (method, steps), g in runs.groupby(["method", "steps"]):
        ci = mean_ci(g[["dataset", "seed", "val_accuracy", "accuracy"]], ["val_accuracy", "accuracy"],
                     n_boot=n_boot, seed=seed)
        rows.append({"method": method, "steps": steps, "budget": float(g["budget"].iloc[0]),
                     "val_accuracy": ci.loc["val_accuracy", "mean"], "val_ci_low": ci.loc["val_accuracy", "ci_low"],
                     "val_ci_high": ci.loc["val_accuracy", "ci_high"], "accuracy": ci.loc["accuracy", "mean"],
                     "ci_low": ci.loc["accuracy", "ci_low"], "ci_high": ci.loc["accuracy", "ci_high"],
                     "tasks": int(g["dataset"].nunique())})
    table = pd.DataFrame(rows, columns=cols)
    order = {m: i for i, m in enumerate(method_order(table["method"].unique()))}
    return table.sort_values(["method", "steps"], key=lambda s: s.map(order) if s.name == "method" else s,
                             kind="stable").reset_index(drop=True)


CONVERGENCE_STATUS = ("not converged", "converged", "undetermined")


def convergence_summary(runs: pd.DataFrame, column: str = "val_accuracy", margin: float = 2.0, alpha: float = 0.05,
                        n_boot: int = 2000, seed: int = 0) -> dict:
    """Do the caps decide the ranking? Per method, the paired gain from twice its cap (budget 2 - budget 1, points
    of ``column``, per task over the same seeds) with its hierarchical-bootstrap 95% CI and the one-sided sign-flip
    p over tasks (:func:`adaptlib.analysis.claims.paired_difference_test`). A method is **not converged** when
    the test finds a gain (p <= alpha; deliberately not Holm-adjusted: a check that errs toward raising a cap is
    the safe side), **converged** when the CI's upper end is below ``margin`` points (twice the steps would gain
    less than ``margin``), and **undetermined** otherwise (the check's tasks cannot tell). The caps decide the
    ranking when any method is not converged. Beside it, Kendall's tau (and p) between the methods' ranking at
    their cap and at twice it, and the largest change of a method's rank, by the task means."""
    from scipy.stats import kendalltau

    from ..analysis.claims import paired_difference_test

    empty = {"tau": float("nan"), "p_value": float("nan"), "ranks": pd.DataFrame(), "gains": pd.DataFrame(),
             "not_converged": {}, "undetermined": {}, "column": column, "largest_rank_change": float("nan"),
             "caps_decide": False, "margin": margin}
    if runs.empty:
        return empty
    rows = []
    for method, g in runs.groupby("method", sort=False):
        wide = g.pivot_table(index=["dataset", "seed"], columns="budget", values=column).reset_index()
        if 1.0 not in wide.columns or 2.0 not in wide.columns:
            continue
        wide = wide.dropna(subset=[1.0, 2.0]).rename(columns={1.0: "cap", 2.0: "twice"})
        if wide.empty:
            continue
        ev = paired_difference_test(wide, "twice", "cap", n_boot=n_boot, seed=seed)
        lo, hi = ev.ci95
        status = "not converged" if ev.p_value <= alpha else "converged" if hi < margin else "undetermined"
        rows.append({"method": method, "at_cap": float(wide.groupby("dataset")["cap"].mean().mean()),
                     "at_twice": float(wide.groupby("dataset")["twice"].mean().mean()), "gain": ev.estimate,
                     "ci_low": lo, "ci_high": hi, "p_value": ev.p_value, "tasks": ev.n_tasks, "status": status})
    gains = pd.DataFrame(rows)
    if len(gains) < 3:
        return {**empty, "gains": gains}
    gains = gains.set_index("method")
    ranks = pd.DataFrame({1.0: gains["at_cap"].rank(ascending=False, method="average"),
                          2.0: gains["at_twice"].rank(ascending=False, method="average")})
    tau, p = kendalltau(gains["at_cap"], gains["at_twice"])
    pick = lambda s: {m: float(round(g, 2)) for m, g in gains.loc[gains["status"] == s, "gain"].items()}
    return {"tau": float(tau), "p_value": float(p), "ranks": ranks, "gains": gains, "column": column,
            "not_converged": pick("not converged"), "undetermined": pick("undetermined"),
            "caps_decide": bool((gains["status"] == "not converged").any()), "margin": margin,
            "largest_rank_change": float((ranks[2.0] - ranks[1.0]).abs().max())}


CALIBRATION_COLUMNS = {"ece": 100.0, "nll": 1.0, "worst_class_accuracy": 100.0, "accuracy": 100.0}


def runs_by_method(df: pd.DataFrame, methods: list[str], shots: int):
    """(method, its runs) in the study's method order: the undialled few-shot runs of ``methods`` at ``shots``,
    zero-shot's one run per task whatever its shots."""
    rows = df[(df["setting"] == "few_shot") & ~df["dialled"] & df["method_label"].isin(methods)]
    rows = rows[(rows["shots"] == shots) | (rows["method_label"] == ZERO_SHOT)]
    for method in method_order(rows["method_label"].unique()):
        g = rows[rows["method_label"] == method]
        yield method, (g.drop_duplicates("dataset") if method == ZERO_SHOT else g)


def calibration_table(df: pd.DataFrame, methods: list[str], shots: int, n_boot: int = 1000,
                      seed: int = 0) -> pd.DataFrame:
    """Beyond top-1, per method at ``shots`` (zero-shot: its one run per task): expected calibration error (15 bins,
    %), negative log-likelihood (nats), worst-class and top-1 accuracy (%) of the test split, each the mean over
    tasks of seed means with its 95% CI (hierarchical bootstrap: tasks, then seeds; columns ``<metric>_ci_low`` and
    ``<metric>_ci_high``). Runs recorded before these metrics existed have none and are left out."""
    metrics = [m for m in CALIBRATION_COLUMNS if m in df.columns]
    out = []
    for method, g in runs_by_method(df, methods, shots):
        g = g.dropna(subset=["ece"]) if "ece" in g.columns else g.iloc[:0]
        if g.empty:
            continue
        values = g[["dataset", "seed"]].assign(**{m: g[m].astype(float) * CALIBRATION_COLUMNS[m] for m in metrics})
        # a run in two groups of one cell (the drift group) counts once: the mean of its copies
        values = values.groupby(["dataset", "seed"], as_index=False, sort=True)[metrics].mean()
        ci = mean_ci(values, metrics, n_boot=n_boot, seed=seed)
        record = {"method": method, "shots": shots, "tasks": int(g["dataset"].nunique())}
        for m in metrics:
            record.update({m: ci.loc[m, "mean"], f"{m}_ci_low": ci.loc[m, "ci_low"],
                           f"{m}_ci_high": ci.loc[m, "ci_high"]})
        out.append(record)
    return pd.DataFrame(out)
