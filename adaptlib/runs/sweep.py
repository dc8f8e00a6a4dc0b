"""Run a profile's grid: skip what is done, run the rest in worker processes or on a cluster, never lose a result.

Every worker, local or on SLURM, goes through the same loop (``worker.work``): for each run it takes the run's
lock in the store (an flock, freed by the kernel if the worker dies), checks again that no valid result exists, runs
it, and writes the result atomically. Workers of one sweep, and separate sweeps on the same store, therefore never
run a run twice, and a sweep killed at any moment resumes by being started again.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_module
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from .cluster import submit
from .profile import Profile, check_profile_data, check_writable, load_profile
from .spec import RunSpec
from .store import InvalidResult, result_path, valid_result, write_failure
from .worker import Outcome, WorkerOptions, process_main, work


@dataclass
class SweepSummary:
    profile: str
    total: int
    already_done: int
    pending: int
    ran: int = 0
    done_elsewhere: int = 0
    failures: list[dict] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    worker_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    submitted: list[str] = field(default_factory=list)  # cluster job ids when the sweep did not wait

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.worker_errors

    def report(self) -> str:
        lines = [f"sweep {self.profile}: {self.total} runs; {self.already_done} already done, {self.ran} ran, "
                 f"{self.done_elsewhere} done by another worker, {self.failed} failed "
                 f"({self.seconds:.1f} s)"]
        if self.invalid:
            lines.append(f"{len(self.invalid)} invalid result files were moved to _invalid/ and their runs redone:")
            lines += [f"  {m}" for m in self.invalid]
        if self.failures:
            lines.append("failed runs (error records in _failures/; rerun the sweep to retry them):")
            lines += [f"  {f['key']}: {f['error']}" for f in self.failures]
        lines += [f"worker problem: {e}" for e in self.worker_errors]
        if self.submitted:
            lines.append(f"submitted {len(self.submitted)} cluster jobs: {', '.join(self.submitted[:10])}"
                         + (" ..." if len(self.submitted) > 10 else ""))
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ the sweep
def pending_runs(specs: list[RunSpec], root: Path) -> tuple[list[RunSpec], int, list[str]]:
    """(runs without a valid result, how many are done, messages about invalid files found)."""
    pending, done, invalid = [], 0, []
    for spec in specs:
        try:
            if valid_result(root, spec) is not None:
                done += 1
                continue
        except InvalidResult as err:
            invalid.append(str(err))
        pending.append(spec)
    return pending, done, invalid


def run_sweep(profile: str | Path | Profile, jobs: int = 1, results: str | Path | None = None, progress: bool = True,
              threads: int = 1, data_root: str | None = None, device: str = "auto", loader_workers: int = 0,
              executor: str | None = None, wait: bool = True, runs_per_job: int | None = None,
              echo: Callable[[str], None] | None = None, together: bool = False) -> SweepSummary:
    """Run every run of ``profile`` that has no valid result in ``results``; see the module docstring."""
    start = time.perf_counter()
    echo = echo or (lambda text: print(text, file=sys.stderr, flush=True))
    if not isinstance(profile, Profile):
        profile = load_profile(profile)
    if jobs < 1 or threads < 1:
        raise ValueError(f"--jobs and --threads must be at least 1 (got {jobs}, {threads})")
    root = check_writable(results or profile.results or f"results/{profile.name}")
    check_profile_data(profile, data_root)
    specs = profile.expand()
    pending, done, invalid = pending_runs(specs, root)
    summary = SweepSummary(profile.name, len(specs), done, len(pending))
    if invalid:
        echo(f"{len(invalid)} result files are invalid and will be redone:\n  " + "\n  ".join(invalid))
    if not pending:
        summary.seconds = time.perf_counter() - start
        return summary
    opts = WorkerOptions(results=str(root), sweep=f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}",
                         device=device, data_root=data_root, threads=threads, loader_workers=loader_workers,
                         together=together)
    dicts = [s.to_dict() for s in pending]
    if executor:
        outcomes = submit(dicts, opts, profile, executor, wait=wait, jobs=jobs, runs_per_job=runs_per_job,
                          summary=summary, echo=echo)
    elif jobs == 1:
        outcomes = _run_here(dicts, opts, progress, profile.name)
    else:
        outcomes = _run_processes(dicts, opts, jobs, progress, profile.name, summary)
    _tally(summary, outcomes, root)
    summary.seconds = time.perf_counter() - start
    return summary


def _tally(summary: SweepSummary, outcomes: list[Outcome], root: Path) -> None:
    failed = {}
    for o in outcomes:
        if o.status == "ran":
            summary.ran += 1
        elif o.status == "done":  # finished by another worker or sweep after this sweep looked
            summary.done_elsewhere += 1
        elif o.status == "invalid":
            summary.invalid.append(o.error or o.key)
        elif o.status == "failed":
            failed[o.key] = o.error or "failed"
    summary.failures = [{"key": k, "error": e} for k, e in sorted(failed.items())
                        if not result_path(root, k).exists()]


class _Progress:
    """tqdm bar over the pending runs with the counts a sweep needs: done, running, failed; tqdm gives the ETA."""

    def __init__(self, total: int, enabled: bool, name: str):
        self.bar = tqdm(total=total, desc=f"sweep {name}", unit="run", disable=not enabled, dynamic_ncols=True,
                        mininterval=float(os.environ.get("TQDM_MININTERVAL", 1.0)))
        self.running: set[str] = set()
        self.finished: set[str] = set()  # every worker visits every run: count each once
        self.failed = 0
        self.invalid: list[tuple[str, str]] = []

    def __call__(self, event: str, key: str, info: dict) -> None:
        if event == "start":
            self.running.add(key)
        elif event in ("done", "failed", "skip") and key not in self.finished:
            self.finished.add(key)
            self.running.discard(key)
            self.failed += event == "failed" or info.get("status") == "failed"
            self.bar.update(1)
        elif event == "invalid":
            self.invalid.append((key, info.get("message", "")))
        self.bar.set_postfix(running=len(self.running), failed=self.failed, refresh=False)

    def close(self) -> None:
        self.bar.close()


def _run_here(dicts: list[dict], opts: WorkerOptions, progress: bool, name: str) -> list[Outcome]:
    bar = _Progress(len(dicts), progress, name)
    previous = _torch_threads()
    try:
        outcomes = work(dicts, opts, emit=bar)
    finally:
        bar.close()
        _torch_threads(previous)
    return outcomes + [Outcome(k, "invalid", error=m) for k, m in bar.invalid]


def _torch_threads(n: int | None = None) -> int:
    if n is not None:
        torch.set_num_threads(n)
    return torch.get_num_threads()


def _run_processes(dicts: list[dict], opts: WorkerOptions, jobs: int, progress: bool, name: str,
                   summary: SweepSummary) -> list[Outcome]:
    """``jobs`` worker processes over the same list; the store's locks keep them off each other's runs."""
    ctx = mp.get_context("spawn")
    events = ctx.Queue()
    workers = [ctx.Process(target=process_main, args=(dicts, opts, events), name=f"adaptlib-worker-{i}")
               for i in range(min(jobs, len(dicts)))]
    bar = _Progress(len(dicts), progress, name)
    outcomes: dict[str, Outcome] = {}
    in_flight: dict[int, str] = {}

    def handle(item) -> None:
        event, key, info, pid = item
        bar(event, key, info)
        if event == "start":
            in_flight[pid] = key
        elif event in ("done", "failed"):
            in_flight.pop(pid, None)
            outcomes[key] = Outcome(key, "ran" if event == "done" else "failed", info.get("seconds", 0.0),
                                    info.get("error"))
        elif event == "skip":
            outcomes.setdefault(key, Outcome(key, info["status"], error=info.get("error")))
        elif event == "invalid":
            outcomes.setdefault(f"invalid:{key}:{len(outcomes)}", Outcome(key, "invalid", error=info["message"]))

    try:
        for w in workers:
            w.start()
        while any(w.is_alive() for w in workers):
            try:
                handle(events.get(timeout=0.5))
            except queue_module.Empty:
                pass
        while True:
            try:
                handle(events.get_nowait())
            except queue_module.Empty:
                break
    except KeyboardInterrupt:
        for w in workers:
            w.terminate()
        raise
    finally:
        bar.close()
        for w in workers:
            w.join(timeout=5)
    for w in workers:
        if w.exitcode:
            key = in_flight.get(w.pid)
            message = f"worker process {w.name} (pid {w.pid}) died with exit code {w.exitcode}"
            if key and not result_path(Path(opts.results), key).exists():
                spec = RunSpec.from_dict(next(d for d in dicts if RunSpec.from_dict(d).key() == key))
                write_failure(Path(opts.results), spec, message, "", opts.sweep)
                outcomes[key] = Outcome(key, "failed", error=message)
            summary.worker_errors.append(message + (f" while running {key}" if key else ""))
    return list(outcomes.values())

