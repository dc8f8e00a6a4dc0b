"""The cluster path on a real SLURM: a one-node slurmctld + slurmd (+ slurmdbd, for sacct) brought up by
``tests/slurm/cluster.sh`` for the session, and sweeps of a tiny random-weight CLIP submitted to it as job arrays.

Run with ``make test-slurm`` (or ``ADAPTLIB_SLURM=1 pytest tests/slurm``); skipped otherwise, and skipped with the
reason when the cluster cannot be brought up here (SLURM not installed and not root). Each test checks the store and
the results table against a local sweep of the same profile; the session tears the cluster down in a ``finally``.
"""

from __future__ import annotations

import collections
import json
import math
import os
import pickle
import re
import shlex
import subprocess
import threading
import time
from pathlib import Path

import pytest

from adaptlib.cli import main
from adaptlib.runs.profile import load_profile
from adaptlib.runs.store import read_journal, result_files, result_path
from adaptlib.runs.sweep import run_sweep
from adaptlib.runs.table import write_tables

pytestmark = pytest.mark.skipif(os.environ.get("ADAPTLIB_SLURM") != "1",
                                reason="the SLURM tests run with ADAPTLIB_SLURM=1 (make test-slurm)")

HERE = Path(__file__).resolve().parent
CLUSTER_SH = HERE / "cluster.sh"

# 12 runs of a few steps each: well under a second a run, so an array task is mostly Python's start-up.
FAST = """\
name: {name}
backbone: adaptlib-test
pretrained: random
run_defaults: {{crop_scale: [1, 1], train: {{max_steps: 2}}}}
datasets: [colour, shape]
shots: [1]
seeds: [1, 2]
methods:
  coop: {{}}
  clip_adapter: {{}}
  layernorm: {{}}
settings:
  few_shot: {{}}
cluster: {cluster}
"""
FAST_RUNS = 12

# 8 runs, 4 a task: in each task a fast run (well under a second), another, then two slow ones (400 steps through the
# image encoder: seconds each). A task cancelled or requeued once its first run is done is therefore always stopped
# in the middle of a slow run, whatever the machine's speed: the grace between SIGTERM (which submitit ignores) and
# SIGKILL is a few seconds.
SLOW = """\
name: {name}
backbone: adaptlib-test
pretrained: random
run_defaults: {{crop_scale: [1, 1], train: {{max_steps: 2}}}}
datasets: [colour]
shots: [1]
seeds: [1, 2]
methods:
  coop: {{}}
  layernorm: {{train: {{max_steps: 1000, epochs: {{1: 1000}}, warmup_epochs: 0}}}}
  clip_adapter: {{}}
  bitfit: {{train: {{max_steps: 1000, epochs: {{1: 1000}}, warmup_epochs: 0}}}}
settings:
  few_shot: {{}}
cluster: {cluster}
"""
# A task's slow runs last several seconds each (1,000 steps: about 5.5 s on an idle 2-core machine), so a cancel or
# requeue sent after its first (fast) run lands mid-task; at 400 steps (about 2 s) SLURM's control path lost that
# race on idle cores (measured: the task finished its 4 runs first)
SLOW_RUNS, SLOW_PER_TASK = 8, 4


def slow_tasks(profile: Path) -> list[list[str]]:
    """The two tasks' run keys; checks that each starts with its two fast runs."""
    tasks = task_keys(profile, SLOW_PER_TASK)
    methods = {s.key(): s.method for s in load_profile(profile).expand()}
    assert [[methods[k] for k in task] for task in tasks] == [["coop"] * 2 + ["layernorm"] * 2,
                                                              ["clip_adapter"] * 2 + ["bitfit"] * 2]
    return tasks


# ------------------------------------------------------------------------------------------------ the cluster
@pytest.fixture(scope="session")
def slurm_cluster():
    """``cluster.sh up`` once for the session, its environment (SLURM_CONF, ...) set; ``down`` in a finally."""
    patch = pytest.MonkeyPatch()
    try:
        up = subprocess.run(["bash", str(CLUSTER_SH), "up"], capture_output=True, text=True, timeout=900)
        if up.returncode == 3:
            pytest.skip("no SLURM cluster here: " + up.stderr.strip().splitlines()[-1])
        assert up.returncode == 0, f"tests/slurm/cluster.sh up failed ({up.returncode}):\n{up.stderr}"
        env = {}
        for line in up.stdout.splitlines():
            if line.startswith("export "):
                key, _, value = line[len("export "):].partition("=")
                env[key] = shlex.split(value)[0] if value else ""
        assert "SLURM_CONF" in env, up.stdout
        for key, value in env.items():
            patch.setenv(key, value)
        print(up.stderr.strip().splitlines()[-1])
        yield env
    finally:
        patch.undo()
        down = subprocess.run(["bash", str(CLUSTER_SH), "down"], capture_output=True, text=True, timeout=300)
        assert down.returncode == 0, f"tests/slurm/cluster.sh down failed:\n{down.stderr}"


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """The results table of a local sweep of a profile text (computed once per text)."""
    tables: dict[str, str] = {}

    def table_of(text: str) -> str:
        if text not in tables:
            root = tmp_path_factory.mktemp("reference")
            profile = root / "profile.yaml"
            profile.write_text(text)
            summary = run_sweep(profile, results=root / "results", progress=False, echo=lambda _: None)
            assert summary.ok, summary.report()
            tables[text] = table_text(root / "results")
        return tables[text]

    return table_of


def profile_text(template: str, name: str, **cluster) -> str:
    return template.format(name=name, cluster="{" + ", ".join(f"{k}: {v}" for k, v in cluster.items()) + "}")


def reference_text(template: str) -> str:
    """The same runs without a cluster section or a distinct name (neither changes a run's key or results)."""
    return profile_text(template, "reference")


def write_profile(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(text)
    return path


def table_text(root: Path) -> str:
    out = root.parent / f"{root.name}-table"
    write_tables(root, out)
    return (out / "results.csv").read_text()


def done_events(root: Path) -> collections.Counter:
    return collections.Counter(e["key"] for e in read_journal(root) if e["event"] == "done")


def task_keys(profile: Path, per_task: int) -> list[list[str]]:
    """The run keys of each array task, as ``cluster.submit`` chunks a fresh sweep's pending runs."""
    from adaptlib.runs.cluster import chunks

    keys = [s.key() for s in load_profile(profile).expand()]
    return chunks(keys, math.ceil(len(keys) / per_task))


def n_done(root: Path, keys: list[str]) -> int:
    return sum(result_path(root, k).exists() for k in keys)


# ------------------------------------------------------------------------------------------------ slurm commands
def slurm(*args: str, check: bool = True) -> str:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def queued(job: str) -> dict[str, str]:
    """Array task -> state, of the tasks of ``job`` still pending or running (squeue, one line a task)."""
    out = slurm("squeue", "-h", "-r", "-j", job, "-o", "%i %T", check=False)
    return dict(line.split() for line in out.splitlines() if line.strip())


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; queue:\n"
                                 + slurm("squeue", "-a", check=False))
        time.sleep(interval)


def wait_gone(job: str, timeout: float = 240) -> None:
    wait_until(lambda: not queued(job), timeout, f"job {job} to leave the queue", interval=0.5)


def job_records(job: str) -> list[dict[str, str]]:
    """``scontrol show job -o``: one dict per array task (pending tasks may share one record)."""
    records = []
    for line in slurm("scontrol", "show", "job", "-o", job).splitlines():
        records.append(dict(re.findall(r"(\S+?)=(\S*)", line)))
    return records


def sacct_lines(job: str) -> list[str]:
    fields = "JobID,JobName%22,Partition,AllocCPUS,ReqMem,Timelimit,State,ExitCode,Start,End"
    return slurm("sacct", "-j", job, "-o", fields).splitlines()


def sacct_states(job: str) -> dict[str, str]:
    """Array task -> final state from the accounting database (the tasks' allocations, not their steps)."""
    out = slurm("sacct", "-n", "-X", "-P", "-j", job, "-o", "JobID,State")
    return dict(line.split("|", 1) for line in out.splitlines() if line.strip())


def array_of(name: str) -> str:
    """The array job id of the sweep whose jobs are named adaptlib-<name> (once submitted)."""
    out = slurm("squeue", "-h", "-n", f"adaptlib-{name}", "-o", "%F", check=False)
    return out.split()[0] if out.split() else ""


def in_background(fn, *args, **kwargs):
    """Run ``fn`` in a thread; returns (thread, box) where box gets 'value' or 'error'."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as err:  # noqa: BLE001 - reported by the test
            box["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def joined(thread: threading.Thread, box: dict, timeout: float = 300):
    thread.join(timeout)
    assert not thread.is_alive(), f"the sweep did not finish within {timeout} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def quiet(_text: str) -> None:
    pass


# ------------------------------------------------------------------------------------------------ tests
def test_job_array_sweep_matches_the_local_sweep(slurm_cluster, reference, tmp_path):
    """4 array tasks of 3 runs, 2 at a time: every run once, the local sweep's table byte for byte."""
    profile = write_profile(tmp_path, profile_text(FAST, "slurm-array", array_parallelism=2, runs_per_job=3,
                                                   mem_gb=1, timeout_min=10))
    results = tmp_path / "results"
    summary = run_sweep(profile, results=results, progress=False, executor="slurm", echo=quiet)
    assert summary.ok and summary.ran == FAST_RUNS, summary.report()
    array = summary.submitted[0].split("_")[0]
    assert summary.submitted == [f"{array}_{i}" for i in range(4)]
    assert table_text(results) == reference(reference_text(FAST))
    assert set(done_events(results).values()) == {1} and len(done_events(results)) == FAST_RUNS
    # never more than 2 tasks at once (the throttle), each task completed
    wait_gone(array)  # results come back while a task may still be completing
    records = [r for r in job_records(array) if r.get("ArrayTaskId", "").isdigit()]
    assert len(records) == 4 and {r["JobState"] for r in records} == {"COMPLETED"}
    spans = [(r["StartTime"], r["EndTime"]) for r in records]
    assert max(sum(s <= start < e for s, e in spans) for start, _ in spans) <= 2, spans
    assert all(r["ArrayTaskThrottle"] == "2" for r in records)
    if slurm_cluster.get("ADAPTLIB_SLURM_ACCOUNTING") == "1":
        wait_until(lambda: set(sacct_states(array).values()) == {"COMPLETED"} and len(sacct_states(array)) == 4,
                   60, "sacct to record the 4 tasks")
        print("\n".join(sacct_lines(array)))


def test_profile_cluster_settings_reach_the_jobs(slurm_cluster, tmp_path):
    """partition, CPUs, memory, time limit, array parallelism and runs per task, as scontrol sees the job."""
    name = "slurm-settings"
    profile = write_profile(tmp_path, profile_text(FAST, name, partition="sweeps", cpus_per_task=2, mem_gb=2,
                                                   timeout_min=7, array_parallelism=1, runs_per_job=5))
    summary = run_sweep(profile, results=tmp_path / "results", progress=False, executor="slurm", wait=False,
                        echo=quiet)
    array = summary.submitted[0].split("_")[0]
    try:
        assert len(summary.submitted) == math.ceil(FAST_RUNS / 5) == 3
        tasks = queued(array)
        assert sorted(tasks) == [f"{array}_{i}" for i in range(3)], tasks
        records = job_records(array)
        assert {r["ArrayTaskThrottle"] for r in records} == {"1"}
        for r in records:
            assert r["JobName"] == f"adaptlib-{name}"
            assert r["Partition"] == "sweeps"
            assert r["CPUs/Task"] == "2"
            assert r["MinMemoryNode"] in ("2G", "2048M")
            assert r["TimeLimit"] == "00:07:00"
            assert r["Requeue"] == "1"
        print("\n".join(slurm("scontrol", "show", "job", "-o", array).splitlines()))
    finally:
        slurm("scancel", array, check=False)
        wait_gone(array, 60)


def test_no_wait_returns_at_once_and_dry_run_reports_progress(slurm_cluster, reference, tmp_path, capsys):
    profile = write_profile(tmp_path, profile_text(FAST, "slurm-nowait", array_parallelism=2, runs_per_job=3,
                                                   mem_gb=1))
    results = tmp_path / "results"
    start = time.monotonic()
    assert main(["sweep", str(profile), "--results", str(results), "--executor", "slurm", "--no-wait",
                 "--quiet"]) == 0
    seconds = time.monotonic() - start
    out = capsys.readouterr()
    array = re.search(r"submitted 4 cluster jobs: (\d+)_0", out.out).group(1)
    assert seconds < 20, f"--no-wait took {seconds:.1f} s"
    left = queued(array)
    assert left, "the jobs were already gone when the sweep returned: it waited"
    done_at_return = len(list(result_files(results))) if results.exists() else 0
    assert done_at_return < FAST_RUNS

    seen = []
    while True:
        assert main(["sweep", str(profile), "--results", str(results), "--dry-run"]) == 0
        match = re.search(r"(\d+) distinct runs \((\d+) done, (\d+) to run", capsys.readouterr().out)
        total, done, to_run = map(int, match.groups())
        assert total == FAST_RUNS and done + to_run == total
        if not seen or seen[-1] != done:
            seen.append(done)
        if done == total:
            break
        assert time.monotonic() - start < 300, f"the sweep did not finish: dry runs saw {seen}"
        time.sleep(0.3)
    print(f"--no-wait returned in {seconds:.1f} s with {len(left)} tasks queued; --dry-run saw done = {seen}")
    assert seen == sorted(seen), "the done count went down"
    assert any(0 < d < FAST_RUNS for d in seen), f"no intermediate progress seen: {seen}"
    wait_gone(array)
    assert table_text(results) == reference(reference_text(FAST))
    assert set(done_events(results).values()) == {1}


def test_cancelled_task_then_resubmission_runs_only_the_missing_runs(slurm_cluster, reference, tmp_path):
    name, per_task = "slurm-cancel", SLOW_PER_TASK
    profile = write_profile(tmp_path, profile_text(SLOW, name, array_parallelism=2, runs_per_job=per_task, mem_gb=1))
    results = tmp_path / "results"
    tasks = slow_tasks(profile)
    # submitit learns that a task ended without a result from sacct: without accounting, the sweep cannot wait
    accounting = slurm_cluster.get("ADAPTLIB_SLURM_ACCOUNTING") == "1"
    thread, box = in_background(run_sweep, profile, results=results, progress=False, executor="slurm", echo=quiet,
                                wait=accounting)
    array = wait_until(lambda: array_of(name), 60, "the array to be submitted")
    victim = f"{array}_1"
    # cancel task 1 once it has finished a run but before it finished them all
    wait_until(lambda: queued(array).get(victim) == "RUNNING" and n_done(results, tasks[1]) >= 1, 180,
               f"{victim} to finish its first run")
    slurm("scancel", victim)
    wait_until(lambda: victim not in queued(array), 60, f"{victim} to end")
    first = joined(thread, box)
    wait_gone(array)
    done_in_victim = n_done(results, tasks[1])
    assert 0 < done_in_victim < per_task, f"the cancel did not land mid-task ({done_in_victim} of {per_task} done)"
    missing = {k for k in tasks[1] if not result_path(results, k).exists()}
    if accounting:  # the waiting sweep reports the cancelled task and its runs without a result
        assert not first.ok and any(victim in e for e in first.worker_errors), first.report()
        assert {f["key"] for f in first.failures} == missing
    assert n_done(results, tasks[0]) == per_task
    before = len(list(result_files(results)))
    assert before == SLOW_RUNS - len(missing)
    started = collections.Counter(e["key"] for e in read_journal(results) if e["event"] == "start")
    assert any(started[k] and not result_path(results, k).exists() for k in tasks[1]), "no run was interrupted"

    second = run_sweep(profile, results=results, progress=False, executor="slurm", echo=quiet)
    assert second.ok, second.report()
    assert (second.already_done, second.ran, len(second.submitted)) == (before, len(missing), 1)
    assert len(list(result_files(results))) == SLOW_RUNS  # nothing lost
    assert set(done_events(results).values()) == {1}  # nothing done twice
    assert table_text(results) == reference(reference_text(SLOW))
    if accounting:
        states = sacct_states(array)
        assert states[f"{array}_0"] == "COMPLETED" and states[victim].startswith("CANCELLED"), states
    print(f"cancelled {victim} after {done_in_victim}/{per_task} runs; resubmission ran the {len(missing)} missing")


def test_requeued_tasks_finish_without_redoing_finished_runs(slurm_cluster, reference, tmp_path):
    """Task 0 requeued by SLURM (scontrol requeue: how preemption looks to a job); task 1 preempted the way
    submitit expects (SIGTERM, then USR2: submitit checkpoints and requeues it itself). Both finish in the same
    waiting sweep, the run each was in is redone, and no run finished before the requeue runs again."""
    name, per_task = "slurm-requeue", SLOW_PER_TASK
    profile = write_profile(tmp_path, profile_text(SLOW, name, array_parallelism=2, runs_per_job=per_task, mem_gb=1))
    results = tmp_path / "results"
    tasks = slow_tasks(profile)
    thread, box = in_background(run_sweep, profile, results=results, progress=False, executor="slurm", echo=quiet)
    array = wait_until(lambda: array_of(name), 60, "the array to be submitted")
    done_before = {}
    for index, task in enumerate(tasks):
        job = f"{array}_{index}"
        wait_until(lambda: queued(array).get(job) == "RUNNING" and n_done(results, task) >= 1, 180,
                   f"{job} to finish its first run")
        if index == 0:
            slurm("scontrol", "requeue", job)
        else:
            slurm("scancel", "--signal=TERM", job)
            time.sleep(0.5)
            slurm("scancel", "--signal=USR2", job)
        done_before[job] = [k for k in task if result_path(results, k).exists()]
    summary = joined(thread, box)
    wait_gone(array)
    logs = results / "_submitit"
    history = "\n".join(f"{e['time']:.1f} pid {e['pid']} {e['event']:7s} {e['key']}" for e in read_journal(results))
    for job in done_before:
        status, outcomes = pickle.loads((logs / f"{job}_0_result.pkl").read_bytes())  # the last attempt's
        history += f"\n{job} returned {status}: {[(o.key.rsplit('/', 2)[-2], o.status) for o in outcomes]}"
    if os.environ.get("ADAPTLIB_SLURM_VERBOSE"):
        print(history)
    assert summary.ok, f"{summary.report()}\n{history}"
    for job, done in done_before.items():
        assert 0 < len(done) < per_task, f"{job} was requeued after {len(done)} of {per_task} runs\n{history}"
    records = {f"{r['ArrayJobId']}_{r['ArrayTaskId']}": r for r in job_records(array)}
    assert {job: records[job]["Restarts"] for job in done_before} == {job: "1" for job in done_before}, records
    assert all(records[job]["JobState"] == "COMPLETED" for job in done_before), records
    log = "".join(p.read_text() for p in logs.glob(f"{array}_1_0_log.*"))
    assert "Caught signal SIGUSR2" in log and "Requeued job" in log, log[-2000:]
    # each task's last attempt skipped the runs done before its requeue, and redid the run it was stopped in
    for job, done in done_before.items():
        _, outcomes = pickle.loads((logs / f"{job}_0_result.pkl").read_bytes())
        assert all(o.status == "done" for o in outcomes if o.key in done), history
        assert any(o.status == "ran" for o in outcomes), history
    started = collections.Counter(e["key"] for e in read_journal(results) if e["event"] == "start")
    for task in tasks:
        assert any(started[k] == 2 for k in task), f"no run of {task} was interrupted and redone\n{history}"
    assert summary.done_elsewhere >= sum(map(len, done_before.values())), f"{summary.report()}\n{history}"
    assert summary.ran + summary.done_elsewhere == SLOW_RUNS
    assert set(done_events(results).values()) == {1} and len(done_events(results)) == SLOW_RUNS, history
    assert table_text(results) == reference(reference_text(SLOW))
    print(f"requeued after {[len(d) for d in done_before.values()]} runs of {per_task}; "
          f"{summary.done_elsewhere} skipped on restart, {summary.ran} ran")


def test_failing_run_is_recorded_and_the_rest_of_its_task_completes(slurm_cluster, reference, tmp_path):
    """One array task of 12 runs, the 4 clip_adapter runs in its middle diverge: each is recorded in _failures/,
    the runs after them complete, and the task itself succeeds."""
    failing = "  clip_adapter: {train: {lr: 1.0e+30, max_steps: 20, warmup_epochs: 0}}"
    text = profile_text(FAST, "slurm-failure", runs_per_job=FAST_RUNS, mem_gb=1)
    text = text.replace("  clip_adapter: {}", failing)
    profile = write_profile(tmp_path, text)
    results = tmp_path / "results"
    (task,) = task_keys(profile, FAST_RUNS)
    methods = [spec.method for spec in load_profile(profile).expand()]
    assert methods.index("clip_adapter") > 0 and methods[-1] != "clip_adapter", methods
    summary = run_sweep(profile, results=results, progress=False, executor="slurm", echo=quiet)
    assert not summary.ok and not summary.worker_errors, summary.report()
    assert (summary.ran, summary.failed, len(summary.submitted)) == (FAST_RUNS - 4, 4, 1), summary.report()
    assert all("NonFiniteLossError" in f["error"] for f in summary.failures)
    records = sorted((results / "_failures").rglob("*.json"))
    assert len(records) == 4
    for path in records:
        record = json.loads(path.read_text())
        assert "loss became" in record["error"] and "Traceback" in record["traceback"]
    ok = [k for k, m in zip(task, methods) if m != "clip_adapter"]
    assert all(result_path(results, k).exists() for k in ok)  # the runs after the failing ones completed
    array = summary.submitted[0].split("_")[0]
    wait_gone(array)
    assert {r["JobState"] for r in job_records(array)} == {"COMPLETED"}  # the task itself succeeded
    # the rows are the local sweep's rows of the same runs
    header, *rows = table_text(results).splitlines()
    ref_header, *ref_rows = reference(reference_text(FAST)).splitlines()
    assert header == ref_header and len(rows) == FAST_RUNS - 4 and set(rows) <= set(ref_rows)
