"""Calibrate learning rates for the embedded backbone on validation data only.

The papers' learning rates were tuned for CLIP ViT-B/16 over hundreds to thousands of steps; the embedded
profile trains a tiny backbone for a capped number of steps. For each method this tries the paper's learning
rate times each factor, on every embedded task at 16 shots with a seed the study never uses, scores each on the
task's full validation split (never test), and keeps the factor with the best mean validation accuracy (ties go
to the smaller factor). The result is written as JSON next to the profile and copied into it by hand.

    python -m adaptlib.runs.calibrate profiles/embedded-calibration-input.json profiles/embedded-calibration.json \\
        [--methods layernorm,bitfit]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..data.embedded import TASKS
from ..methods import get_recipe
from ..utils.atomic import atomic_write_json
from .run import RunContext, execute
from .spec import RunSpec

FACTORS = {"sgd": (1.0, 5.0, 25.0, 100.0), "adamw": (1.0, 5.0, 25.0, 100.0), "adadelta": (1.0, 3.0, 10.0, 30.0)}


def _one(args) -> dict:
    method, task, factor, base_train, shots, seed, crop = args
    recipe = get_recipe(method)
    train = {**base_train, "lr": recipe.train.lr * factor}
    spec = RunSpec(method, task, shots, seed, train=train, crop_scale=crop)
    t0 = time.perf_counter()
    result = execute(spec, RunContext(threads=1, evaluate_on="val"))
    return {"method": method, "task": task, "factor": factor, "lr": train["lr"],
            "val_accuracy": result["metrics"]["val_accuracy"], "seconds": round(time.perf_counter() - t0, 2)}


PROTOCOL = ("each method of the embedded profile at its step cap, 16 shots, seed 0 (never a study seed), every "
            "embedded task, scored on the task's full validation split; the factor multiplies the paper's learning "
            "rate; best mean validation accuracy wins, ties to the smaller factor")


def calibrate(methods: dict[str, dict], tasks: list[str], shots: int = 16, seed: int = 0, jobs: int = 2,
              crop_scale=(1.0, 1.0), out: Path | None = None) -> dict:
    """``methods`` maps a method name to its base training overrides (the step cap; optionally ``factors``, the
    multiples of the paper's learning rate to try). With ``out`` an existing file, the chosen rates of these
    methods replace theirs in it and the others are kept."""
    jobs_list = []
    for method, base_train in methods.items():
        base_train = dict(base_train)
        factors = base_train.pop("factors", None) or FACTORS[get_recipe(method).train.optimizer]
        for factor in factors:
            for task in tasks:
                jobs_list.append((method, task, float(factor), base_train, shots, seed, tuple(crop_scale)))
    with mp.get_context("spawn").Pool(jobs) as pool:
        rows = list(tqdm(pool.imap(_one, jobs_list), total=len(jobs_list), desc="calibrate"))
    chosen = {}
    for method in methods:
        by_factor: dict[float, list[float]] = {}
        for row in rows:
            if row["method"] == method:
                by_factor.setdefault(row["factor"], []).append(row["val_accuracy"])
        means = {f: round(float(np.mean(v)), 4) for f, v in by_factor.items()}
        best = max(sorted(means), key=lambda f: (means[f], -f))
        chosen[method] = {"factor": best, "lr": get_recipe(method).train.lr * best,
                          "at_grid_edge": best in (min(means), max(means)),
                          "mean_val_accuracy": {f"{f:g}": means[f] for f in sorted(means)}}
    report = {"chosen": chosen, "rows": rows, "inputs": methods}
    if out is not None and Path(out).is_file():  # keep the other methods' calibration
        old = json.loads(Path(out).read_text())
        report = {**old, "chosen": {**old.get("chosen", {}), **chosen},
                  "rows": [r for r in old.get("rows", []) if r["method"] not in methods] + rows,
                  "inputs": {**old.get("inputs", {}), **methods}}
    report.update(shots=shots, seed=seed, tasks=tasks, crop_scale=list(crop_scale), protocol=PROTOCOL)
    if out is not None:
        atomic_write_json(out, report)
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m adaptlib.runs.calibrate", description=__doc__)
    parser.add_argument("input", help="JSON: method -> training overrides (the step cap), optionally 'factors'")
    parser.add_argument("output", help="calibration JSON (updated in place for the methods calibrated)")
    parser.add_argument("--methods", default="", help="comma-separated subset of the input's methods")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    caps = json.loads(Path(args.input).read_text())
    wanted = [m for m in args.methods.split(",") if m] or list(caps)
    unknown = sorted(set(wanted) - set(caps))
    if unknown:
        raise SystemExit(f"error: methods {unknown} are not in {args.input} (it has {sorted(caps)})")
    result = calibrate({m: caps[m] for m in wanted}, list(TASKS), jobs=args.jobs, out=Path(args.output))
    for method in wanted:
        c = result["chosen"][method]
        print(f"{method:14s} lr {c['lr']:.4g} (x{c['factor']:g}{', at the grid edge' if c['at_grid_edge'] else ''}) "
              + " ".join(f"x{f}={a:.3f}" for f, a in c["mean_val_accuracy"].items()))
