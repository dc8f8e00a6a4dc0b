"""Sweeps beyond one machine: the pending runs as a SLURM job array through submitit.

Each array task runs a chunk of runs through the same worker loop as a local sweep (``worker.work``), so it
claims each run's lock in the shared store and writes its own result files; a task that is preempted or hits
its time limit is requeued and skips the runs already done. ``executor="local"`` runs the same jobs as local
processes (submitit's LocalExecutor), which is how the tests exercise this path.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import submitit

from ..utils.names import unknown_name_error
from .profile import Profile
from .spec import RunSpec
from .worker import Outcome, WorkerOptions, work

EXECUTORS = ("slurm", "local", "debug")
# profile `cluster:` keys -> submitit parameters (slurm_* ones are ignored by the local executor)
PARAMETERS = {"partition": "slurm_partition", "gpus_per_node": "gpus_per_node", "cpus_per_task": "cpus_per_task",
              "mem_gb": "mem_gb", "timeout_min": "timeout_min", "array_parallelism": "slurm_array_parallelism",
              "account": "slurm_account", "qos": "slurm_qos", "constraint": "slurm_constraint"}


class SweepJob(submitit.helpers.Checkpointable):
    """One array task: run a chunk of runs. On requeue it is called again with the same chunk (done runs skip)."""

    def __call__(self, spec_dicts: list[dict], opts: WorkerOptions) -> list[Outcome]:
        return work(spec_dicts, opts)


def chunks(items: list, n_chunks: int) -> list[list]:
    """``items`` split into ``n_chunks`` contiguous chunks of near-equal size (none empty)."""
    n_chunks = max(1, min(n_chunks, len(items)))
    size = math.ceil(len(items) / n_chunks)
    return [items[i:i + size] for i in range(0, len(items), size)]


def make_executor(kind: str, folder: Path, profile: Profile, jobs: int) -> submitit.AutoExecutor:
    if kind not in EXECUTORS:
        raise unknown_name_error("executor", kind, EXECUTORS)
    executor = submitit.AutoExecutor(folder=folder, cluster=kind)
    params = {PARAMETERS[k]: v for k, v in profile.cluster.items() if k in PARAMETERS}
    params.setdefault("timeout_min", 240)
    if kind == "local":
        params = {k: v for k, v in params.items() if not k.startswith("slurm_") and k != "gpus_per_node"}
    params.setdefault("name", f"adaptlib-{profile.name}")
    executor.update_parameters(**params)
    return executor


def submit(dicts: list[dict], opts: WorkerOptions, profile: Profile, kind: str, wait: bool, jobs: int,
           runs_per_job: int | None, summary, echo: Callable[[str], None]) -> list[Outcome]:
    """Submit the pending runs as a job array; with ``wait``, collect every task's outcomes."""
    folder = Path(opts.results) / "_submitit"
    executor = make_executor(kind, folder, profile, jobs)
    if kind == "slurm":
        per_job = runs_per_job or int(profile.cluster.get("runs_per_job", 4))
        parts = chunks(dicts, math.ceil(len(dicts) / per_job))
    else:  # local processes: one job per requested worker
        parts = chunks(dicts, jobs)
    job_list = executor.map_array(SweepJob(), parts, [opts] * len(parts))
    summary.submitted = [str(j.job_id) for j in job_list]
    echo(f"submitted {len(job_list)} {kind} jobs for {len(dicts)} runs (logs in {folder})")
    if not wait:
        return []
    outcomes = []
    for job, part in zip(job_list, parts):
        try:
            outcomes.extend(job.result())
        except Exception as err:  # the job itself failed (node failure, time limit without requeue)
            message = f"job {job.job_id} failed: {str(err).strip().splitlines()[-1] if str(err).strip() else err}"
            summary.worker_errors.append(message)
            outcomes.extend(Outcome(d_key, "failed", error=message) for d_key in _keys(part))
    return outcomes


def _keys(part: list[dict]) -> list[str]:
    return [RunSpec.from_dict(d).key() for d in part]
