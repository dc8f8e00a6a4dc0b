"""`make bench`: speed and memory of every method on the embedded backbone, and the feature cache's speed-up.

For every method of the embedded profile (its step caps and learning rates) on one task at 16 shots:
training seconds, training images per second, peak memory (CUDA: max allocated; CPU: the peak resident set of
a fresh process that runs only that method). For each method whose image encoder is frozen, the cached path
(train on cached features of augmented views) and the uncached path (augment and encode every step) run side
by side in the same process, alternating. Repeat r uses seed r + 1 on both paths: times are medians over the
repeats (the first cached run, which fills the feature cache, is timed apart as the cold run) and accuracies
are means over the seeds. Since one task's accuracy difference is mostly seed noise, the two paths are also
compared on every task of the profile x every seed (``all_tasks_*``: mean difference in points with a 95%
bootstrap interval over tasks).
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
    method, spec_kwargs, repeats, threads, device, data_root, accuracy_tasks = args
    import torch

    from ..runs.run import RunContext, execute
    from ..runs.spec import RunSpec
    from ..training.features import FeatureCache
    from .peak import counted_flops

    torch.set_num_threads(threads)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = {"cached": [], "uncached": []}
    frozen_image = None
    cache = FeatureCache(Path(tempfile.mkdtemp(prefix=f"adaptlib-bench-{method}-")))

    def run(path: str, phases: dict | None = None, **overrides) -> dict:
        """One run of the method on the cached path (the shared feature cache) or the uncached one (no cache)."""
        spec = RunSpec(**{**spec_kwargs, **overrides, "feature_cache": path == "cached"})
        return execute(spec, RunContext(threads=threads, device=device, data_root=data_root,
                                        cache=cache if path == "cached" else FeatureCache(None),
                                        phase_seconds=phases))

    for r in range(repeats):
        # per seed: the cached path cold (it fills the feature cache) and warm, then the uncached path
        for path, cold in (("cached", True), ("cached", False), ("uncached", False)):
            if frozen_image is False and (path == "uncached" or cold or r == 0):
                continue  # the encoder trains: no cached path, and seed 1 already ran
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            phases: dict = {}
            t0 = time.perf_counter()
            result = run(path, phases, seed=r + 1)
            wall = time.perf_counter() - t0
            if frozen_image is None:
                frozen_image = bool(result["data"]["feature_cache"])
            train = result["train"]
            rows[path].append({
                "wall_seconds": wall, "train_seconds": train.get("seconds", 0.0),
                "examples": train.get("examples_seen", 0), "accuracy": result["metrics"]["accuracy"],
                "cold": cold and bool(frozen_image),
                "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
                # training and evaluation (scoring, tuning on val): the work; the rest is overhead
                "work_seconds": train.get("seconds", 0.0) + phases.get("tune", 0.0) + phases.get("evaluate", 0.0),
            })
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024
    # the useful FLOPs of one warm run (seed 1, the cache filled): counted apart, since the counter slows it down
    _, flops = counted_flops(lambda: run("cached", seed=1))
    # accuracy of both paths on every task and seed (untimed): one task's difference is mostly seed noise
    checks = []
    trains = frozen_image and any(r["train_seconds"] > 0 for r in rows["cached"])
    for task in accuracy_tasks if trains else []:
        for r in range(repeats):
            accs = {path: run(path, dataset=task, seed=r + 1)["metrics"]["accuracy"]
                    for path in ("cached", "uncached")}
            checks.append({"task": task, "seed": r + 1, **accs})
    shutil.rmtree(cache.root, ignore_errors=True)
    return {"method": method, "frozen_image_encoder": bool(frozen_image), "rows": rows, "peak_rss_mb": peak_mb,
            "flops_per_run": flops,
            "rss_before_mb": rss_before / 1024, "accuracy_checks": checks}


def _text_memory(args: tuple) -> dict:
    """Fresh process: peak memory of one CoOp training step (forward and backward, from cached image features,
    batch 32) over ``classes`` class prompts on a random-weight ``backbone``, text encoding chunked or not."""
    backbone_name, classes, chunk, device, threads = args
    import torch

    from ..backbones import load_backbone
    from ..methods import build_model, get_recipe
    from ..methods.step import Batch
    from ..training.loop import autocast_for

    torch.set_num_threads(threads)
    backbone = load_backbone(backbone_name, None, quick_gelu=True)
    model = build_model(backbone, [f"class number {i}" for i in range(classes)], ["a photo of a {}."],
                        get_recipe("coop")).to(device)
    model.text_chunk = chunk
    g = torch.Generator().manual_seed(0)
    batch = Batch(labels=torch.randint(0, classes, (32,), generator=g),
                  features=torch.randn(32, backbone.embed_dim, generator=g)).to(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    model.train()
    with autocast_for(torch.device(device)):
        loss, _ = model.loss(model(batch))
    loss.backward()
    seconds = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before)
    return {"backbone": backbone_name, "classes": classes, "text_chunk": chunk, "device": device,
            "step_seconds": seconds, "peak_mb": peak, "measure": "cuda max allocated" if device == "cuda"
            else "CPU peak resident set above the model's"}


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def summarise(raw: list[dict], peak_gflops: float | None = None) -> pd.DataFrame:
    """One row per method: medians of the warm cached runs' times, means of accuracies; with the FLOPs of a run,
    its achieved GFLOP/s and share of ``peak_gflops`` (the matmul peak at the same threads); the share of its
    wall time outside training and evaluation (building the model, loading data and features, writing)."""
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
            "accuracy": _mean([r["accuracy"] for r in warm]),
            "frozen_image_encoder": item["frozen_image_encoder"],
        }
        if item.get("flops_per_run") is not None and row["run_seconds"]:
            row["gflop_per_run"] = item["flops_per_run"] / 1e9
            row["gflops"] = row["gflop_per_run"] / row["run_seconds"]
            row["share_of_peak"] = row["gflops"] / peak_gflops if peak_gflops else None
        work = [r for r in warm if r.get("work_seconds") is not None and r["wall_seconds"] > 0]
        if work:
            row["overhead_share"] = _median([1 - r["work_seconds"] / r["wall_seconds"] for r in work])
        unc = item["rows"]["uncached"]
        if item["frozen_image_encoder"] and unc:
            unc_train = _median([r["train_seconds"] for r in unc])
            cold = [r for r in cached if r["cold"]]
            row.update({
                "uncached_train_seconds": unc_train,
                "cached_speedup": (unc_train / train_s) if train_s else None,
                "cold_cached_run_seconds": _median([r["wall_seconds"] for r in cold]),
                "uncached_run_seconds": _median([r["wall_seconds"] for r in unc]),
                "uncached_accuracy": _mean([r["accuracy"] for r in unc]),
            })
            row["run_speedup_cold"] = row["uncached_run_seconds"] / row["cold_cached_run_seconds"]
            row["accuracy_difference"] = 100 * (row["accuracy"] - row["uncached_accuracy"])
        checks = item.get("accuracy_checks") or []
        if len(checks) >= 2:
            from ..analysis import paired_difference

            diff = paired_difference([100 * c["cached"] for c in checks], [100 * c["uncached"] for c in checks],
                                     groups=[c["task"] for c in checks] if len({c["task"] for c in checks}) > 1
                                     else None)
            row.update({"all_tasks_accuracy_difference": diff.mean, "all_tasks_ci_low": diff.ci_low,
                        "all_tasks_ci_high": diff.ci_high, "all_tasks_runs": len(checks)})
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
    parser.add_argument("--methods", default="", help="comma-separated subset ('none': only --text-memory)")
    parser.add_argument("--data-root", default=None, help="benchmark folder (with --profile profiles/paper.yaml)")
    parser.add_argument("--text-memory", default="",
                        help="BACKBONE:CLASSES, e.g. ViT-B-16:1000: also measure the memory of one CoOp step over "
                             "that many classes, with chunked and with unchunked text encoding (minutes on a CPU)")
    parser.add_argument("--accuracy-tasks", default="all",
                        help="tasks on which both paths' accuracy is compared per seed: 'all' (the profile's "
                             "datasets), a comma-separated list, or 'none'")
    parser.add_argument("--out", default="results/bench")
    args = parser.parse_args(argv)

    import torch

    from ..reporting import save_table
    from ..utils.atomic import atomic_write_text
    from ..runs.profile import load_profile
    from .peak import matmul_peak_gflops

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    profile = load_profile(Path(args.profile))
    wanted = [] if args.methods == "none" else [m for m in args.methods.split(",") if m] or list(profile.methods)
    accuracy_tasks = {"all": profile.datasets, "none": []}.get(args.accuracy_tasks,
                                                               [t for t in args.accuracy_tasks.split(",") if t])
    jobs = []
    for label in wanted:
        spec = profile.method_spec(label, dataset=args.dataset, shots=args.shots, seed=1)
        kwargs = {k: v for k, v in spec.to_dict().items() if k not in ("feature_cache",)}
        kwargs["hybrid_parts"] = tuple((n, o) for n, o in kwargs["hybrid_parts"])
        jobs.append((label, kwargs, args.repeats, args.threads, device, args.data_root, accuracy_tasks))
    raw = []
    ctx = mp.get_context("spawn")
    peak = matmul_peak_gflops(args.threads, device=device) if jobs else None
    for job in jobs:  # one fresh process per method: its peak memory is its own
        with ctx.Pool(1) as pool:
            raw.append(pool.apply(_measure, (job,)))
        print(f"  measured {job[0]}", file=sys.stderr, flush=True)
    table = summarise(raw, peak)
    if args.text_memory:
        name, _, classes = args.text_memory.partition(":")
        rows = []
        for chunk in (128, int(classes)):  # chunked as adaptlib runs it; every prompt at once
            with ctx.Pool(1) as pool:
                rows.append(pool.apply(_text_memory, ((name, int(classes), chunk, device, args.threads),)))
            print(f"  text memory, chunk {chunk}: {rows[-1]['peak_mb']:.0f} MB", file=sys.stderr, flush=True)
        memory = pd.DataFrame(rows)
        save_table(memory.set_index("text_chunk"), Path(args.out), "text_memory")
        print(memory.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if table.empty:
        return 0
    out = Path(args.out)
    save_table(table.set_index("method"), out, "bench")
    atomic_write_text(out / "bench_raw.json", json.dumps(raw, indent=1, default=str))
    pd.set_option("display.width", 200)
    atomic_write_text(out / "peak.json", json.dumps({"matmul_peak_gflops": peak, "threads": args.threads,
                                                      "device": device, "size": 1024}, indent=1))
    print(f"bench on {args.dataset}, {args.shots} shots, {args.threads} threads, {device}: times are medians and "
          f"accuracies means over {args.repeats} repeats with seeds 1..{args.repeats}; fp32 matmul peak "
          f"{peak:.1f} GFLOP/s on {args.threads} threads (share_of_peak is against it)")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return 0
