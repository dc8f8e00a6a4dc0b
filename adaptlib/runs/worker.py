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
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from threadpoolctl import threadpool_limits

from .run import RunContext, execute, execute_together
from .spec import RunSpec, recipe_for
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
    together: bool = False  # frozen-feature runs that can share a training program run as one (``programs``)


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


def _context(opts: WorkerOptions, root: Path) -> RunContext:
    return RunContext(device=opts.device, data_root=opts.data_root, threads=opts.threads,
                      num_workers=opts.loader_workers, state_dir=str(state_dir(root)))


def _still_to_run(spec: RunSpec, opts: WorkerOptions, emit: Emit) -> Outcome | None:
    """With the run's lock held: None when it must run now; otherwise why not (done, or failed in this sweep)."""
    root, key = Path(opts.results), spec.key()
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
    return None


def _keep(spec: RunSpec, result: dict | BaseException, seconds: float, opts: WorkerOptions, emit: Emit,
          trace: str = "") -> Outcome:
    """Write the run's result (or its failure record) and report it."""
    root, key = Path(opts.results), spec.key()
    if isinstance(result, BaseException):
        if _from_scheduler(result):  # the job is being requeued or stopped: not this run's failure
            raise result
        message = f"{type(result).__name__}: {result}"
        write_failure(root, spec, message, trace or "".join(traceback.format_exception(result)), opts.sweep)
        journal(root, "failed", key, opts.sweep, error=message)
        emit("failed", key, {"error": message})
        return Outcome(key, "failed", seconds, message)
    if result.get("state_file"):
        result["state_file"] = os.path.relpath(result["state_file"], root)
    result["sweep"] = opts.sweep
    write_result(root, result)
    clear_failure(root, key)
    journal(root, "done", key, opts.sweep, seconds=round(seconds, 3))
    emit("done", key, {"seconds": seconds})
    return Outcome(key, "ran", seconds)


def attempt(spec: RunSpec, opts: WorkerOptions, wait: bool, emit: Emit) -> Outcome | None:
    """Run ``spec`` unless it is done; None when another process holds it (and ``wait`` is False)."""
    root, key = Path(opts.results), spec.key()
    with claim(root, key, wait=wait) as mine:
        if not mine:
            return None
        skipped = _still_to_run(spec, opts, emit)
        if skipped is not None:
            return skipped
        start = time.perf_counter()
        try:
            result: dict | BaseException = execute(spec, _context(opts, root))
        except Exception as err:  # the run failed: record it, the sweep goes on
            result = err
        return _keep(spec, result, time.perf_counter() - start, opts, emit)


def attempt_together(specs: list[RunSpec], opts: WorkerOptions, emit: Emit) -> tuple[list[Outcome], list[RunSpec]]:
    """Claim every run of ``specs`` that no other process holds, run those not done as one program
    (``execute_together``), write each result or failure. Returns the outcomes and the runs held elsewhere."""
    root = Path(opts.results)
    outcomes, busy, mine = [], [], []
    with ExitStack() as held:
        for spec in specs:
            if not held.enter_context(claim(root, spec.key(), wait=False)):
                busy.append(spec)
                continue
            skipped = _still_to_run(spec, opts, emit)
            if skipped is None:
                mine.append(spec)
            else:
                outcomes.append(skipped)
        if mine:
            start = time.perf_counter()
            results = execute_together(mine, _context(opts, root))
            share = (time.perf_counter() - start) / len(mine)
            outcomes += [_keep(spec, result, share, opts, emit) for spec, result in zip(mine, results)]
    return outcomes, busy


def together_key(spec: RunSpec) -> tuple | None:
    """Runs of a sweep that may share one training program (``execute_together`` checks the rest once they are
    built): one method, entry and training settings but the learning rate, on one backbone, setting and shot
    count; None for a method whose parts change an encoder."""
    from ..methods.registry import PARTS

    recipe = recipe_for(spec)
    parts = [PARTS[name] for name, _ in recipe.part_options(spec.setting, spec.dataset)]
    if any(p.modifies_image_encoder or p.modifies_text_encoder for p in parts) or not spec.feature_cache:
        return None
    fields = spec.to_dict()
    for name in ("seed", "dataset", "train"):
        fields.pop(name)
    train = {k: v for k, v in spec.train_overrides().items() if k not in ("lr", "part_lr")}
    return repr(sorted(fields.items())), repr(sorted(train.items()))


def programs(specs: list[RunSpec], most: int = 32) -> list[list[RunSpec]]:
    """The runs in groups that may train together (at most ``most`` a group, in the runs' order), the others
    alone; ``execute_together`` splits a group further where the runs' shapes differ."""
    groups: dict[tuple, list[RunSpec]] = {}
    units: list[list[RunSpec]] = []
    for spec in specs:
        key = together_key(spec)
        if key is None:
            units.append([spec])
            continue
        group = groups.get(key)
        if group is None or len(group) >= most:
            group = groups[key] = []
            units.append(group)
        group.append(spec)
    return units


def work(spec_dicts: list[dict], opts: WorkerOptions, emit: Emit | None = None) -> list[Outcome]:
    """The worker loop: claim and run each run not done (frozen-feature runs that can share a program together,
    with ``opts.together``); then wait for the runs other processes held."""
    torch.set_num_threads(opts.threads)
    emit = emit or (lambda event, key, info: None)
    specs = [RunSpec.from_dict(d) for d in spec_dicts]
    outcomes, busy = [], []
    # numpy/scipy BLAS too: oversubscribed cores slow the small fits of a run down many times
    with threadpool_limits(opts.threads):
        for unit in (programs(specs) if opts.together else [[s] for s in specs]):
            if len(unit) > 1:
                done, held = attempt_together(unit, opts, emit)
                outcomes += done
                busy += held
                continue
            outcome = attempt(unit[0], opts, wait=False, emit=emit)
            if outcome is None:
                busy.append(unit[0])
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
