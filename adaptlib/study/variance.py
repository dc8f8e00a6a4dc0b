"""The inter/intra-class variance question and the hybrid strategy (the NTU study).

Claims tested:
1. prompt tuning (CoOp), CLIP-Adapter and LayerNorm tuning each win somewhere: across tasks, and across the
   controlled grid of the embedded world's dials, the winner among the three is not always the same;
2. a hybrid of them gets the strengths of each: the best fixed hybrid is at least as good as the best single
   method on average, and a rule that picks parts from measured task properties (measured on the few-shot
   training data only) is at least as good as the best single method.

The class-structure measures of the tasks come from the measures stage (``adaptlib.measures.structure``: tables
``class_structure_test`` and ``class_structure_train``); this module reads them.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .tables import few_shot_long

THREE = ("coop", "clip_adapter", "layernorm")
PART_OF = {"coop": "prompt", "clip_adapter": "adapter", "layernorm": "ln"}
DIAL = re.compile(r"(inter|intra|shift)=([0-9.]+)")


def winners(df: pd.DataFrame, methods=THREE, shots: int = 16, datasets: list[str] | None = None) -> pd.DataFrame:
    """Per task: each method's accuracy (seed mean, %), the winner and its margin over the runner-up."""
    long = few_shot_long(df, list(methods))
    sel = long[long["shots"] == shots].pivot(index="dataset", columns="method", values="mean")
    if datasets is not None:
        sel = sel.loc[[d for d in datasets if d in sel.index]]
    sel = sel[[m for m in methods if m in sel.columns]]
    ordered = np.sort(sel.values, axis=1)
    sel["winner"] = sel.idxmax(axis=1)
    sel["margin"] = ordered[:, -1] - ordered[:, -2]
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
    table["winner"] = table[present].idxmax(axis=1)
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


def claims(task_winners: pd.DataFrame, grid: pd.DataFrame | None, comparison: pd.DataFrame) -> list[dict]:
    """The NTU study's claims, each with its evidence and whether the embedded results support it."""
    singles = [m for m in THREE if m in comparison.columns]
    hybrids = [c for c in comparison.columns if "+" in c]
    if comparison.empty or not singles:
        raise ValueError("no task has the rule's choice and a single method run at the largest shot count: "
                         "the profile needs the hybrids group on the same tasks as coop, clip_adapter, layernorm")
    means = comparison.mean()
    best_single = means[singles].idxmax()
    best_hybrid = means[hybrids].idxmax() if hybrids else None
    distinct = sorted(set(task_winners["winner"]))
    grid_distinct = sorted(set(grid["winner"])) if grid is not None else []
    out = [
        {"claim": "prompt tuning, adapter and LayerNorm tuning each win on different tasks",
         "evidence": f"winners across tasks: {distinct}; across the dial grid: {grid_distinct}",
         "supported": bool(len(distinct) >= 2 and (grid is None or len(grid_distinct) >= 2))},
        {"claim": "a fixed hybrid gets the strengths of each (at least the best single method on average)",
         "evidence": f"best hybrid {best_hybrid} {means.get(best_hybrid, np.nan):.2f}% vs best single "
                     f"{best_single} {means[best_single]:.2f}%",
         "supported": bool(best_hybrid is not None and means[best_hybrid] >= means[best_single])},
        {"claim": "choosing parts from measured variance beats every single method",
         "evidence": f"rule {means['rule']:.2f}% vs best single {best_single} {means[best_single]:.2f}%",
         "supported": bool(means["rule"] >= means[best_single])},
    ]
    return out
