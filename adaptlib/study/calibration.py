"""Calibration beyond the ECE number: reliability diagrams pooled over a method's runs, and the change of
calibration under distribution shift against zero-shot (the embedded shift dial; the paper profile's ImageNet
variants). Both read what every run records of each test split (``reliability`` bins, ``ece@<target>``)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..training.evaluate import expected_calibration_error
from .tables import ZERO_SHOT, mean_ci, method_order, runs_by_method

SHIFT_METRICS = {"accuracy": 100.0, "ece": 100.0}


def reliability_table(df: pd.DataFrame, methods: list[str], shots: int, split: str = "test") -> pd.DataFrame:
    """method, bin, lo, hi, count, confidence, accuracy (%): each method's reliability diagram at ``shots``, its
    undialled few-shot runs' bins pooled (counts summed, confidence and accuracy count-weighted; zero-shot: its one
    run per task). Runs recorded before the bins existed are left out; ``runs`` says how many were pooled."""
    if "reliability" not in df.columns:
        return pd.DataFrame()
    out = []
    for method, g in runs_by_method(df, methods, shots):
        # a run in two groups of one cell counts once
        g = g.drop_duplicates(["dataset", "seed"])
        parsed = [json.loads(r) for r in g["reliability"] if isinstance(r, str)]
        records = [r[split] for r in parsed if split in r]
        if not records:
            continue
        counts = np.array([r["count"] for r in records], dtype=float)
        conf = np.array([[c if c is not None else 0.0 for c in r["confidence"]] for r in records])
        acc = np.array([[a if a is not None else 0.0 for a in r["accuracy"]] for r in records])
        total = counts.sum(axis=0)
        bins = counts.shape[1]
        with np.errstate(invalid="ignore", divide="ignore"):
            pooled_conf = (counts * conf).sum(axis=0) / total
            pooled_acc = (counts * acc).sum(axis=0) / total
        for b in range(bins):
            out.append({"method": method, "shots": shots, "runs": len(records), "bin": b, "lo": b / bins,
                        "hi": (b + 1) / bins, "count": int(total[b]),
                        "confidence": 100 * pooled_conf[b] if total[b] else np.nan,
                        "accuracy": 100 * pooled_acc[b] if total[b] else np.nan})
    return pd.DataFrame(out)


def pooled_ece(table: pd.DataFrame) -> pd.Series:
    """Per method, the ECE (%) of its pooled reliability diagram (the runs' ECE, computed from the pooled bins)."""
    return pd.Series({method: expected_calibration_error(t.to_dict("list"))
                      for method, t in table.groupby("method", sort=False)[["count", "confidence", "accuracy"]]})


def shift_targets(df: pd.DataFrame) -> list[str]:
    """The shifted test sets of the cross-dataset runs: the ``<target>`` of each ``accuracy@<target>`` column that
    has a value (an ensemble sweep's ``accuracy@alpha=...`` is not a target)."""
    rows = df[df["setting"] == "cross_dataset"]
    return [c.split("@", 1)[1] for c in df.columns
            if c.startswith("accuracy@") and not c.startswith("accuracy@alpha=") and rows[c].notna().any()]


def shift_calibration_table(df: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per cross-dataset method and test set (the source's own test split, then each shifted one): top-1 accuracy
    and ECE (%), and each one's change against zero-shot on the same test set (method - zero-shot, paired by task
    and seed; zero-shot's runs of a seed are its own), each the mean over tasks of seed means with its 95% CI
    (hierarchical bootstrap: tasks, then seeds; with one source task, over seeds)."""
    rows = df[df["setting"] == "cross_dataset"]
    targets = shift_targets(df)
    if rows.empty or not targets or ZERO_SHOT not in set(rows["method_label"]):
        return pd.DataFrame()
    tests = [("source", "")] + [(t, f"@{t}") for t in targets]
    out = []
    for method in method_order(rows["method_label"].unique()):
        for test, suffix in tests:
            columns = {m: m + suffix for m in SHIFT_METRICS}
            if any(c not in rows.columns for c in columns.values()):
                continue
            per_seed = {}
            for label in (method, ZERO_SHOT):
                g = rows[rows["method_label"] == label]
                per_seed[label] = g.groupby(["dataset", "seed"])[list(columns.values())].mean()
            joined = per_seed[method].merge(per_seed[ZERO_SHOT], left_index=True, right_index=True,
                                            suffixes=("", "_zs")).dropna()
            if joined.empty:
                continue
            table = pd.DataFrame(index=joined.index)
            for m, c in columns.items():
                table[m] = joined[c] * SHIFT_METRICS[m]
                table[f"{m}_change"] = (joined[c] - joined[c + "_zs"]) * SHIFT_METRICS[m]
            ci = mean_ci(table.reset_index(), n_boot=n_boot, seed=seed)
            record = {"method": method, "test_set": test, "tasks": int(joined.index.get_level_values(0).nunique()),
                      "seeds": int(joined.index.get_level_values(1).nunique())}
            for col in table.columns:
                record.update({col: ci.loc[col, "mean"], f"{col}_ci_low": ci.loc[col, "ci_low"],
                               f"{col}_ci_high": ci.loc[col, "ci_high"]})
            out.append(record)
    return pd.DataFrame(out)
