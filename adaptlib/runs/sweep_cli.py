"""``adaptlib sweep PROFILE`` and ``adaptlib results``: the command-line side of sweeps and the results store.

The commands import the sweep machinery when they run, so that ``adaptlib --help`` does not load torch.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("sweep", help="run a profile's grid of runs, skipping those with a valid result")
    p.add_argument("profile", help="profile file (profiles/embedded.yaml) or a profile name (embedded, smoke, paper)")
    p.add_argument("--results", default=None, help="results folder (default: the profile's 'results')")
    p.add_argument("--jobs", type=int, default=1, help="worker processes on this machine")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per run (default 1, so a run's numbers do not depend on --jobs)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    p.add_argument("--loader-workers", type=int, default=None,
                   help="image-loading processes per run (default: 0 on CPU, 8 on CUDA)")
    p.add_argument("--together", action="store_true",
                   help="train the runs of a frozen-feature method that can share a program as one vectorised "
                        "program (training.together: the same numbers, less time)")
    p.add_argument("--data-root", default=os.environ.get("ADAPTLIB_DATA_ROOT") or None,
                   help="folder of the real benchmarks (paper profile)")
    p.add_argument("--executor", choices=("slurm", "local", "debug"), default=None,
                   help="submit through submitit instead of local workers (slurm: a job array)")
    p.add_argument("--runs-per-job", type=int, default=None, help="runs per SLURM array task (profile cluster key)")
    p.add_argument("--no-wait", action="store_true", help="with --executor slurm: submit and return")
    p.add_argument("--dry-run", action="store_true", help="list how many runs there are and how many are done")
    p.add_argument("--estimate", action="store_true",
                   help="print the grid's estimated GPU-hours per method (counted FLOPs; runs nothing)")
    p.add_argument("--device-tflops", type=float, default=None,
                   help="with --estimate: the device's dense peak in TFLOP/s (default: 989, one H100 SXM in BF16)")
    p.add_argument("--utilisation", type=float, default=None,
                   help="with --estimate: the fraction of that peak the runs sustain (default: 0.4)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)

    r = sub.add_parser("results", help="collect a results folder into results.csv (+ parquet) and timings.csv")
    r.add_argument("--results", default="results/embedded", help="results folder")
    r.add_argument("--out", default=None, help="where to write the tables (default: the results folder)")
    r.add_argument("--profile", default=None,
                   help="keep only this profile's runs (result files of runs it no longer has, e.g. after its "
                        "learning rates changed, stay in the store but leave the tables)")
    r.set_defaults(func=cmd_results)


DRY_RUN_LISTED = 20  # pending runs listed by --dry-run (then "... and N more")


def cmd_sweep(args) -> int:
    from ..utils.atomic import writable_problem
    from .profile import ProfileError, check_profile_data, load_profile, resolve_profile_path
    from .calibrate import stale_calibration
    from .store import result_path
    from .sweep import pending_runs, run_sweep

    profile = load_profile(resolve_profile_path(args.profile))
    if args.estimate:
        from .estimate import DEFAULT_DEVICE, DEFAULT_TFLOPS, DEFAULT_UTILISATION, estimate_profile

        tflops = args.device_tflops if args.device_tflops is not None else DEFAULT_TFLOPS
        device = DEFAULT_DEVICE if args.device_tflops is None else f"a device of {tflops:g} TFLOP/s"
        utilisation = args.utilisation if args.utilisation is not None else DEFAULT_UTILISATION
        print(estimate_profile(profile, tflops, utilisation, device, args.data_root, args.device).report())
        return 0
    results = Path(args.results or profile.results or f"results/{profile.name}")
    if args.dry_run:  # every check the real sweep makes before it starts, without creating anything
        if args.jobs < 1 or args.threads < 1:
            raise ValueError(f"--jobs and --threads must be at least 1 (got {args.jobs}, {args.threads})")
        problem = writable_problem(results)
        if problem:
            raise ProfileError(f"results directory {problem}: choose another with --results DIR or fix its "
                               f"permissions")
        check_profile_data(profile, args.data_root)
        specs = profile.expand()
        pending, done, invalid = pending_runs(specs, results)
        by_grid = {g.name: len(g.methods) * len(g.datasets) * len(g.shots) * len(g.seeds) * len(profile.backbones)
                   for g in profile.grids}
        print(f"profile {profile.name}: {len(specs)} distinct runs ({done} done, {len(pending)} to run, "
              f"{len(invalid)} invalid files) in {results}")
        for name, n in by_grid.items():
            print(f"  {name:24s} {n:6d} runs (before removing duplicates)")
        for spec in pending[:DRY_RUN_LISTED]:
            print(f"  to run: {result_path(results, spec.key())}")
        if len(pending) > DRY_RUN_LISTED:
            print(f"  ... and {len(pending) - DRY_RUN_LISTED} more")
        for message in invalid:
            print(f"  invalid (the sweep moves it to _invalid/ and redoes its run): {message}")
        return 0
    stale = stale_calibration(profile)
    if stale:
        print(stale, file=sys.stderr)
    loader_workers = args.loader_workers
    if loader_workers is None:
        import torch

        uses_cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
        loader_workers = min(8, os.cpu_count() or 1) if uses_cuda else 0
    summary = run_sweep(profile, jobs=args.jobs, results=results, progress=not args.quiet, threads=args.threads,
                        data_root=args.data_root, device=args.device, loader_workers=loader_workers,
                        executor=args.executor, wait=not args.no_wait, runs_per_job=args.runs_per_job,
                        together=args.together)
    print(summary.report())
    return 0 if summary.ok else 1


def cmd_results(args) -> int:
    from ..utils.atomic import writable_problem
    from .table import write_tables

    root = Path(args.results)
    if not root.is_dir():
        print(f"error: results folder {root} does not exist: run a sweep first (make sweep, adaptlib sweep PROFILE)",
              file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else root
    problem = writable_problem(out)
    if problem:
        hint = "write the tables elsewhere with --out DIR" if not args.out else "choose another --out DIR"
        print(f"error: cannot write the tables: {problem}; {hint} (the store itself is only read)", file=sys.stderr)
        return 2
    keys = None
    if args.profile:
        from .profile import ProfileError, load_profile, resolve_profile_path

        try:
            keys = {spec.key() for spec in load_profile(resolve_profile_path(args.profile)).expand()}
        except (ProfileError, FileNotFoundError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    info = write_tables(root, out, keys)
    if info["left_out"]:
        print(f"{info['left_out']} result file(s) of runs the profile no longer has were left out of the tables",
              file=sys.stderr)
    for problem in info["problems"]:
        print(f"invalid result file (left out; the next sweep redoes its run): {problem}", file=sys.stderr)
    print(f"{info['runs']} runs -> {info['csv']}" + (f" and {info['parquet']}" if info["parquet"] else "")
          + ("" if info["changed"] else " (unchanged)") + f"; {info['wall_seconds']:.0f} s of run time in all")
    return 0
