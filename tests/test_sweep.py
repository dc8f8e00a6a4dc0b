"""Sweeps that survive faults: expansion, bad input, skip and redo, failures, SIGKILL and resume, concurrent
sweeps on one store, and the submitit executor path. Tiny random-weight CLIP, a few steps per run."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from adaptlib.cli import main
from adaptlib.runs.profile import ProfileError, for_shots, load_profile
from adaptlib.runs.store import read_journal, result_files
from adaptlib.runs.sweep import run_sweep
from adaptlib.runs.table import write_tables

PROFILE = """\
name: tiny
backbone: adaptlib-test
pretrained: random
run_defaults: {crop_scale: [1, 1], train: {max_steps: 3}}
datasets: [colour, shape]
shots: [1, 2]
seeds: [1]
methods:
  zeroshot: {}
  coop: {}
  clip_adapter: {}
  prompt+ln: {method: hybrid, parts: [[coop_prompt, {n_ctx: 4}], [layernorm, {}]]}
settings:
  few_shot: {methods: [coop, clip_adapter]}
  base_to_new: {shots: [2]}
groups:
  zeroshot: {setting: few_shot, methods: [zeroshot], shots: [2]}
  hybrids: {setting: few_shot, methods: [prompt+ln, coop], shots: [2]}
"""
RUNS = 8 + 4 + 2 + 2  # few-shot, base-to-new, zero-shot, the hybrid (the group's coop runs are few-shot runs)

# Slower runs for the kill test, so that a kill lands in the middle of the sweep.
SLOW_PROFILE = PROFILE.replace("max_steps: 3", "max_steps: 40").replace("seeds: [1]", "seeds: [1, 2]")


def write_profile(tmp_path: Path, text: str = PROFILE, name: str = "tiny.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def table_text(root: Path) -> str:
    write_tables(root)
    return (root / "results.csv").read_text()


def sweep_cli(profile: Path, results: Path, *extra: str) -> subprocess.Popen:
    """``adaptlib sweep`` in its own process group (so a kill reaches its workers too)."""
    return subprocess.Popen([sys.executable, "-m", "adaptlib.cli", "sweep", str(profile), "--results", str(results),
                             "--quiet", *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def done_events(root: Path) -> collections.Counter:
    return collections.Counter(e["key"] for e in read_journal(root) if e["event"] == "done")


# ------------------------------------------------------------------------------------------------ profiles
def test_profile_expands_each_run_once(tmp_path):
    profile = load_profile(write_profile(tmp_path))
    specs = profile.expand()
    assert len(specs) == RUNS and len({s.key() for s in specs}) == RUNS
    by_setting = collections.Counter(s.setting for s in specs)
    assert by_setting == {"few_shot": 12, "base_to_new": 4}
    hybrid = next(s for s in specs if s.method == "hybrid")
    assert hybrid.label == "prompt+ln" and hybrid.hybrid() == [("coop_prompt", {"n_ctx": 4}), ("layernorm", {})]
    assert all(s.train_overrides() == {"max_steps": 3} and s.crop_scale == (1.0, 1.0) for s in specs)
    b2n = {s.method for s in specs if s.setting == "base_to_new"}
    assert b2n == {"coop", "clip_adapter"}  # base_to_new defaults to the few-shot methods


def test_train_by_shots_sets_each_shot_counts_options(tmp_path):
    """Learning rates calibrated per shot count: the nearest lower key applies, over the entry's ``train``."""
    text = PROFILE.replace("  coop: {}", "  coop: {train: {lr: 0.5}, train_by_shots: {1: {lr: 0.1}, 2: {lr: 0.2}}}")
    specs = load_profile(write_profile(tmp_path, text)).expand()
    lrs = {(s.shots, s.train_overrides().get("lr")) for s in specs if s.method == "coop"}
    assert lrs == {(1, 0.1), (2, 0.2)}
    assert for_shots({1: {"lr": 0.1}, 4: {"lr": 0.4}}, 8) == {"lr": 0.4}
    assert for_shots({4: {"lr": 0.4}}, 1) == {"lr": 0.4} and for_shots({}, 3) == {}


@pytest.mark.parametrize("name", ["smoke", "embedded", "paper"])
def test_shipped_profiles_are_valid(name):
    from adaptlib.utils.paths import REPO_ROOT

    profile = load_profile(REPO_ROOT / "profiles" / f"{name}.yaml")
    specs = profile.expand()
    assert len(specs) > 100 and len({s.key() for s in specs}) == len(specs)


BAD_PROFILES = [
    ("methods:\n  zeroshot: {}\n", "methods:\n  zeroshot: {}\n  copo: {}\n", "Did you mean 'coop'"),
    ("datasets: [colour, shape]", "datasets: [colours, shape]", "Did you mean 'colour'"),
    ("backbone: adaptlib-test", "backbone: adaptlib-tset", "Did you mean 'adaptlib-test'"),
    ("  base_to_new: {shots: [2]}", "  base-to-new: {shots: [2]}", "Did you mean 'base_to_new'"),
    ("seeds: [1]", "seed: [1]", "Did you mean 'seeds'"),
    ("shots: [1, 2]", "shots: [1, 99]", "use at most 40 shots"),
    ("{n_ctx: 4}", "{n_ctxx: 4}", "did you mean 'n_ctx'"),
    ("max_steps: 3", "max_stepz: 3", "did you mean 'max_steps'"),
    ("seeds: [1]", "seeds: [1", "is not valid YAML"),
    ("seeds: [1]", "seeds: one", "must be a list of integers"),
    ("  coop: {}", "  coop: {train_by_shots: {two: {lr: 0.1}}}", "keys are shot counts"),
    ("  coop: {}", "  coop: {train_by_shots: {2: {lrr: 0.1}}}", "did you mean 'lr'"),
]


@pytest.mark.parametrize("old, new, message", BAD_PROFILES)
def test_bad_profiles_fail_before_any_run(tmp_path, capsys, old, new, message):
    assert old in PROFILE
    profile = write_profile(tmp_path, PROFILE.replace(old, new, 1))
    results = tmp_path / "results"
    assert main(["sweep", str(profile), "--results", str(results), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and str(profile) in err
    assert not results.exists() or not list(result_files(results))


def test_unwritable_results_directory_is_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = main(["sweep", str(write_profile(tmp_path)), "--results", str(blocker / "results"), "--quiet"])
    assert code == 2 and "is not writable" in capsys.readouterr().err


def test_missing_profile_file(tmp_path, capsys):
    assert main(["sweep", str(tmp_path / "nope.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ sweeps
def test_sweep_runs_everything_once_then_skips(tmp_path):
    profile, results = write_profile(tmp_path), tmp_path / "results"
    first = run_sweep(profile, results=results, progress=False)
    assert (first.total, first.ran, first.failed, first.already_done) == (RUNS, RUNS, 0, 0)
    assert len(list(result_files(results))) == RUNS
    second = run_sweep(profile, results=results, progress=False)
    assert (second.ran, second.already_done) == (0, RUNS)
    record = json.loads(next(result_files(results)).read_text())
    for field in ("config", "config_hash", "code_version", "versions", "device", "metrics", "wall_seconds"):
        assert field in record


def test_invalid_result_files_are_detected_and_redone(tmp_path):
    profile, results = write_profile(tmp_path), tmp_path / "results"
    run_sweep(profile, results=results, progress=False)
    reference = table_text(results)
    files = sorted(result_files(results))
    files[0].write_text(files[0].read_text()[:50])  # truncated
    files[1].write_bytes(b"\x00\xffgarbage")  # garbage
    files[2].write_text(files[3].read_text())  # another run's result
    edited = json.loads(files[4].read_text())
    edited["config"]["shots"] = 7  # edited by hand: no longer matches its hash
    files[4].write_text(json.dumps(edited))
    summary = run_sweep(profile, results=results, progress=False)
    assert summary.ran == 4 and summary.already_done == RUNS - 4 and summary.failed == 0
    assert len(list((results / "_invalid").rglob("*.json"))) == 4
    assert table_text(results) == reference
    print(f"corrupted 4 result files of {RUNS}: {len(summary.invalid)} reported, 4 moved aside, {summary.ran} redone")


def test_results_command_reports_invalid_files_and_leaves_them_out(tmp_path, capsys):
    profile, results = write_profile(tmp_path), tmp_path / "results"
    run_sweep(profile, results=results, progress=False)
    bad = next(result_files(results))
    bad.write_text("{not json")
    assert main(["results", "--results", str(results)]) == 0
    captured = capsys.readouterr()
    assert f"{RUNS - 1} runs" in captured.out and "does not parse" in captured.err and str(bad) in captured.err


def test_results_with_a_profile_leave_out_runs_it_no_longer_has(tmp_path, capsys):
    """After a profile changes (new learning rates: new run keys), the old runs' files stay in the store but
    leave the tables, so a notebook never mixes two versions of a method."""
    profile, results = write_profile(tmp_path), tmp_path / "results"
    run_sweep(profile, results=results, progress=False)
    changed = write_profile(tmp_path, PROFILE.replace("  coop: {}", "  coop: {train: {lr: 0.5}}"), "changed.yaml")
    run_sweep(changed, results=results, progress=False)
    n_coop = sum(s.method == "coop" for s in load_profile(changed).expand())
    assert len(list(result_files(results))) == RUNS + n_coop
    assert main(["results", "--results", str(results), "--profile", str(changed)]) == 0
    captured = capsys.readouterr()
    assert f"{RUNS} runs" in captured.out and f"{n_coop} result file(s) of runs the profile no longer has" in \
        captured.err
    df = pd.read_csv(results / "results.csv")
    assert len(df) == RUNS and set(df["key"]) == {s.key() for s in load_profile(changed).expand()}


def test_failing_runs_are_recorded_and_the_sweep_goes_on(tmp_path, capsys):
    text = PROFILE.replace("  clip_adapter: {}", "  clip_adapter: {train: {lr: 1.0e+30, max_steps: 20, warmup_epochs: 0}}")
    profile, results = write_profile(tmp_path, text), tmp_path / "results"
    code = main(["sweep", str(profile), "--results", str(results), "--quiet"])
    out = capsys.readouterr().out
    failing = 4 + 2  # clip_adapter: four few-shot runs and two base-to-new runs
    assert code == 1
    assert f"{RUNS - failing} ran" in out and f"{failing} failed" in out and "NonFiniteLossError" in out
    failures = list((results / "_failures").rglob("*.json"))
    assert len(failures) == failing and len(list(result_files(results))) == RUNS - failing
    record = json.loads(failures[0].read_text())
    assert "loss became" in record["error"] and "Traceback" in record["traceback"]
    # a new sweep retries them (and records them again), and never writes a result for them
    again = run_sweep(profile, results=results, progress=False)
    assert again.failed == failing and again.already_done == RUNS - failing


def test_a_cluster_requeue_signal_ends_the_job_and_is_not_recorded_as_a_failure(tmp_path, monkeypatch):
    from adaptlib.runs import worker
    from adaptlib.runs.profile import load_profile as load

    class UncompletedJobError(RuntimeError):  # stands for submitit's own exception, raised into the run
        pass

    UncompletedJobError.__module__ = "submitit.core.utils"

    def requeued(spec, ctx):
        raise UncompletedJobError("job is being requeued")

    monkeypatch.setattr(worker, "execute", requeued)
    profile = load(write_profile(tmp_path))
    spec = profile.expand()[0]
    opts = worker.WorkerOptions(results=str(tmp_path / "results"), sweep="s1")
    with pytest.raises(UncompletedJobError):
        worker.attempt(spec, opts, wait=False, emit=lambda *args: None)
    assert not (tmp_path / "results" / "_failures").exists()


# ------------------------------------------------------------------------------------------------ faults
@pytest.mark.parametrize("together", [False, True], ids=["one-by-one", "together"])
def test_sigkill_in_the_middle_then_resume_gives_the_uninterrupted_table(tmp_path, together):
    """Also with runs trained together: a resumed sweep forms other programs, and a run's numbers do not care."""
    profile = write_profile(tmp_path, SLOW_PROFILE)
    runs = len(load_profile(profile).expand())
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    assert run_sweep(profile, results=reference_dir, progress=False, jobs=2, together=together).ok
    reference = table_text(reference_dir)

    proc = sweep_cli(profile, killed_dir, "--jobs", "2", *(["--together"] if together else []))
    deadline = time.monotonic() + 120
    while len(list(result_files(killed_dir))) < runs // 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)  # let the kernel reap the workers and free their locks
    done_before = len(list(result_files(killed_dir)))
    started = {e["key"] for e in read_journal(killed_dir) if e["event"] == "start"}
    killed_in_flight = started - set(done_events(killed_dir))
    assert 0 < done_before < runs, "the kill must land in the middle of the sweep"
    assert killed_in_flight, "the kill must interrupt at least one run"

    resumed = run_sweep(profile, results=killed_dir, progress=False, jobs=2, together=together)
    assert resumed.ok and resumed.already_done == done_before and resumed.ran == runs - done_before
    assert len(list(result_files(killed_dir))) == runs
    assert table_text(killed_dir) == reference
    assert max(done_events(killed_dir).values()) == 1  # no run finished twice
    print(f"killed after {done_before}/{runs} runs with {len(killed_in_flight)} in flight; "
          f"resumed {resumed.ran} runs")


def test_two_sweeps_on_one_store_do_each_run_once(tmp_path):
    """Two sweep processes on one store: every run finishes once and the table is the one-process table. Whether
    both get work depends on the machine starting them at once (on a loaded one the second may start after the
    first is done), so the store is tried afresh up to three times until both did work; every try must be
    correct."""
    profile = write_profile(tmp_path)
    reference_dir = tmp_path / "reference"
    run_sweep(profile, results=reference_dir, progress=False)
    for attempt in range(3):
        shared = tmp_path / f"shared{attempt}"
        procs = [sweep_cli(profile, shared) for _ in range(2)]
        outputs = [p.communicate(timeout=300)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        done = done_events(shared)
        assert len(done) == RUNS and set(done.values()) == {1}  # each run finished once
        ran = [int(out.split(" ran,")[0].rsplit(" ", 1)[-1]) for out in outputs]
        assert sum(ran) == RUNS, outputs  # none twice
        assert table_text(shared) == table_text(reference_dir)
        if min(ran) > 0:
            break
    assert min(ran) > 0, f"in three tries the two sweeps never ran at the same time: {outputs}"
    print(f"two sweeps on one store: {ran[0]} + {ran[1]} runs of {RUNS}, each finished once (try {attempt + 1})")


def test_submitit_local_executor_runs_the_same_sweep(tmp_path):
    profile = write_profile(tmp_path)
    reference_dir, cluster_dir = tmp_path / "reference", tmp_path / "cluster"
    run_sweep(profile, results=reference_dir, progress=False)
    summary = run_sweep(profile, results=cluster_dir, progress=False, executor="local", jobs=2)
    assert summary.ok and summary.ran == RUNS and len(summary.submitted) == 2
    assert table_text(cluster_dir) == table_text(reference_dir)
    assert list((cluster_dir / "_submitit").glob("*_log.out"))
