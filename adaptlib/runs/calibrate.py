"""Calibrate a step-capped profile's learning rates on the few-shot validation set only, per shot count.

The papers' learning rates were tuned for CLIP ViT-B/16 over hundreds to thousands of steps; the embedded
profile trains a tiny backbone for a capped number of steps. For each method, hybrid and shot count this trains
the profile's own entry (its step cap, schedule and crop: ``Profile.method_spec``) with the learning rate times
each factor of a symmetric log grid, on every task of the profile with a seed the study never uses (0), and
scores each run on the protocol's few-shot validation set of that sample (min(K, 4) images per class; never test,
never the full validation split). The factor with the best mean validation accuracy over tasks wins; ties go to
the factor nearest the grid's centre (the profile's current rate), then the smaller. When the winner sits at an
edge of the grid, the grid is extended one step past that edge and the new point is run, until the winner is
interior (or ``max_extensions`` is reached, which the report flags and the command's exit status shows). A
hybrid's parts keep the ratio of their methods' calibrated rates at that shot count and one joint factor is
searched, so a hybrid is calibrated at its own cap like every method.

    python -m adaptlib.runs.calibrate profiles/embedded-calibration-input.json profiles/embedded-calibration.json \\
        [--only coop,prompt+ln] [--jobs 2]

The input names the profile and, per entry (a method label of the profile), the shot counts to calibrate and,
for a hybrid, which method each part's rate comes from. The output records every grid, every run and the choice;
``profile_lines`` prints the values as they go into the profile (``train_by_shots``).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..backbones.load import BackboneUnavailableError, _resolve_embedded
from ..utils.atomic import atomic_write_json
from ..utils.paths import REPO_ROOT
from .profile import MethodEntry, Profile, load_profile
from .run import RunContext, execute
from .spec import RunSpec

STEP = math.sqrt(10)  # grid spacing: half a decade
HALF_WIDTH = 1  # points on each side of the centre (the grid grows past an edge as needed)
SEED = 0  # never a study seed

PROTOCOL = ("every method, hybrid and shot count of the profile at its own step cap, schedule and crop, seed 0 "
            "(never a study seed), every task of the profile, scored on the protocol's few-shot validation set "
            "(min(K, 4) per class) of the same sample, never test; the factor multiplies the entry's current "
            "learning rate(s) (a hybrid: its parts' methods' calibrated rates, one joint factor) on a symmetric log "
            "grid with half-decade steps, extended past an edge until the best factor is interior; the best mean "
            "validation accuracy over tasks wins, ties to the factor nearest the centre, then the smaller")


def grid(half_width: int = HALF_WIDTH) -> list[float]:
    """Factors STEP^k for k in -half_width..half_width (rounded to 6 significant digits)."""
    return [_round(STEP ** k) for k in range(-half_width, half_width + 1)]


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def find_entry(profile: Profile, label: str) -> MethodEntry:
    """The profile's entry of ``label``: a top-level method or one defined inline in a group."""
    if label in profile.methods:
        return profile.methods[label]
    for g in profile.grids:
        for entry in g.methods:
            if entry.label == label:
                return entry
    raise KeyError(f"{profile.path}: no method labelled {label!r} (it has {sorted(profile.methods)} and the "
                   f"groups' own entries)")


def current_rates(profile: Profile, label: str, shots: int) -> dict[str, float]:
    """The entry's learning rate(s) at ``shots`` as the profile has them now: {'lr': x} or its ``part_lr``."""
    spec = profile.method_spec(label, profile.datasets[0], shots, SEED, entry=find_entry(profile, label))
    train = spec.train_overrides()
    if spec.method == "hybrid":
        return dict(train.get("part_lr", {}))
    from .spec import recipe_for

    return {"lr": float(train.get("lr", recipe_for(spec).train.lr))}


def calibration_spec(profile: Profile, label: str, task: str, shots: int, rates: dict[str, float]) -> RunSpec:
    """The profile's run of ``label`` on ``task`` at seed 0 with the learning rate(s) ``rates``."""
    spec = profile.method_spec(label, task, shots, SEED, entry=find_entry(profile, label))
    train = spec.train_overrides()
    if spec.method == "hybrid":
        train["part_lr"] = dict(rates)
    else:
        train["lr"] = rates["lr"]
    return RunSpec.from_dict({**spec.to_dict(), "train": train})


def _one(args) -> dict:
    label, spec, factor = args
    t0 = time.perf_counter()
    result = execute(spec, RunContext(threads=1, evaluate_on="val"))
    return {"entry": label, "task": spec.dataset, "shots": spec.shots, "factor": factor,
            "val_accuracy": result["metrics"]["val_accuracy"], "steps": result["train"].get("steps", 0),
            "seconds": round(time.perf_counter() - t0, 2)}


def best_factor(rows: list[dict]) -> tuple[float, dict[float, float]]:
    """(winning factor, mean validation accuracy per factor): ties (to 1e-6) to the factor nearest 1, then the
    smaller."""
    by_factor: dict[float, list[float]] = {}
    for row in rows:
        by_factor.setdefault(row["factor"], []).append(row["val_accuracy"])
    means = {f: float(np.mean(v)) for f, v in by_factor.items()}
    best = max(sorted(means), key=lambda f: (round(means[f], 6), -abs(math.log(f)), -f))
    return best, means


def base_rates(profile: Profile, label: str, info: dict, shots: int, chosen: dict) -> dict[str, float]:
    """What a factor multiplies: a method's current rate; a hybrid's parts' methods' calibrated rates."""
    if "part_methods" not in info:
        return current_rates(profile, label, shots)
    rates = {}
    for part, method in info["part_methods"].items():
        key = f"{method}@{shots}"
        if key not in chosen:
            raise ValueError(f"hybrid {label!r} needs method {method!r} calibrated at {shots} shots first")
        rates[part] = chosen[key]["lr"]
    return rates


def calibrate(profile: Profile, entries: dict[str, dict], tasks: list[str], jobs: int = 2, max_extensions: int = 4,
              chosen: dict | None = None) -> dict:
    """Calibrate every entry ({label: {shots: [...], part_methods: {part: method}} for a hybrid}); single methods
    first, then hybrids (they start from their parts' calibrated rates). ``jobs`` worker processes (0: run in
    this process)."""
    chosen = dict(chosen or {})
    rows: list[dict] = []
    done: set[tuple[str, int]] = set()  # entries whose choice is made
    with (mp.get_context("spawn").Pool(jobs) if jobs > 0 else nullcontext()) as pool:
        imap = pool.imap if pool is not None else map  # jobs 0: in this process
        for hybrids in (False, True):
            todo = {n: e for n, e in entries.items() if ("part_methods" in e) == hybrids}
            bases = {(n, k): base_rates(profile, n, e, k, chosen) for n, e in todo.items() for k in e["shots"]}
            factors = {key: grid() for key in bases}
            pending = dict(factors)
            extensions = {key: 0 for key in factors}
            while pending:
                work = [(n, calibration_spec(profile, n, t, k, {p: r * f for p, r in bases[(n, k)].items()}), f)
                        for (n, k), fs in pending.items() for f in fs for t in tasks]
                rows += list(tqdm(imap(_one, work), total=len(work), mininterval=5,
                                  desc=f"calibrate {'hybrids' if hybrids else 'methods'}"))
                pending = {}
                for (n, k), fs in factors.items():
                    if (n, k) in done:
                        continue
                    best, means = best_factor([r for r in rows if r["entry"] == n and r["shots"] == k])
                    tried = sorted(means)
                    edge = best in (tried[0], tried[-1])
                    if edge and extensions[(n, k)] < max_extensions:
                        beyond = _round(best * (STEP if best == tried[-1] else 1 / STEP))
                        pending[(n, k)] = [beyond]
                        factors[(n, k)] = tried + [beyond]
                        extensions[(n, k)] += 1
                        continue
                    rates = {p: _round(r * best) for p, r in bases[(n, k)].items()}
                    chosen[f"{n}@{k}"] = {
                        "entry": n, "shots": k, "factor": best, "at_grid_edge": edge, "centre": bases[(n, k)],
                        "grid": [f"{f:g}" for f in tried], "extensions": extensions[(n, k)],
                        "mean_val_accuracy": {f"{f:g}": round(means[f], 4) for f in tried},
                        **({"lr": rates["lr"]} if "lr" in rates else {"part_lr": rates})}
                    done.add((n, k))
    return {"chosen": dict(sorted(chosen.items())), "rows": rows, "tasks": tasks, "seed": SEED,
            "protocol": PROTOCOL, "inputs": entries}


def profile_lines(report: dict) -> list[str]:
    """The calibrated values as they go into the profile: ``train_by_shots`` per entry."""
    by_entry: dict[str, dict] = {}
    for c in report["chosen"].values():
        by_entry.setdefault(c["entry"], {})[c["shots"]] = c
    out = []
    for name, per_shot in sorted(by_entry.items()):
        values = []
        for k, c in sorted(per_shot.items()):
            if "lr" in c:
                values.append(f"{k}: {{lr: {c['lr']:g}}}")
            else:
                rates = ", ".join(f"{p}: {r:g}" for p, r in c["part_lr"].items())
                values.append(f"{k}: {{part_lr: {{{rates}}}}}")
        out.append(f"{name}: train_by_shots: {{{', '.join(values)}}}")
    return out


def check_profile_matches(profile: Profile, report: dict) -> list[str]:
    """Where the profile's learning rates differ from the calibration's choices (empty: they match)."""
    problems = []
    for key, c in report["chosen"].items():
        have = current_rates(profile, c["entry"], c["shots"])
        want = {"lr": c["lr"]} if "lr" in c else c["part_lr"]
        if any(not math.isclose(have.get(p, float("nan")), r, rel_tol=1e-4) for p, r in want.items()):
            problems.append(f"{key}: the profile has {have}, the calibration chose {want}")
    return problems


def backbone_identity(profile: Profile) -> dict | None:
    """The weights a calibration of ``profile`` trains: its first backbone's name, tag and, for the project's own
    embedded checkpoints, the file's sha256 (None for weights that are not a local file of the project's)."""
    from ..backbones.pretrain import weights_sha256

    bb = profile.backbones[0]
    if not str(bb.pretrained or "").startswith("embedded"):
        return None
    path = _resolve_embedded(bb.name, bb.pretrained)
    return {"name": bb.name, "pretrained": bb.pretrained, "sha256": weights_sha256(path)}


def calibration_file(profile: Profile) -> Path:
    """Where a profile's calibration lives: beside it, ``<profile>-calibration.json``."""
    return Path(profile.path).with_name(f"{Path(profile.path).stem}-calibration.json")


def stale_calibration(profile: Profile) -> str | None:
    """A warning when the profile's learning rates were calibrated on other weights than the ones at hand: its rates
    were then chosen for another backbone, and "chosen on the few-shot validation set" no longer holds."""
    path = calibration_file(profile)
    if not path.is_file():
        return None
    recorded = json.loads(path.read_text()).get("backbone")
    try:
        now = backbone_identity(profile)
    except (BackboneUnavailableError, OSError):  # the sweep's own checks report a missing checkpoint
        return None
    if not recorded or not now or recorded["sha256"] == now["sha256"]:
        return None
    return (f"warning: {path} calibrated the learning rates on weights with sha256 {recorded['sha256'][:12]}..., but "
            f"the backbone at hand is {now['sha256'][:12]}...: the rates were chosen for another backbone. Restore the "
            f"released checkpoint (git checkout data/backbones) or recalibrate (make calibrate) before a study run.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adaptlib.runs.calibrate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="JSON: {profile: PATH, entries: {label: {shots: [...], part_methods: ...}}}")
    parser.add_argument("output", help="calibration JSON (entries calibrated now replace theirs; others are kept)")
    parser.add_argument("--only", default="", help="comma-separated subset of the input's entries")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    spec = json.loads(Path(args.input).read_text())
    entries = spec["entries"]
    profile = load_profile(REPO_ROOT / spec["profile"])
    wanted = [m for m in args.only.split(",") if m] or list(entries)
    unknown = sorted(set(wanted) - set(entries))
    if unknown:
        raise SystemExit(f"error: entries {unknown} are not in {args.input} (it has {sorted(entries)})")
    out = Path(args.output)
    old = json.loads(out.read_text()) if out.is_file() else {}
    keep = {k: v for k, v in old.get("chosen", {}).items() if v["entry"] not in wanted}
    backbone = backbone_identity(profile)
    if keep and old.get("backbone") != backbone:
        raise SystemExit(f"error: {out} keeps {len(keep)} choices calibrated on other weights ({old.get('backbone')}) "
                         f"than the backbone at hand ({backbone}): recalibrate every entry (drop --only)")
    report = calibrate(profile, {m: entries[m] for m in wanted}, list(profile.datasets), jobs=args.jobs, chosen=keep)
    report["rows"] = [r for r in old.get("rows", []) if r["entry"] not in wanted] + report["rows"]
    report["inputs"] = {**old.get("inputs", {}), **report["inputs"]}
    report["profile"] = spec["profile"]
    report["backbone"] = backbone
    atomic_write_json(out, report)
    for line in profile_lines(report):
        print(line)
    edges = [k for k, c in report["chosen"].items() if c["at_grid_edge"]]
    print(f"{len(report['chosen'])} choices, {len(edges)} at a grid edge{': ' + ', '.join(edges) if edges else ''}")
    return 1 if edges else 0


if __name__ == "__main__":
    raise SystemExit(main())
