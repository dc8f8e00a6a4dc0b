"""The inter/intra-class variance question and the hybrid strategy (the NTU study).

Claims tested (declared below as ``Claim`` s, tested with :mod:`adaptlib.analysis.claims` through
:func:`adaptlib.study.verdicts.test_claims`):
1. prompt tuning (CoOp), CLIP-Adapter and LayerNorm tuning each win somewhere: each must *strictly* win some task
   (its margin over every other tested against the task's seed noise; ties, tasks at the ceiling or at chance have
   no winner), across tasks (1a) and across the controlled grid of the embedded world's dials (1b);
2. a hybrid of them gets the strengths of each: some fixed hybrid beats every single method (best-of test, the
   selection of the best hybrid included);
3. a rule that picks parts from measured task properties (measured on the few-shot training data only) beats every
   single method.

The class-structure measures of the tasks come from the measures stage (``adaptlib.measures.structure``: tables
``class_structure_test`` and ``class_structure_train``); this module reads them.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..analysis.claims import Claim
from .tables import ZERO_SHOT, few_shot_long, few_shot_seeds, method_order
from .verdicts import Planned, complete, sizes_of

THREE = ("coop", "clip_adapter", "layernorm")
PART_OF = {"coop": "prompt", "clip_adapter": "adapter", "layernorm": "ln"}
DIAL = re.compile(r"(inter|intra|shift)=([0-9.]+)")
HYBRIDS = ("prompt+adapter", "prompt+ln", "adapter+ln", "prompt+adapter+ln")
CEILING = 100.0  # accuracy in %: a task where the runner-up is at 100% has no winner

# --- the claims, declared before any result is read --------------------------------------------------------------
EACH_WINS_TASKS = Claim("NTU 1a: prompt tuning, adapter and LayerNorm tuning each win on some task",
                        "each_wins", unit="points")
EACH_WINS_GRID = Claim("NTU 1b: prompt tuning, adapter and LayerNorm tuning each win somewhere on the dial grid",
                       "each_wins", unit="points")
HYBRID_CLAIM = Claim("NTU 2: a fixed hybrid beats every single method (prompt, adapter, LayerNorm)", "best_of",
                     "greater", unit="points")
RULE_CLAIM = Claim("NTU 3: the variance rule's choice beats every single method", "best_of", "greater",
                   unit="points")


def winners(df: pd.DataFrame, methods=THREE, shots: int = 16, datasets: list[str] | None = None) -> pd.DataFrame:
    """Per task: each method's accuracy (seed mean, %), the winner and its margin over the runner-up."""
    long = few_shot_long(df, list(methods))
    sel = long[long["shots"] == shots].pivot(index="dataset", columns="method", values="mean")
    if datasets is not None:
        sel = sel.loc[[d for d in datasets if d in sel.index]]
    sel = sel[[m for m in methods if m in sel.columns]]
    ordered = np.sort(sel.values, axis=1)
    sel["margin"] = ordered[:, -1] - ordered[:, -2]
    # a tie (e.g. three methods at 100%) has no winner; idxmax would take the first column
    sel["winner"] = [sel.loc[d, list(sel.columns[:-1])].astype(float).idxmax() if m > 0 else "tie"
                     for d, m in zip(sel.index, sel["margin"])]
    return sel


def dial_grid(df: pd.DataFrame, methods=THREE, shots: int = 16) -> pd.DataFrame:
    """The controlled runs: per dialled task, its dial values, each method's accuracy and the winner."""
    rows = df[(df["setting"] == "few_shot") & df["dialled"] & (df["shots"] == shots)]
    if rows.empty:
        raise ValueError("no dialled runs (datasets written task@inter=...,intra=...) in the results")
    acc = rows.groupby(["dataset", "method_label"])["accuracy"].mean().mul(100).unstack("method_label")
    dials = pd.DataFrame([dict((k, float(v)) for k, v in DIAL.findall(d)) for d in acc.index], index=acc.index)
    table = dials.join(acc)
    present = [m for m in methods if m in table.columns]
    ordered = np.sort(table[present].to_numpy(dtype=float), axis=1)
    margin = ordered[:, -1] - ordered[:, -2] if len(present) > 1 else np.full(len(table), np.inf)
    table["winner"] = [table.loc[d, present].astype(float).idxmax() if m > 0 else "tie"
                       for d, m in zip(table.index, margin)]
    return table


def hybrid_label(parts: set[str]) -> str:
    """The run label of a set of parts: a single method's name, or the hybrid's 'prompt+adapter+ln' form."""
    if len(parts) == 1:
        return {v: k for k, v in PART_OF.items()}[next(iter(parts))]
    return "+".join(p for p in ("prompt", "adapter", "ln") if p in parts)


def hybrid_rule(structure: pd.DataFrame) -> pd.DataFrame:
    """Choose parts per task from properties measured on its few-shot training data, relative to the median
    task (no test data, no accuracy of any adapted model):
    - a prompt when the class names are hard to tell apart for the text encoder (text-side similarity of class
      names above the median) or zero-shot is weak on the training images (below the median);
    - an adapter when the image features already separate the classes well (Fisher ratio above the median), so a
      small re-mapping of them pays off;
    - LayerNorm tuning when classes vary a lot inside (intra-class similarity below the median), which needs the
      encoder itself to change.
    With no part chosen, the rule takes all three."""
    med = structure.median(numeric_only=True)
    rows = []
    for task, s in structure.iterrows():
        parts = set()
        if s["text_inter_class_similarity"] > med["text_inter_class_similarity"] or \
                s["zero_shot_accuracy"] < med["zero_shot_accuracy"]:
            parts.add("prompt")
        if s["fisher_ratio"] > med["fisher_ratio"]:
            parts.add("adapter")
        if s["intra_class_similarity"] < med["intra_class_similarity"]:
            parts.add("ln")
        parts = parts or {"prompt", "adapter", "ln"}
        rows.append({"dataset": task, "parts": "+".join(sorted(parts)), "choice": hybrid_label(parts)})
    return pd.DataFrame(rows).set_index("dataset")


def hybrid_comparison(df: pd.DataFrame, rule: pd.DataFrame, shots: int = 16) -> pd.DataFrame:
    """Accuracy per task (%) of each single method, each fixed hybrid, and the rule's choice, on the tasks where
    the rule's choice was run and with the methods run on all of them, so every column averages the same tasks."""
    candidates = list(THREE) + ["prompt+adapter", "prompt+ln", "adapter+ln", "prompt+adapter+ln"]
    long = few_shot_long(df, candidates)
    sel = long[long["shots"] == shots].pivot(index="dataset", columns="method", values="mean")
    sel = sel.loc[[d for d in rule.index if d in sel.index]]
    sel["rule"] = [sel.loc[d, rule.loc[d, "choice"]] if rule.loc[d, "choice"] in sel.columns else np.nan
                   for d in sel.index]
    sel = sel[sel["rule"].notna()]
    return sel.dropna(axis=1, how="any")


def chance_of(datasets, classes) -> dict[str, float]:
    """Chance accuracy (%) of each dataset, 100 / classes of its task (a dialled task 'shape@inter=..' has the
    classes of 'shape'); ``classes``: the measures' tasks table (``Measures.classes``)."""
    out = {}
    for d in datasets:
        task = str(d).split("@")[0]
        if task not in classes:
            raise KeyError(f"no class count of task {task!r} in the measures (make measures)")
        out[d] = 100.0 / float(classes[task])
    return out


def each_wins_planned(df: pd.DataFrame, classes, shots: int, datasets: list[str] | None = None,
                      grid: bool = False, methods=THREE) -> Planned:
    """NTU claim 1 on the undialled tasks (``grid=False``) or on the dial grid (``grid=True``): the per-(task,
    seed) accuracies of the three methods for :func:`~adaptlib.analysis.claims.each_wins_test`, with chance
    100 / classes per task and the ceiling 100%."""
    claim = EACH_WINS_GRID if grid else EACH_WINS_TASKS
    table = few_shot_seeds(df, list(methods), shots, datasets=datasets, dialled=grid)
    present = [m for m in methods if m in table.columns]
    if len(present) < 2:
        return Planned(claim, problem=f"fewer than 2 of {list(methods)} were run" + (" on the dial grid" if grid
                                                                                      else ""))
    table = complete(table, present)
    n_t, n_s = sizes_of(table)
    if n_t == 0:
        return Planned(claim, problem="no task has every method" + (" (no dial grid)" if grid else ""))
    return Planned(claim, {"data": table, "methods": present, "ceiling": CEILING,
                           "chance": chance_of(table["dataset"].unique(), classes)},
                   sizes={"n_items": len(present)}, n_tasks=n_t, n_seeds=n_s)


def hybrid_seeds(df: pd.DataFrame, rule: pd.DataFrame, shots: int) -> pd.DataFrame:
    """Per (dataset, seed): accuracy (%) of each single method, each fixed hybrid, and the rule's choice
    (``rule``), on the tasks where the rule's choice was run; rows with every candidate present."""
    table = few_shot_seeds(df, list(THREE) + list(HYBRIDS), shots, datasets=list(rule.index))
    if table.empty:
        return table
    choice = rule["choice"].reindex(table["dataset"]).to_numpy()
    table["rule"] = [row[c] if isinstance(c, str) and c in table.columns else np.nan
                     for c, (_, row) in zip(choice, table.iterrows())]
    return table


def hybrid_planned(seeds: pd.DataFrame) -> list[Planned]:
    """NTU claims 2 (some fixed hybrid beats each single method) and 3 (the rule's choice does), best-of tests on
    the (task, seed) rows where every single method, every hybrid compared and the rule have a value."""
    singles = [m for m in THREE if m in seeds.columns]
    hybrids = [h for h in HYBRIDS if h in seeds.columns and seeds[h].notna().any()]
    out = []
    if not singles:
        why = "no single method run on the rule's tasks"
        return [Planned(HYBRID_CLAIM, problem=why), Planned(RULE_CLAIM, problem=why)]
    if hybrids:
        t = complete(seeds, singles + hybrids)
        n_t, n_s = sizes_of(t)
        out.append(Planned(HYBRID_CLAIM, {"data": t, "candidates": hybrids, "baselines": singles},
                           sizes={"n_candidates": len(hybrids), "n_baselines": len(singles)}, n_tasks=n_t,
                           n_seeds=n_s) if n_t else Planned(HYBRID_CLAIM, problem="no task has every hybrid"))
    else:
        out.append(Planned(HYBRID_CLAIM, problem="no fixed hybrid was run"))
    t = complete(seeds, singles + ["rule"])
    n_t, n_s = sizes_of(t)
    out.append(Planned(RULE_CLAIM, {"data": t, "candidates": ["rule"], "baselines": singles},
                       sizes={"n_candidates": 1, "n_baselines": len(singles)}, n_tasks=n_t, n_seeds=n_s)
               if n_t else Planned(RULE_CLAIM, problem="no task has the rule's choice and every single method"))
    return out


def oracle_pick(seeds: pd.DataFrame) -> pd.DataFrame:
    """Per task: the single method or hybrid with the best test accuracy (seed mean): chosen on test, an
    **oracle**, not a method; with its accuracy, and beside it the rule's choice and its accuracy."""
    cands = [c for c in [*THREE, *HYBRIDS] if c in seeds.columns]
    means = seeds.groupby("dataset")[cands + (["rule"] if "rule" in seeds.columns else [])].mean()
    out = pd.DataFrame({"oracle_pick (chosen on test)": means[cands].idxmax(axis=1),
                        "oracle_accuracy": means[cands].max(axis=1)})
    if "rule" in means.columns:
        out["rule_accuracy"] = means["rule"]
    return out


def practical_pick(df: pd.DataFrame, shots: int, datasets: list[str]) -> tuple[pd.DataFrame | None, str]:
    """The practical baseline: per task, the single method or hybrid with the best few-shot validation accuracy
    (column ``val_accuracy`` of the results, the trained model on the few-shot validation set), and its test
    accuracy. Returns (table, '') or (None, why it cannot be built)."""
    if "val_accuracy" not in df.columns:
        return None, ("the results table has no column val_accuracy (few-shot validation accuracy of each trained "
                      "run): the practical per-task pick needs it; the oracle pick (chosen on test) is shown "
                      "instead, beside the variance rule")
    rows = df[(df["setting"] == "few_shot") & ~df["dialled"] & (df["shots"] == shots) &
              df["method_label"].isin([*THREE, *HYBRIDS]) & df["dataset"].isin(datasets) &
              df["val_accuracy"].notna() & df["accuracy"].notna()]
    if rows.empty:
        return None, "no few-shot run has a val_accuracy: the practical per-task pick needs it"
    g = rows.groupby(["dataset", "method_label"])[["val_accuracy", "accuracy"]].mean().mul(100).reset_index()
    best = g.loc[g.groupby("dataset")["val_accuracy"].idxmax()].set_index("dataset")
    return best.rename(columns={"method_label": "practical_pick (best few-shot val)",
                                "accuracy": "test_accuracy"}), ""


def efficiency_table(df: pd.DataFrame, timings: pd.DataFrame, shots: int) -> pd.DataFrame:
    """Per single method and fixed hybrid: trainable parameters, training seconds and training memory (medians
    over its few-shot runs at ``shots``; memory is what training adds over the frozen model: saved activations,
    trainable parameters, gradients and optimiser state, ``train_memory_mb``), and for a hybrid the sum over its
    single methods of their medians (what running the parts separately would cost) and the hybrid / parts ratios.
    Training seconds come from ``timings.csv`` (wall clock: they vary between machines and runs)."""
    rows = df[(df["setting"] == "few_shot") & ~df["dialled"] & (df["shots"] == shots) &
              df["method_label"].isin([*THREE, *HYBRIDS])]
    if "train_seconds" in timings.columns and len(timings):
        rows = rows.merge(timings[["key", "train_seconds"]], on="key", how="left")
    else:
        rows = rows.assign(train_seconds=np.nan)
    if "train_memory_mb" not in rows.columns:
        rows = rows.assign(train_memory_mb=np.nan)
    measures = {"trainable_parameters": "parameters", "train_seconds": "seconds", "train_memory_mb": "memory_mb"}
    med = rows.groupby("method_label")[list(measures)].median()
    of_part = {v: k for k, v in PART_OF.items()}
    out = []
    for m in [*THREE, *HYBRIDS]:
        if m not in med.index:
            continue
        row = {col: med.loc[m, col] for col in measures}
        row["method"] = m
        if "+" in m:
            parts = [of_part[p] for p in m.split("+")]
            if all(p in med.index for p in parts):
                for col, short in measures.items():
                    total = med.loc[parts, col].sum()
                    row[f"parts_{short}"] = total
                    row[f"{short}_ratio"] = row[col] / total if total else np.nan
        out.append(row)
    cols = ["method", "trainable_parameters", "train_seconds", "train_memory_mb", "parts_parameters",
            "parts_seconds", "parts_memory_mb", "parameters_ratio", "seconds_ratio", "memory_mb_ratio"]
    return pd.DataFrame(out).reindex(columns=cols).set_index("method")


ORACLE = "oracle pick (chosen on test)"


def with_oracle(seeds: pd.DataFrame) -> pd.DataFrame:
    """``seeds`` (:func:`hybrid_seeds`) with a column :data:`ORACLE`: on each task the single method or hybrid
    with the best test accuracy (seed mean), its value at each seed. Chosen on test: an oracle, an upper bound
    for any per-task pick, never a method."""
    picks = oracle_pick(seeds)["oracle_pick (chosen on test)"]
    out = seeds.copy()
    out[ORACLE] = [row[picks[d]] if d in picks.index else np.nan for d, (_, row) in zip(out["dataset"],
                                                                                         out.iterrows())]
    return out
