"""`make bench`: speed and memory of every method on the embedded backbone, and the feature cache's speed-up.

For every method of the embedded profile (its step caps and learning rates) on one task at 16 shots:
training seconds, training images per second, peak memory (CUDA: max allocated; CPU: the peak resident set of
a fresh process that runs only that method). For each method whose image encoder is frozen, the cached path
(train on cached features of augmented views) and the uncached path (augment and encode every step) run side
by side in the same process, alternating, and both accuracies are reported. Medians over ``--repeats``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def _measure(args: tuple) -> dict:
    """Run in a fresh process: one method, ``repeats`` times per path; returns timings and accuracies."""
    method, spec_kwargs, repeats, threads, device = args
    import torch

    from .runs.run import RunContext, execute
    from .runs.spec import RunSpec
    from .training.features import FeatureCache

    torch.set_num_threads(threads)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = {"cached": [], "uncached": []}
    frozen_image = None
    cold_cache = None
    for r in range(repeats):
        for path in ("cached", "uncached"):
            if path == "uncached" and frozen_image is False:
                continue
            spec = RunSpec(**{**spec_kwargs, "feature_cache": path == "cached"})
            if path == "uncached":
                cache = FeatureCache(None)
            elif r == 0:  # the first cached run builds the cache (timed apart as the cold run)
                cache = cold_cache = FeatureCache(Path(tempfile.mkdtemp(prefix=f"adaptlib-bench-{method}-")))
            else:
                cache = cold_cache
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            result = execute(spec, RunContext(threads=threads, device=device, cache=cache))
            wall = time.perf_counter() - t0
            if frozen_image is None:
                frozen_image = bool(result["data"]["feature_cache"])
            train = result["train"]
            rows[path].append({
                "wall_seconds": wall, "train_seconds": train.get("seconds", 0.0),
                "examples": train.get("examples_seen", 0), "accuracy": result["metrics"]["accuracy"],
                "cold": path == "cached" and r == 0,
                "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
            })
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024
    if cold_cache is not None and cold_cache.root is not None:
        shutil.rmtree(cold_cache.root, ignore_errors=True)
    return {"method": method, "frozen_image_encoder": bool(frozen_image), "rows": rows, "peak_rss_mb": peak_mb,
            "rss_before_mb": rss_before / 1024}


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(raw: list[dict]) -> pd.DataFrame:
    out = []
    for item in raw:
        cached = item["rows"]["cached"]
        warm = [r for r in cached if not r["cold"]] or cached
        train_s = _median([r["train_seconds"] for r in warm])
        examples = _median([r["examples"] for r in warm])
        row = {
            "method": item["method"],
            "train_seconds": train_s,
            "run_seconds": _median([r["wall_seconds"] for r in warm]),
            "images_per_second": (examples / train_s) if train_s else None,
            "peak_memory_mb": _median([r["cuda_peak_mb"] for r in warm]) or item["peak_rss_mb"],
            "accuracy": _median([r["accuracy"] for r in warm]),
            "frozen_image_encoder": item["frozen_image_encoder"],
        }
        unc = item["rows"]["uncached"]
        if item["frozen_image_encoder"] and unc:
            unc_train = _median([r["train_seconds"] for r in unc])
            cold = [r for r in cached if r["cold"]]
            row.update({
                "uncached_train_seconds": unc_train,
                "cached_speedup": (unc_train / train_s) if train_s else None,
                "cold_cached_run_seconds": cold[0]["wall_seconds"] if cold else None,
                "uncached_run_seconds": _median([r["wall_seconds"] for r in unc]),
                "uncached_accuracy": _median([r["accuracy"] for r in unc]),
            })
            row["accuracy_difference"] = 100 * (row["accuracy"] - row["uncached_accuracy"])
        out.append(row)
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="adaptlib.bench", description=__doc__)
    parser.add_argument("--profile", default="profiles/embedded.yaml")
    parser.add_argument("--dataset", default="texture")
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--methods", default="", help="comma-separated subset")
    parser.add_argument("--out", default="results/bench")
    args = parser.parse_args(argv)

    import torch

    from .reporting import save_table
    from .runs.profile import load_profile

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    profile = load_profile(Path(args.profile))
    wanted = [m for m in args.methods.split(",") if m] or list(profile.methods)
    jobs = []
    for label in wanted:
        spec = profile.method_spec(label, dataset=args.dataset, shots=args.shots, seed=1)
        kwargs = {k: v for k, v in spec.to_dict().items() if k not in ("feature_cache",)}
        kwargs["hybrid_parts"] = tuple((n, o) for n, o in kwargs["hybrid_parts"])
        jobs.append((label, kwargs, args.repeats, args.threads, device))
    raw = []
    ctx = mp.get_context("spawn")
    for job in jobs:  # one fresh process per method: its peak memory is its own
        with ctx.Pool(1) as pool:
            raw.append(pool.apply(_measure, (job,)))
        print(f"  measured {job[0]}", file=sys.stderr, flush=True)
    table = summarise(raw)
    out = Path(args.out)
    save_table(table.set_index("method"), out, "bench")
    (out / "bench_raw.json").write_text(json.dumps(raw, indent=1, default=str))
    pd.set_option("display.width", 200)
    print(f"bench on {args.dataset}, {args.shots} shots, {args.threads} threads, {device}, median of "
          f"{args.repeats} repeats")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
