"""One worker of a sweep, local or on a cluster: claim each run in the store, run what is not done, keep the result.

For each run the worker takes the run's lock in the store (an flock, freed by the kernel if the worker dies),
checks again that no valid result exists, runs it and writes the result atomically; a failed run leaves an error
record. ``sweep`` starts these workers as local processes, ``cluster`` as SLURM array tasks.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from threadpoolctl import threadpool_limits

from .run import RunContext, execute
from .spec import RunSpec
from .store import (InvalidResult, claim, clear_failure, journal, quarantine, read_failure, state_dir, valid_result,
                    write_failure, write_result)

Emit = Callable[[str, str, dict], None]


@dataclass(frozen=True)
class WorkerOptions:
    """What every worker needs besides its runs (picklable: it travels to processes and SLURM jobs)."""

    results: str
    sweep: str
    device: str = "auto"
    data_root: str | None = None
    threads: int = 1
    loader_workers: int = 0


@dataclass
class Outcome:
    key: str
    status: str  # ran | done (a valid result was already there) | failed | invalid (a bad file was moved aside)
    seconds: float = 0.0
    error: str | None = None


def _from_scheduler(err: BaseException) -> bool:
    """An exception raised into the run by the cluster job's own signal handling (submitit's requeue on USR2, or
    its "timed-out too many times"): it must end the job so the scheduler can requeue it, and it says nothing
    about the run, which is retried on requeue."""
    return type(err).__module__.split(".")[0] == "submitit"


def attempt(spec: RunSpec, opts: WorkerOptions, wait: bool, emit: Emit) -> Outcome | None:
    """Run ``spec`` unless it is done; None when another process holds it (and ``wait`` is False)."""
    root, key = Path(opts.results), spec.key()
    with claim(root, key, wait=wait) as mine:
        if not mine:
            return None
        try:
            if valid_result(root, spec) is not None:
                return _skipped(Outcome(key, "done"), emit)
        except InvalidResult as err:
            moved = quarantine(root, key)
            emit("invalid", key, {"message": f"{err} -> {moved}"})
        failure = read_failure(root, key)
        if failure and failure.get("sweep") == opts.sweep:  # failed once in this sweep: do not retry now
            return _skipped(Outcome(key, "failed", error=failure.get("error")), emit)
        emit("start", key, {})
        journal(root, "start", key, opts.sweep)
        start = time.perf_counter()
        ctx = RunContext(device=opts.device, data_root=opts.data_root, threads=opts.threads,
                         num_workers=opts.loader_workers, state_dir=str(state_dir(root)))
        try:
            result = execute(spec, ctx)
        except Exception as err:  # the run failed: record it, the sweep goes on
            if _from_scheduler(err):  # the job is being requeued or stopped: not this run's failure
                raise
            message = f"{type(err).__name__}: {err}"
            write_failure(root, spec, message, traceback.format_exc(), opts.sweep)
            journal(root, "failed", key, opts.sweep, error=message)
            emit("failed", key, {"error": message})
            return Outcome(key, "failed", time.perf_counter() - start, message)
        if result.get("state_file"):
            result["state_file"] = os.path.relpath(result["state_file"], root)
        result["sweep"] = opts.sweep
        write_result(root, result)
        clear_failure(root, key)
        seconds = time.perf_counter() - start
        journal(root, "done", key, opts.sweep, seconds=round(seconds, 3))
        emit("done", key, {"seconds": seconds})
        return Outcome(key, "ran", seconds)


def work(spec_dicts: list[dict], opts: WorkerOptions, emit: Emit | None = None) -> list[Outcome]:
    """The worker loop: claim and run each run not done; then wait for the runs other processes held."""
    torch.set_num_threads(opts.threads)
    emit = emit or (lambda event, key, info: None)
    specs = [RunSpec.from_dict(d) for d in spec_dicts]
    outcomes, busy = [], []
    # numpy/scipy BLAS too: oversubscribed cores slow the small fits of a run down many times
    with threadpool_limits(opts.threads):
        for spec in specs:
            outcome = attempt(spec, opts, wait=False, emit=emit)
            if outcome is None:
                busy.append(spec)
            else:
                outcomes.append(outcome)
        for spec in busy:  # held by another worker: wait for it, then it is done (or redo it if its holder died)
            outcomes.append(attempt(spec, opts, wait=True, emit=emit))
    return outcomes


def _skipped(outcome: Outcome, emit: Emit) -> Outcome:
    """Tell the parent about a run this worker did not run (done by another process, or failed in this sweep)."""
    emit("skip", outcome.key, {"status": outcome.status, "error": outcome.error})
    return outcome


def process_main(spec_dicts: list[dict], opts: WorkerOptions, queue) -> None:
    """Entry point of a local worker process: dies with its parent, reports events through ``queue``."""
    _die_with_parent()
    os.environ.setdefault("TQDM_DISABLE", "1")
    work(spec_dicts, opts, emit=lambda event, key, info: queue.put((event, key, info, os.getpid())))


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker when the sweep process dies (no orphans after a kill -9)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
