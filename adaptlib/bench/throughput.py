"""``python -m adaptlib.bench throughput --sample N``: the sweep's throughput, one by one against together.

A sample of the profile's runs (whole cells: every seed of one entry, setting, task and shot count, cells drawn
with a fixed seed until N runs) goes twice through the sweep worker's own loop (``worker.work``: locks, result
files, journal) in this process, on one thread as each of ``make sweep``'s workers runs: one by one (``adaptlib
sweep``) and with the runs that can share a training program trained together (``adaptlib sweep --together``),
each into its own temporary store. The passes alternate their order over the repeats; a pass's throughput is N
runs over its wall time, the median over repeats. The sweep efficiency is the sample's useful FLOPs (training and
evaluation as ``runs.estimate`` counts them with torch's FLOP counter, per run) over the new pass's wall time times
the fp32 matmul peak on one thread, measured in the same process. Run it after ``make sweep`` (the frozen-feature
cache is then warm for both passes).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path


def sample_cells(specs: list, n: int, seed: int = 0) -> list:
    """Whole cells (every seed of one run configuration) drawn at random until at least ``n`` runs, in the
    profile's order."""
    cells: dict[str, list] = {}
    for spec in specs:
        d = spec.to_dict()
        d.pop("seed")
        cells.setdefault(json.dumps(d, sort_keys=True, default=str), []).append(spec)
    keys = sorted(cells)
    random.Random(seed).shuffle(keys)
    chosen, count = set(), 0
    for key in keys:
        if count >= n:
            break
        chosen.add(key)
        count += len(cells[key])
    order = {id(s): i for i, s in enumerate(specs)}
    return sorted((s for k in chosen for s in cells[k]), key=lambda s: order[id(s)])


def _pass(specs: list, together: bool) -> tuple[float, dict[str, float]]:
    """(wall seconds, seconds per run key) of one pass through the worker loop into a fresh store."""
    from ..runs.worker import WorkerOptions, work

    root = Path(tempfile.mkdtemp(prefix="adaptlib-throughput-"))
    try:
        opts = WorkerOptions(results=str(root), sweep="throughput", threads=1, together=together)
        start = time.perf_counter()
        outcomes = work([s.to_dict() for s in specs], opts)
        wall = time.perf_counter() - start
    finally:
        shutil.rmtree(root, ignore_errors=True)
    failed = [o for o in outcomes if o.status != "ran"]
    if failed:
        raise RuntimeError(f"{len(failed)} runs of the sample did not run: {failed[0].key}: {failed[0].error}")
    return wall, {o.key: o.seconds for o in outcomes}


def useful_flops(specs: list) -> float:
    """FLOPs of the runs' training and evaluation (``runs.estimate``; the shared frozen features not counted)."""
    from ..runs.estimate import estimate_profile

    class Sample:  # what estimate_profile reads of a profile
        name = "sample"

        @staticmethod
        def expand() -> list:
            return specs

    return sum(t.train + t.eval for t in estimate_profile(Sample()).methods.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adaptlib.bench throughput", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="profiles/embedded.yaml")
    parser.add_argument("--sample", type=int, default=60, help="runs in the sample (whole cells, so a few more)")
    parser.add_argument("--repeats", type=int, default=1, help="passes of each path (their order alternates)")
    parser.add_argument("--seed", type=int, default=0, help="which cells are drawn")
    parser.add_argument("--out", default="results/bench")
    args = parser.parse_args(argv)
    if args.sample < 1 or args.repeats < 1:
        parser.error("--sample and --repeats must be at least 1")

    import torch

    from ..runs.profile import load_profile
    from ..runs.worker import programs, together_key
    from ..utils.atomic import atomic_write_text
    from .peak import matmul_peak_gflops

    torch.set_num_threads(1)
    profile = load_profile(Path(args.profile))
    specs = sample_cells(profile.expand(), args.sample, args.seed)
    peak = matmul_peak_gflops(threads=1)
    walls: dict[str, list[float]] = {"one_by_one": [], "together": []}
    per_run: dict[str, dict[str, float]] = {}
    for r in range(args.repeats):
        for path in (("one_by_one", "together") if r % 2 == 0 else ("together", "one_by_one")):
            wall, seconds = _pass(specs, together=path == "together")
            walls[path].append(wall)
            per_run[path] = seconds
            print(f"  {path}: {len(specs)} runs in {wall:.1f} s", file=sys.stderr, flush=True)
    flops = useful_flops(specs)
    one, new = (statistics.median(walls[p]) for p in ("one_by_one", "together"))
    frozen = [s.key() for s in specs if together_key(s) is not None]
    frozen_one = sum(per_run["one_by_one"][k] for k in frozen)
    frozen_new = sum(per_run["together"][k] for k in frozen)
    report = {
        "profile": profile.name, "runs": len(specs), "repeats": args.repeats, "threads": 1,
        "one_by_one_runs_per_s": len(specs) / one, "together_runs_per_s": len(specs) / new, "ratio": one / new,
        "frozen_feature_runs": len(frozen),
        "frozen_feature_ratio": frozen_one / frozen_new if frozen_new else None,
        "programs": sum(1 for unit in programs(specs) if len(unit) > 1),
        "useful_gflop": flops / 1e9, "matmul_peak_gflops": peak,
        "efficiency_one_by_one": flops / 1e9 / one / peak, "efficiency": flops / 1e9 / new / peak,
        "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "wall_seconds": walls,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "throughput.json", json.dumps(report, indent=1))
    print(f"throughput: one-by-one {report['one_by_one_runs_per_s']:.2f} runs/s, new "
          f"{report['together_runs_per_s']:.2f} runs/s, ratio {report['ratio']:.1f}x, sweep efficiency "
          f"{100 * report['efficiency']:.0f}% of peak")
    ratio = report["frozen_feature_ratio"]
    print(f"  frozen-feature runs: {len(frozen)} of {len(specs)}, ratio {ratio:.1f}x" if ratio else
          "  no frozen-feature runs in the sample")
    print(f"  one-by-one efficiency {100 * report['efficiency_one_by_one']:.0f}% of the fp32 matmul peak "
          f"({peak:.1f} GFLOP/s, one thread); worker peak memory {report['worker_peak_rss_mb']:.0f} MB")
    return 0
