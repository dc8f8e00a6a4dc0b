"""Every bad input refused clearly, every fault survived (issue 17).

A table of bad inputs, each run through ``adaptlib.cli.main`` in-process on the tiny random-weight CLIP: each must
exit non-zero with a message that names the argument, option, key or file and says what to do, print no traceback
and write nothing into the results folder. Then the faults (damaged caches, edited result files, a full disk,
Ctrl-C, a closed pipe), each survived with the right result; then the newcomer's output. Only Ctrl-C and the
broken pipe need a child process.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from adaptlib.cli import main
from adaptlib.runs.store import result_files

TINY = ["--backbone", "adaptlib-test", "--pretrained", "random", "--quiet"]
FAST = ["--train", "max_steps=3", "--crop-scale", "1,1"]

PROFILE = """\
name: tiny
backbone: adaptlib-test
pretrained: random
run_defaults: {crop_scale: [1, 1], train: {max_steps: 3}}
datasets: [colour]
shots: [2]
seeds: [1]
methods:
  zeroshot: {}
  coop: {}
  clip_adapter: {}
settings:
  few_shot: {methods: [zeroshot, coop]}
"""


# ------------------------------------------------------------------------------------------------ helpers
def invoke(argv: list[str], capsys) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``adaptlib ARGV`` in this process, as the shell would see them."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse and the CLI's own SystemExit("error: ...")
        code = exc.code
        if isinstance(code, str):
            print(code, file=sys.stderr)
            code = 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def fill(argv: list[str], tmp: Path) -> list[str]:
    """``{tmp}`` -> the test's folder, ``{res}`` -> its results folder."""
    return [a.replace("{tmp}", str(tmp)).replace("{res}", str(tmp / "res")) for a in argv]


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def fail_writes(monkeypatch, under: Path, code: int = errno.ENOSPC) -> None:
    """From now on no file or folder can be created under ``under`` (disk full, or read-only with EROFS/EACCES):
    ``tempfile.mkstemp`` (every atomic write and the writability checks) and ``os.mkdir`` fail there."""
    under = os.path.abspath(under)
    real_mkstemp, real_mkdir = tempfile.mkstemp, os.mkdir

    def inside(path) -> bool:
        return path is not None and (os.path.abspath(path) + os.sep).startswith(under + os.sep)

    def mkstemp(suffix=None, prefix=None, dir=None, text=False):  # noqa: A002 - tempfile's own signature
        if inside(dir):
            raise OSError(code, os.strerror(code))
        return real_mkstemp(suffix, prefix, dir, text)

    def mkdir(path, *args, **kwargs):
        if inside(path):
            raise OSError(code, os.strerror(code), str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(os, "mkdir", mkdir)


@pytest.fixture(scope="module")
def shared_data(tmp_path_factory) -> Path:
    """One data folder for the cases that do not care about caches (the colour task is generated once)."""
    return tmp_path_factory.mktemp("shared-data")


# ------------------------------------------------------------------------------------------------ the table
@dataclass
class Case:
    """A bad input: the command (``{tmp}`` is the test's folder, ``{res}`` its results folder), the texts its
    message must hold, and what to set up before."""

    id: str
    argv: list[str]
    expect: tuple[str, ...]
    setup: Callable[[Path, object], None] | None = None
    files: dict[str, str] = field(default_factory=dict)  # name -> content, written into {tmp} first
    shared: bool = True  # use the shared data folder (False: the test's own, empty one)


def run_cmd(*extra: str, method: str = "coop", dataset: str = "colour", shots: str = "2") -> list[str]:
    return ["run", "--method", method, "--dataset", dataset, "--shots", shots, *TINY, *FAST, "--results", "{res}",
            *extra]


def sweep_cmd(profile: str = "{tmp}/tiny.yaml", *extra: str) -> list[str]:
    return ["sweep", profile, "--results", "{res}", "--quiet", *extra]


def damaged(kind: str) -> Callable[[Path, object], None]:
    def setup(tmp: Path, monkeypatch) -> None:
        from safetensors.torch import save_file

        from adaptlib.backbones import load_backbone

        good = tmp / "good.safetensors"
        save_file(load_backbone("adaptlib-test", None).model.state_dict(), str(good))
        data = good.read_bytes()
        path = tmp / "ckpt.safetensors"
        path.write_bytes({"truncated": data[:len(data) // 2], "garbage": b"\x00\xffnot a checkpoint" * 100,
                          "empty": b""}[kind])
    return setup


def damaged_embedded(tmp: Path, monkeypatch) -> None:
    folder = tmp / "data" / "backbones" / "adaptlib-test-seed0"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{broken")


def read_only_results(tmp: Path, monkeypatch) -> None:
    (tmp / "res").mkdir()
    fail_writes(monkeypatch, tmp / "res", errno.EROFS)


HYBRID = "method: hybrid\nlabel: mix\nparts:\n  - [coop_prompt, {n_ctx: 4}]\n  - [clip_adapter, {ratio: 0.5}]\n"
CROSS = "  cross_dataset: {datasets: [colour]}\n"

REFUSED = [
    # ---- tracebacks before issue 17
    Case("set-option-wrong-type", run_cmd("--set", "coop_prompt.n_ctx=abc"),
         ("'coop_prompt'", "'n_ctx'", "'abc'", "expected an integer")),
    Case("parts-option-without-value", run_cmd("--parts", "clip_adapter:ratio", method="hybrid"),
         ("'clip_adapter'", "'ratio'", "needs a value", "clip_adapter:OPTION=VALUE")),
    Case("config-option-wrong-type", run_cmd("--config", "{tmp}/h.yaml", method="hybrid"),
         ("'clip_adapter'", "'ratio'", "'high'", "expected a number"),
         files={"h.yaml": HYBRID.replace("ratio: 0.5", "ratio: high")}),
    Case("config-part-options-wrong-type", run_cmd("--config", "{tmp}/h.yaml", method="hybrid"),
         ("'coop_prompt'", "'n_ctx'", "'four'", "expected an integer"),
         files={"h.yaml": HYBRID + "part_options: {coop_prompt: {n_ctx: four}}\n"}),
    Case("profile-option-wrong-type", sweep_cmd(),
         ("tiny.yaml", "methods.clip_adapter", "'ratio'", "'high'", "expected a number"),
         files={"tiny.yaml": PROFILE.replace("clip_adapter: {}", "clip_adapter: {part_options: "
                                                                 "{clip_adapter: {ratio: high}}}")}),
    Case("profile-option-wrong-type-dry-run", sweep_cmd("{tmp}/tiny.yaml", "--dry-run"),
         ("tiny.yaml", "'ratio'", "'high'"),
         files={"tiny.yaml": PROFILE.replace("clip_adapter: {}", "clip_adapter: {part_options: "
                                                                 "{clip_adapter: {ratio: high}}}")}),
    Case("config-train-not-a-number", run_cmd("--config", "{tmp}/h.yaml", method="hybrid"),
         ("'lr'", "'abc'", "expected a number"), files={"h.yaml": HYBRID + "train: {lr: abc}\n"}),
    Case("profile-train-not-a-number", sweep_cmd(),
         ("tiny.yaml", "methods.coop", "'lr'", "'fast'", "expected a number"),
         files={"tiny.yaml": PROFILE.replace("coop: {}", "coop: {train: {lr: fast}}")}),
    Case("pretrained-truncated-safetensors", run_cmd("--pretrained", "{tmp}/ckpt.safetensors"),
         ("ckpt.safetensors", "damaged", "download it again"), setup=damaged("truncated")),
    Case("pretrained-garbage-safetensors", run_cmd("--pretrained", "{tmp}/ckpt.safetensors"),
         ("ckpt.safetensors", "damaged", "download it again"), setup=damaged("garbage")),
    Case("pretrained-empty-safetensors", run_cmd("--pretrained", "{tmp}/ckpt.safetensors"),
         ("ckpt.safetensors", "damaged", "download it again"), setup=damaged("empty")),
    Case("embedded-backbone-damaged", run_cmd("--pretrained", "embedded"),
         ("adaptlib-test-seed0/model.safetensors", "damaged", "adaptlib pretrain --force", "make pretrain"),
         setup=damaged_embedded, shared=False),
    Case("embedded-backbone-damaged-sweep", sweep_cmd("{tmp}/tiny.yaml", "--dry-run"),
         ("adaptlib-test-seed0/model.safetensors", "adaptlib pretrain --force"), setup=damaged_embedded,
         shared=False, files={"tiny.yaml": PROFILE.replace("pretrained: random", "pretrained: embedded")}),
    # ---- accepted silently before issue 17
    Case("shots-zero", run_cmd(shots="0"), ("shots", ">= 1", "--method zeroshot")),
    Case("shots-negative", run_cmd(shots="-3"), ("shots", ">= 1", "-3")),
    Case("part-option-out-of-range", run_cmd("--parts", "clip_adapter:ratio=-5", method="hybrid"),
         ("'clip_adapter'", "'ratio'", "-5", "out of range", "[0, 1]")),
    Case("lora-dropout-out-of-range", run_cmd("--set", "lora.dropout=1", method="clip_lora"),
         ("'lora'", "'dropout'", "[0, 1)")),
    Case("coop-n-ctx-zero", run_cmd("--set", "coop_prompt.n_ctx=0"), ("'coop_prompt'", "'n_ctx'", ">= 1")),
    Case("ensemble-alpha-out-of-range", run_cmd("--set", "adaptive_ensemble.alpha=2", method="apex"),
         ("'adaptive_ensemble'", "'alpha'", "'adaptive' or a value in [0, 1]")),
    Case("profile-option-out-of-range", sweep_cmd(), ("tiny.yaml", "'ratio'", "[0, 1]"),
         files={"tiny.yaml": PROFILE.replace("clip_adapter: {}", "clip_adapter: {part_options: "
                                                                 "{clip_adapter: {ratio: 7}}}")}),
    Case("method-with-parts", run_cmd("--parts", "clip_adapter"), ("'coop'", "'clip_adapter'", "--method hybrid")),
    Case("config-method-conflict", run_cmd("--config", "{tmp}/h.yaml"), ("--method 'coop'", "'hybrid'", "conflicts"),
         files={"h.yaml": HYBRID}),
    Case("parts-and-config-parts", run_cmd("--config", "{tmp}/h.yaml", "--parts", "layernorm", method="hybrid"),
         ("--parts", "h.yaml", "keep one"), files={"h.yaml": HYBRID}),
    Case("cross-dataset-without-eval", run_cmd("--setting", "cross_dataset"), ("cross_dataset", "--eval-datasets")),
    Case("eval-datasets-in-few-shot", run_cmd("--eval-datasets", "shape"),
         ("--eval-datasets", "'few_shot'", "--setting cross_dataset")),
    Case("eval-datasets-in-base-to-new", run_cmd("--eval-datasets", "shape", "--setting", "base_to_new"),
         ("--eval-datasets", "'base_to_new'")),
    Case("profile-cross-dataset-without-eval", sweep_cmd(), ("tiny.yaml", "cross_dataset", "eval_datasets"),
         files={"tiny.yaml": PROFILE + CROSS}),
    Case("config-unknown-key", run_cmd("--config", "{tmp}/h.yaml", method="hybrid"),
         ("h.yaml", "'lable'", "Did you mean 'label'"), files={"h.yaml": HYBRID.replace("label:", "lable:")}),
    Case("config-parts-malformed", run_cmd("--config", "{tmp}/h.yaml", method="hybrid"),
         ("h.yaml", "parts[1]", "[part name, {options}]"),
         files={"h.yaml": HYBRID.replace("[clip_adapter, {ratio: 0.5}]", "[clip_adapter, 0.5]")}),
    Case("dry-run-shots-above-class-size", sweep_cmd("{tmp}/tiny.yaml", "--dry-run"),
         ("tiny.yaml", "shots [99]", "use at most 40 shots"), files={"tiny.yaml": PROFILE.replace("[2]", "[99]")}),
    Case("dry-run-jobs-zero", sweep_cmd("{tmp}/tiny.yaml", "--dry-run", "--jobs", "0"), ("--jobs",),
         files={"tiny.yaml": PROFILE}),
    Case("crop-scale-not-numbers", run_cmd("--crop-scale", "abc"), ("--crop-scale", "MIN,MAX", "'abc'")),
    Case("crop-scale-out-of-range", run_cmd("--crop-scale", "0.5,2"), ("--crop-scale", "0 < MIN <= MAX <= 1")),
    Case("results-into-read-only-store", ["results", "--results", "{tmp}/store"], ("store", "--out DIR"),
         setup=lambda tmp, mp: ((tmp / "store").mkdir(), fail_writes(mp, tmp / "store", errno.EROFS))),
    Case("run-into-read-only-results", run_cmd(), ("res", "not writable", "--results DIR"),
         setup=read_only_results, shared=False),
    # ---- refused clearly already (they stay so)
    Case("unknown-method", run_cmd(method="copo"), ("'copo'", "Did you mean 'coop'")),
    Case("unknown-part", run_cmd("--parts", "clip_adaptor", method="hybrid"),
         ("'clip_adaptor'", "Did you mean 'clip_adapter'")),
    Case("unknown-part-option", run_cmd("--set", "coop_prompt.n_ctxx=4"), ("'n_ctxx'", "did you mean 'n_ctx'")),
    Case("option-for-a-part-the-method-lacks", run_cmd("--set", "clip_adapter.ratio=0.5"),
         ("'clip_adapter'", "'coop'", "its parts")),
    Case("set-without-part", run_cmd("--set", "n_ctx=4"), ("--set", "PART.OPTION=VALUE")),
    Case("unknown-train-option", run_cmd("--train", "lrr=0.1"), ("'lrr'", "did you mean 'lr'")),
    Case("train-out-of-range", run_cmd("--train", "max_steps=0"), ("'max_steps'", ">= 1")),
    Case("hybrid-without-parts", run_cmd(method="hybrid"), ("'hybrid'", "needs parts", "--parts")),
    Case("unknown-dataset", run_cmd(dataset="colours"), ("'colours'", "Did you mean 'colour'")),
    Case("bad-dial", run_cmd(dataset="colour@inter=2"), ("inter_class_distance", "[0, 1]")),
    Case("unknown-setting", run_cmd("--setting", "few-shot"), ("'few-shot'", "Did you mean 'few_shot'")),
    Case("too-many-shots", run_cmd(shots="99"), ("fewer than the 99 requested", "--shots")),
    Case("shots-not-a-number", run_cmd(shots="abc"), ("--shots", "'abc'")),
    Case("missing-checkpoint", run_cmd("--pretrained", "{tmp}/nope.pt"), ("nope.pt", "neither a tag")),
    Case("missing-config-file", run_cmd("--config", "{tmp}/nope.yaml", method="hybrid"),
         ("nope.yaml", "does not exist")),
    Case("config-not-yaml", run_cmd("--config", "{tmp}/h.yaml", method="hybrid"), ("h.yaml", "not valid YAML"),
         files={"h.yaml": "parts: [coop_prompt\n"}),
    Case("non-finite-loss", run_cmd("--train", "lr=1e30", "--train", "max_steps=50", "--train", "warmup_epochs=0",
                                    method="clip_adapter"), ("loss became", "no result is written")),
    Case("profile-unknown-method", sweep_cmd(), ("tiny.yaml", "'copo'", "Did you mean 'coop'"),
         files={"tiny.yaml": PROFILE.replace("  coop: {}", "  copo: {}").replace("[zeroshot, coop]",
                                                                                  "[zeroshot]")}),
    Case("missing-profile", sweep_cmd("{tmp}/nope.yaml"), ("nope.yaml", "does not exist")),
    Case("results-of-missing-store", ["results", "--results", "{tmp}/nowhere"], ("nowhere", "run a sweep first")),
    Case("data-check-missing-root", ["data", "check", "--root", "{tmp}/nowhere"], ("nowhere", "does not exist")),
]


@pytest.mark.parametrize("case", REFUSED, ids=[c.id for c in REFUSED])
def test_bad_input_is_refused_clearly(case: Case, tmp_path, monkeypatch, capsys, shared_data):
    if case.shared:
        monkeypatch.setenv("ADAPTLIB_DATA_DIR", str(shared_data))
    for name, text in case.files.items():
        (tmp_path / name).write_text(text)
    if case.setup:
        case.setup(tmp_path, monkeypatch)
    watched = [tmp_path / "res", tmp_path / "store"]
    before = {p: files_under(p) for p in watched}
    code, out, err = invoke(fill(case.argv, tmp_path), capsys)
    text = out + err
    assert code not in (0, None), text
    for expected in case.expect:
        assert expected in text, f"{expected!r} not in the message:\n{text}"
    assert "Traceback" not in text
    assert {p: files_under(p) for p in watched} == before, "a refused input wrote files"
    if case.id == "run-into-read-only-results":
        assert not (tmp_path / "data" / "cache").exists(), "the run must fail before it loads or trains anything"


# ------------------------------------------------------------------------------------------------ accepted
def test_numbers_as_papers_write_them_are_accepted(tmp_path, monkeypatch, capsys, shared_data):
    monkeypatch.setenv("ADAPTLIB_DATA_DIR", str(shared_data))
    from adaptlib.runs.profile import load_profile

    (tmp_path / "h.yaml").write_text(HYBRID + "train: {lr: 2e-4, warmup_lr: 1E-5}\n"
                                     "part_options: {clip_adapter: {ratio: '2e-1'}}\n")
    code, out, err = invoke(fill(run_cmd("--config", "{tmp}/h.yaml", method="hybrid"), tmp_path), capsys)
    assert code == 0, err
    record = json.loads(next(result_files(tmp_path / "res")).read_text())
    assert record["recipe"]["train"]["lr"] == 2e-4 and record["recipe"]["train"]["warmup_lr"] == 1e-5
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE.replace("coop: {}", "coop: {train: {lr: 2e-4, momentum: '0.9'}}"))
    spec = next(s for s in load_profile(profile).expand() if s.method == "coop")
    assert spec.train_overrides() == {"max_steps": 3, "lr": 2e-4, "momentum": 0.9}


# ------------------------------------------------------------------------------------------------ faults
def _run(tmp_path: Path, capsys, *extra: str, method: str = "coop", results: str = "res") -> tuple[int, str, dict]:
    argv = ["run", "--method", method, "--dataset", "colour", "--shots", "2", *TINY, *FAST,
            "--results", str(tmp_path / results), *extra]
    code, out, err = invoke(argv, capsys)
    assert "Traceback" not in out + err
    records = [json.loads(p.read_text()) for p in result_files(tmp_path / results)]
    return code, out + err, (records[-1]["metrics"] if records else {})


def test_truncated_embedded_task_cache_is_removed_and_regenerated(tmp_path, capsys):
    code, _, reference = _run(tmp_path, capsys, method="zeroshot", results="a")
    assert code == 0
    (npz,) = (tmp_path / "data" / "cache" / "embedded").glob("*.npz")
    for damage in (lambda b: b[: len(b) // 2], lambda b: b"garbage" * 10, lambda b: b""):
        npz.write_bytes(damage(npz.read_bytes()))
        code, text, metrics = _run(tmp_path, capsys, method="zeroshot", results=f"b{len(list(tmp_path.iterdir()))}")
        assert code == 0 and metrics == reference, text
        import numpy as np

        with np.load(npz) as z:  # the cache was written again, whole
            assert "test_images" in z.files


def test_damaged_feature_and_few_shot_caches_are_recomputed(tmp_path, capsys):
    code, _, reference = _run(tmp_path, capsys, "--train", "max_steps=2", method="clip_adapter", results="a")
    assert code == 0
    features = list((tmp_path / "data" / "cache" / "features").rglob("*.safetensors"))
    subsets = list((tmp_path / "data" / "cache" / "fewshot").rglob("*.json"))
    assert len(features) > 10 and subsets
    for i, path in enumerate(features + subsets):
        path.write_bytes(path.read_bytes()[: 40] if i % 2 else b"\x00garbage")
    code, text, metrics = _run(tmp_path, capsys, "--train", "max_steps=2", method="clip_adapter", results="b")
    assert code == 0 and metrics == reference, text


def test_edited_truncated_and_misplaced_result_files_are_quarantined_and_redone(tmp_path, capsys):
    from adaptlib.runs.sweep import run_sweep
    from adaptlib.runs.table import write_tables

    profile = tmp_path / "tiny.yaml"
    profile.write_text(PROFILE.replace("shots: [2]", "shots: [1, 2]").replace("seeds: [1]", "seeds: [1, 2, 3]")
                       .replace("[zeroshot, coop]", "[zeroshot]"))
    store = tmp_path / "store"
    assert run_sweep(profile, results=store, progress=False).ran == 6
    write_tables(store)
    reference = (store / "results.csv").read_text()
    assert "content_hash" not in reference.splitlines()[0]  # the table holds identity and metrics only
    files = sorted(result_files(store))
    edited = json.loads(files[0].read_text())
    edited["metrics"]["accuracy"] = 0.99  # edited by hand: its config still matches, its content does not
    files[0].write_text(json.dumps(edited, indent=2))
    files[1].write_text(files[1].read_text()[:60])  # truncated
    files[2].write_bytes(b"\x00\xffgarbage")  # garbage
    files[3].write_text(files[4].read_text())  # another run's result: misplaced
    code, out, err = invoke(["results", "--results", str(store), "--out", str(tmp_path / "tables")], capsys)
    assert code == 0 and "2 runs" in out and "Traceback" not in err
    assert f"{files[0]}: its content does not match its content_hash" in err
    assert "does not parse" in err and "holds run" in err
    summary = run_sweep(profile, results=store, progress=False)
    assert (summary.ran, summary.already_done, len(summary.invalid)) == (4, 2, 4)
    assert len(list((store / "_invalid").rglob("*.json"))) == 4
    write_tables(store)
    assert (store / "results.csv").read_text() == reference


def test_unwritable_caches_are_a_warning_and_the_run_goes_on(tmp_path, monkeypatch, capsys):
    from adaptlib.utils import atomic

    monkeypatch.setattr(atomic, "_WARNED", set())
    monkeypatch.setenv("ADAPTLIB_DATA_DIR", str(tmp_path / "data-ok"))
    code, _, reference = _run(tmp_path, capsys, method="clip_adapter", results="a")
    assert code == 0
    monkeypatch.setenv("ADAPTLIB_DATA_DIR", str(tmp_path / "data-full"))
    fail_writes(monkeypatch, tmp_path / "data-full", errno.ENOSPC)
    code, text, metrics = _run(tmp_path, capsys, method="clip_adapter", results="b")
    assert code == 0 and metrics == reference, text
    for cache in ("embedded-task cache", "few-shot subset cache", "feature cache"):
        assert f"warning: could not write the {cache}" in text and "No space left on device" in text
    assert not files_under(tmp_path / "data-full")


def test_a_full_disk_at_the_result_names_the_file_and_writes_nothing(tmp_path, monkeypatch, capsys):
    fail_writes(monkeypatch, tmp_path / "res", errno.ENOSPC)
    code, text, _ = _run(tmp_path, capsys, method="zeroshot")
    assert code == 2
    assert f"could not write {tmp_path / 'res'}" in text and ".json: No space left on device" in text
    assert "free space" in text and "no result written" in text
    assert not files_under(tmp_path / "res")


def test_a_full_disk_at_the_journal_names_it_and_leaves_no_empty_journal(tmp_path, monkeypatch):
    from adaptlib.runs.store import journal
    from adaptlib.utils.atomic import WriteError

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(WriteError, match="_journal.jsonl: No space left on device"):
        journal(tmp_path, "start", "some/key", "sweep")
    monkeypatch.undo()
    assert not (tmp_path / "_journal.jsonl").exists()


def _child(args: list[str], data: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "ADAPTLIB_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1"}
    # a child inherits an ignored SIGINT from its parent (an in-process sweep earlier in the session may have left
    # it ignored): give it the default handler, as an interactive shell does
    return subprocess.Popen([sys.executable, "-m", "adaptlib.cli", *args], env=env, text=True,
                            stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                            **kwargs)


def test_ctrl_c_prints_one_line_exits_130_and_leaves_nothing(tmp_path):
    data, res = tmp_path / "data", tmp_path / "res"
    proc = _child(["run", "--method", "layernorm", "--dataset", "colour", "--shots", "2", *TINY, "--crop-scale", "1,1",
                   "--train", "epochs=2000", "--results", str(res)], data, stdout=subprocess.PIPE)
    deadline = time.monotonic() + 90
    while not list((data / "cache" / "fewshot").rglob("*.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    time.sleep(1.0)  # training has started
    for _ in range(3):  # as a user would press Ctrl-C again if the first one landed inside a long C call
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=20)
            break
        except subprocess.TimeoutExpired:
            continue
    else:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"three SIGINTs did not stop the run: {out} {err}")
    assert proc.returncode == 130, out + err
    assert err.strip().splitlines()[-1] == "interrupted; no result written"
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert not files_under(res)
    assert not [p for p in files_under(data) if p.name.endswith(".tmp")]  # no half-written cache either


def test_dry_run_into_a_closed_pipe_exits_0_without_broken_pipe(tmp_path):
    profile = tmp_path / "tiny.yaml"
    profile.write_text(PROFILE.replace("seeds: [1]", f"seeds: {list(range(1, 200))}"))
    proc = _child(["sweep", str(profile), "--dry-run", "--results", str(tmp_path / "res")], tmp_path / "data",
                  stdout=subprocess.PIPE)
    proc.stdout.close()  # as `| head -1` does once it has its line: every write of the sweep now meets EPIPE
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert proc.returncode == 0, err
    assert "Broken pipe" not in err and "Traceback" not in err and "BrokenPipeError" not in err


# ------------------------------------------------------------------------------------------------ newcomers
def test_run_help_shows_defaults(capsys):
    code, out, _ = invoke(["run", "--help"], capsys)
    assert code == 0
    text = " ".join(out.split())
    for default in ("(default: 16)", "(default: 1)", "(default: few_shot)", "(default: results/runs)",
                    "(default: auto)", "--profile", "paper recipe"):
        assert default in text


def test_run_output_names_settings_shots_and_drift_plainly(tmp_path, monkeypatch, capsys, shared_data):
    monkeypatch.setenv("ADAPTLIB_DATA_DIR", str(shared_data))
    code, out, _ = invoke(["run", "--method", "zeroshot", "--dataset", "colour", *TINY, "--results",
                           str(tmp_path / "res")], capsys)  # default --shots 16
    assert code == 0 and "16 shots" not in out and "zero-shot: no training images" in out
    assert "settings: zeroshot's paper recipe (no gradient training)" in out
    code, out, _ = invoke(fill(run_cmd(), tmp_path), capsys)
    assert code == 0
    record = json.loads(next(p for p in result_files(tmp_path / "res") if "/coop/" in str(p)).read_text())
    metrics = record["metrics"]
    assert f"accuracy {100 * metrics['accuracy']:.2f}%" in out
    assert f"image {metrics['image_feature_drift']:.4f}, text {metrics['text_feature_drift']:.4f}" in out
    assert "settings: coop's paper recipe (sgd lr 0.002" in out and "crop scale 1-1" in out


def test_frozen_encoder_run_shows_one_encode_bar_for_all_views(tmp_path, monkeypatch, capsys, shared_data):
    monkeypatch.setenv("ADAPTLIB_DATA_DIR", str(tmp_path / "data"))
    argv = ["run", "--method", "clip_adapter", "--dataset", "colour", "--shots", "2", "--backbone", "adaptlib-test",
            "--pretrained", "random", *FAST, "--results", str(tmp_path / "res")]  # progress bars on
    code, _, err = invoke(argv, capsys)
    assert code == 0
    assert "(10 views)" in err and "view 1/10" not in err and "view 2/10" not in err


def test_run_with_a_profile_is_the_sweeps_run(tmp_path, monkeypatch, capsys, shared_data):
    monkeypatch.setenv("ADAPTLIB_DATA_DIR", str(shared_data))
    from adaptlib.runs.profile import load_profile

    profile = tmp_path / "tiny.yaml"
    profile.write_text(PROFILE.replace("coop: {}", "coop: {train: {lr: 0.01}}"))
    code, out, err = invoke(["run", "--profile", str(profile), "--method", "coop", "--dataset", "colour", "--shots",
                             "2", "--quiet", "--results", str(tmp_path / "res")], capsys)
    assert code == 0, err
    assert "settings: profile tiny's settings for coop (sgd lr 0.01" in out
    expected = load_profile(profile).method_spec("coop", "colour", 2, 1)
    (path,) = result_files(tmp_path / "res")
    assert json.loads(path.read_text())["key"] == expected.key()


def test_dry_run_says_how_many_more(tmp_path, capsys):
    profile = tmp_path / "tiny.yaml"
    profile.write_text(PROFILE.replace("seeds: [1]", f"seeds: {list(range(1, 16))}"))  # 2 x 15 = 30 runs
    code, out, _ = invoke(["sweep", str(profile), "--dry-run", "--results", str(tmp_path / "res")], capsys)
    assert code == 0 and "30 to run" in out and out.count("  to run: ") == 20 and "... and 10 more" in out
    assert not (tmp_path / "res").exists()


def test_data_check_lists_problems_and_shows_progress(tmp_path, monkeypatch, capsys):
    from adaptlib.data import check
    from adaptlib.data.benchmarks.fixtures import build_fixture_root

    build_fixture_root(tmp_path / "root", ["dtd"])
    broken = sorted((tmp_path / "root" / "dtd" / "images").glob("*/*.jpg"))
    broken[0].unlink()
    broken[1].write_bytes(b"\xff\xd8 truncated")
    monkeypatch.setattr(check, "PROGRESS_FROM", 1)
    code, out, err = invoke(["data", "check", "--root", str(tmp_path / "root"), "--datasets", "dtd"], capsys)
    assert code == 1 and "Traceback" not in out + err
    assert f"missing image {broken[0]}" in out and f"unreadable image {broken[1]}" in out
    assert "checking dtd" in err


FAULTS = ("test_truncated_embedded_task_cache_is_removed_and_regenerated",
          "test_damaged_feature_and_few_shot_caches_are_recomputed",
          "test_edited_truncated_and_misplaced_result_files_are_quarantined_and_redone",
          "test_unwritable_caches_are_a_warning_and_the_run_goes_on",
          "test_a_full_disk_at_the_result_names_the_file_and_writes_nothing",
          "test_a_full_disk_at_the_journal_names_it_and_leaves_no_empty_journal",
          "test_ctrl_c_prints_one_line_exits_130_and_leaves_nothing",
          "test_dry_run_into_a_closed_pipe_exits_0_without_broken_pipe")


def test_counts():
    """The table's size, for the record (issue 17's closing note)."""
    assert all(callable(globals().get(name)) for name in FAULTS)
    print(f"bad inputs refused clearly: {len(REFUSED)}; faults survived: {len(FAULTS)}")
    assert len({c.id for c in REFUSED}) == len(REFUSED) >= 50
