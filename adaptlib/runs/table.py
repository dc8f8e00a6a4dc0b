"""Collect a store's result files into one table (CSV, and parquet), one row per run.

``results.csv`` holds what identifies a run and what it measured, nothing that changes between two executions
of the same run (wall times, hosts, sweep ids go to ``timings.csv``), so a resumed sweep and an uninterrupted
one give byte-identical tables. Rows are sorted by key. Invalid files are reported and left out, never used.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..utils.atomic import atomic_path, atomic_write_text
from .selection import FEW_SHOT_VAL
from .store import InvalidResult, read_result, result_files

IDENTITY = ("key", "backbone", "pretrained", "setting", "dataset", "method", "method_label", "label", "shots", "seed",
            "selection", "config_hash")
CONFIG_JSON = ("hybrid_parts", "part_options", "train", "eval_datasets", "crop_scale", "ensemble_alphas")
CONFIG_FLAGS = ("quick_gelu", "feature_cache", "save_state")


def _json(value) -> str:
    return json.dumps(value, sort_keys=True)


def flatten(record: dict, root: Path) -> tuple[dict, dict]:
    """(results row, timings row) of one result record."""
    cfg = record["config"]
    cfg = {"selection": FEW_SHOT_VAL, **cfg}  # the default is left out of configs (runs.selection)
    row = {"key": record["key"], **{k: cfg.get(k) for k in IDENTITY[1:] if k in cfg}}
    row["pretrained"] = cfg.get("pretrained") or "random"  # None would read back as NaN
    row["method_label"] = cfg.get("label") or cfg["method"]
    row["config_hash"] = record["config_hash"]
    row.update({k: _json(cfg.get(k)) for k in CONFIG_JSON})
    row.update({k: cfg.get(k) for k in CONFIG_FLAGS})
    row["trainable_parameters"] = record.get("trainable_parameters")
    train = record.get("train", {})
    row["train_steps"] = train.get("steps")
    row["train_steps_after_warmup"] = train.get("steps_after_warmup", 0 if not train.get("steps") else None)
    row["train_examples_seen"] = train.get("examples_seen", 0 if not train.get("steps") else None)
    row["train_memory_mb"] = train.get("train_memory_mb", 0 if not train.get("steps") else None)
    row.update({f"data_{k}": v for k, v in record.get("data", {}).items()})
    row["chosen"] = _json(record.get("chosen", {}))
    row["per_class_accuracy"] = _json(record.get("per_class_accuracy", {}))  # {test split: {class: accuracy}}
    row["reliability"] = _json(record.get("reliability", {}))  # {test split: {count, confidence, accuracy}}
    row["state_file"] = record.get("state_file")  # relative to the store; study.tables.load_results resolves it
    for name, value in sorted(record["metrics"].items()):
        row[name] = value
    timing = {"key": record["key"], "wall_seconds": record.get("wall_seconds"), "train_seconds": train.get("seconds"),
              "device": record.get("device"), "code_version": record.get("code_version"),
              "sweep": record.get("sweep"), "torch": record.get("versions", {}).get("torch")}
    return row, timing


def collect_with_problems(root: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """(one row per valid result file, a message per invalid one)."""
    root = Path(root)
    rows, problems = [], []
    for path in result_files(root):
        try:
            record = read_result(path)
        except InvalidResult as err:
            problems.append(str(err))
            continue
        if path != root / f"{record['key']}.json":
            problems.append(f"{path} holds run {record['key']} but is not at its key's path")
            continue
        rows.append(flatten(record, root)[0])
    df = pd.DataFrame(rows)
    if len(df):
        df = df.sort_values("key", kind="stable").reset_index(drop=True)
    return df, problems


def collect_timings(root: str | Path) -> pd.DataFrame:
    root = Path(root)
    rows = []
    for path in result_files(root):
        try:
            rows.append(flatten(read_result(path), root)[1])
        except InvalidResult:
            continue
    df = pd.DataFrame(rows)
    return df.sort_values("key", kind="stable").reset_index(drop=True) if len(df) else df


def _write_if_changed(path: Path, text: str) -> bool:
    """Write only when the content differs, so make sees an unchanged table as unchanged."""
    if path.is_file() and path.read_text() == text:
        return False
    atomic_write_text(path, text)
    return True


def write_tables(root: str | Path, out: str | Path | None = None, keys: set[str] | None = None) -> dict:
    """Write ``results.csv`` (+ ``results.parquet``) and ``timings.csv`` of the store ``root`` into ``out``;
    with ``keys`` (a profile's run keys), only those runs."""
    root, out = Path(root), Path(out or root)
    df, problems = collect_with_problems(root)
    left_out = 0
    if keys is not None and len(df):
        kept = df["key"].isin(keys)
        left_out = int((~kept).sum())
        df = df[kept].reset_index(drop=True)
    changed = _write_if_changed(out / "results.csv", df.to_csv(index=False, lineterminator="\n"))
    timings = collect_timings(root)
    if keys is not None and len(timings):
        timings = timings[timings["key"].isin(keys)].reset_index(drop=True)
    _write_if_changed(out / "timings.csv", timings.to_csv(index=False, lineterminator="\n"))
    parquet = None
    if changed or not (out / "results.parquet").is_file():
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            pass
        else:
            parquet = out / "results.parquet"
            with atomic_path(parquet) as tmp:
                df.to_parquet(tmp, index=False)
    return {"runs": len(df), "problems": problems, "left_out": left_out, "csv": out / "results.csv", "changed": changed,
            "parquet": parquet, "wall_seconds": float(timings["wall_seconds"].sum()) if len(timings) else 0.0}
