"""Learning-rate calibration: few-shot validation only, per shot count, grids extended until the choice is
interior, hybrids from their parts' calibrated rates; and the shipped profile holds what the calibration chose."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from adaptlib.runs import calibrate as C
from adaptlib.runs.profile import load_profile
from adaptlib.utils.paths import REPO_ROOT

PROFILE = """\
name: tiny
backbone: adaptlib-test
pretrained: null
run_defaults: {crop_scale: [1, 1], train: {schedule_per_epoch: false, epochs: 1000}}
datasets: [colour, shape]
shots: [1, 2]
seeds: [1]
methods:
  coop: {train: {lr: 0.01, max_steps: 3}}
  layernorm: {train: {lr: 0.1, max_steps: 3}}
  prompt+ln: {method: hybrid, parts: [[coop_prompt, {}], [layernorm, {}]],
              train: {part_lr: {coop_prompt: 0.01, layernorm: 0.1}, max_steps: 3}}
settings:
  few_shot: {methods: [coop, layernorm, prompt+ln]}
"""


@pytest.fixture
def profile(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(PROFILE)
    return load_profile(path)


def fake_run(peak_lr: dict[str, float], seen: list):
    """A stand-in for a training run: validation accuracy peaks at ``peak_lr[label]`` (log-quadratic)."""
    def one(args):
        label, spec, factor = args
        seen.append(spec)
        train = spec.train_overrides()
        lr = train["lr"] if "lr" in train else train["part_lr"]["coop_prompt"]
        acc = 0.9 - 0.05 * math.log10(lr / peak_lr[label]) ** 2
        return {"entry": label, "task": spec.dataset, "shots": spec.shots, "factor": factor, "val_accuracy": acc,
                "steps": 3, "seconds": 0.0}
    return one


@pytest.mark.parametrize("peak, extensions", [(0.01, 0), (0.5, 3), (1e-4, 4)])
def test_the_grid_is_extended_until_the_choice_is_interior(profile, monkeypatch, peak, extensions):
    seen: list = []
    monkeypatch.setattr(C, "_one", fake_run({"coop": peak}, seen))
    report = C.calibrate(profile, {"coop": {"shots": [1, 2]}}, ["colour", "shape"], jobs=0)
    for shots in (1, 2):
        c = report["chosen"][f"coop@{shots}"]
        assert not c["at_grid_edge"] and c["extensions"] == extensions
        assert c["lr"] == pytest.approx(peak, rel=0.5)  # the nearest half-decade point
        factors = sorted(float(f) for f in c["grid"])
        assert factors[0] < c["factor"] < factors[-1]
    # every run is the profile's own entry at seed 0, its cap and schedule, and is scored on validation only
    assert {s.seed for s in seen} == {C.SEED} and {s.train_overrides()["max_steps"] for s in seen} == {3}
    assert all(s.train_overrides()["schedule_per_epoch"] is False for s in seen)


def test_a_hybrid_searches_one_factor_on_its_parts_calibrated_rates(profile, monkeypatch):
    seen: list = []
    monkeypatch.setattr(C, "_one", fake_run({"coop": 0.01, "layernorm": 0.1, "prompt+ln": 0.1}, seen))
    chosen = {"coop@1": {"entry": "coop", "shots": 1, "lr": 0.02}, "layernorm@1": {"entry": "layernorm", "shots": 1,
                                                                                     "lr": 0.3}}
    entry = {"shots": [1], "part_methods": {"coop_prompt": "coop", "layernorm": "layernorm"}}
    report = C.calibrate(profile, {"prompt+ln": entry}, ["colour"], jobs=0, chosen=chosen)
    c = report["chosen"]["prompt+ln@1"]
    assert c["centre"] == {"coop_prompt": 0.02, "layernorm": 0.3} and not c["at_grid_edge"]
    rates = {tuple(sorted(s.train_overrides()["part_lr"].items())) for s in seen}
    assert all(math.isclose(dict(r)["layernorm"] / dict(r)["coop_prompt"], 15) for r in rates)  # ratio kept
    with pytest.raises(ValueError, match="calibrated at 2 shots first"):
        C.calibrate(profile, {"prompt+ln": {**entry, "shots": [2]}}, ["colour"], jobs=0, chosen=chosen)


def test_ties_go_to_the_centre_then_the_smaller_factor():
    rows = [{"factor": f, "val_accuracy": a} for f, a in [(0.1, 0.5), (0.316228, 0.7), (1.0, 0.7), (3.16228, 0.7)]]
    assert C.best_factor(rows)[0] == 1.0
    rows = [{"factor": f, "val_accuracy": a} for f, a in [(0.316228, 0.7), (3.16228, 0.7), (10.0, 0.1)]]
    assert C.best_factor(rows)[0] == 0.316228


def test_a_real_calibration_run_scores_the_few_shot_validation_set(profile):
    spec = C.calibration_spec(profile, "coop", "colour", 2, {"lr": 0.05})
    row = C._one(("coop", spec, 5.0))
    assert row["shots"] == 2 and row["steps"] == 3 and 0.0 <= row["val_accuracy"] <= 1.0
    assert spec.train_overrides()["lr"] == 0.05 and spec.seed == 0


# ------------------------------------------------------------------------------------------- the shipped file
CALIBRATION = REPO_ROOT / "profiles" / "embedded-calibration.json"
INPUT = REPO_ROOT / "profiles" / "embedded-calibration-input.json"


def test_the_embedded_calibration_has_every_entry_and_shot_count_and_no_edge_choice():
    report = json.loads(CALIBRATION.read_text())
    entries = json.loads(INPUT.read_text())["entries"]
    wanted = {f"{name}@{k}" for name, e in entries.items() for k in e["shots"]}
    assert wanted == set(report["chosen"])
    edges = [k for k, c in report["chosen"].items() if c["at_grid_edge"]]
    assert not edges, f"calibration choices at a grid edge: {edges}"
    for c in report["chosen"].values():
        grid = sorted(float(f) for f in c["grid"])
        assert grid[0] < c["factor"] < grid[-1]


def test_the_embedded_profile_holds_the_calibrated_rates():
    report = json.loads(CALIBRATION.read_text())
    profile = load_profile(REPO_ROOT / report["profile"])
    assert C.check_profile_matches(profile, report) == []
    # the other groups' entries of a calibrated method (drift, convergence) train at its 16-shot rate
    by16 = {c["entry"]: c["lr"] for c in report["chosen"].values() if c["shots"] == 16 and "lr" in c}
    for spec in profile.expand():
        # (runs under the 'fixed' selection train at the recipe's published rate instead)
        if spec.method in by16 and spec.shots == 16 and "lambda" not in spec.method_label \
                and spec.selection == "few_shot_val":
            assert spec.train_overrides()["lr"] == pytest.approx(by16[spec.method], rel=1e-4), spec.key()


def test_every_calibration_run_trained_at_its_entrys_cap_in_the_profile():
    """A cap raised in the profile after calibration leaves rates chosen for another budget: the file must be redone."""
    report = json.loads(CALIBRATION.read_text())
    profile = load_profile(REPO_ROOT / report["profile"])
    stale = set()
    for row in report["rows"]:
        cap = profile.method_spec(row["entry"], row["task"], row["shots"], 0).train_overrides()["max_steps"]
        if row["steps"] != cap:
            stale.add(f"{row['entry']}@{row['shots']}: {row['steps']} steps, the profile's cap is {cap}")
    assert not stale, sorted(stale)


def calibrated_once(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """(input, output) of a first `calibrate` of coop and layernorm at 1 shot on the tiny profile (runs faked)."""
    profile_path = tmp_path / "tiny.yaml"
    profile_path.write_text(PROFILE)
    spec = {"profile": str(profile_path), "entries": {"coop": {"shots": [1]}, "layernorm": {"shots": [1]}}}
    (tmp_path / "in.json").write_text(json.dumps(spec))
    out = tmp_path / "out.json"
    monkeypatch.setattr(C, "_one", fake_run({"coop": 0.01, "layernorm": 0.1}, []))
    assert C.main([str(tmp_path / "in.json"), str(out), "--jobs", "0"]) == 0
    return tmp_path / "in.json", out


def test_the_command_recalibrates_only_what_it_is_asked_and_keeps_the_rest(tmp_path, monkeypatch):
    _, out = calibrated_once(tmp_path, monkeypatch)
    profile_path = tmp_path / "tiny.yaml"
    first = json.loads(out.read_text())
    assert set(first["chosen"]) == {"coop@1", "layernorm@1"} and first["profile"] == str(profile_path)
    monkeypatch.setattr(C, "_one", fake_run({"coop": 0.1, "layernorm": 0.1}, []))
    assert C.main([str(tmp_path / "in.json"), str(out), "--jobs", "0", "--only", "coop"]) == 0
    second = json.loads(out.read_text())
    assert second["chosen"]["layernorm@1"] == first["chosen"]["layernorm@1"]
    assert second["chosen"]["coop@1"]["lr"] == pytest.approx(0.1, rel=0.5) != first["chosen"]["coop@1"]["lr"]
    assert len(second["rows"]) == len(first["rows"]) + len([r for r in second["rows"] if r["entry"] == "coop"]) - \
        len([r for r in first["rows"] if r["entry"] == "coop"])
    with pytest.raises(SystemExit, match="not in"):
        C.main([str(tmp_path / "in.json"), str(out), "--only", "cocoop"])


def test_the_embedded_calibration_was_made_on_the_released_checkpoint():
    """Rates chosen on other weights are not chosen on this backbone's few-shot validation set."""
    from adaptlib.backbones.pretrain import released_sha256

    report = json.loads(CALIBRATION.read_text())
    folder = REPO_ROOT / "data" / "backbones" / "adaptlib-tiny-seed0"
    assert report["backbone"]["sha256"] == released_sha256(folder)


EMBEDDED_PROFILE = PROFILE.replace("pretrained: null", "pretrained: embedded")


@pytest.mark.parametrize("recorded, warns", [("same", False), ("other", True), (None, False)])
def test_a_sweep_is_warned_when_the_calibration_used_other_weights(tmp_path, monkeypatch, recorded, warns):
    from adaptlib.backbones.pretrain import PretrainConfig, pretrain

    monkeypatch.setenv("ADAPTLIB_DATA_DIR", str(tmp_path / "data"))
    tiny = PretrainConfig(model="adaptlib-test", corpus_size=64, steps=1, clean_steps=0, batch_size=16,
                          warmup_steps=1, threads=1)
    card = pretrain(tiny, progress=False)
    (tmp_path / "tiny.yaml").write_text(EMBEDDED_PROFILE)
    profile = load_profile(tmp_path / "tiny.yaml")
    assert C.backbone_identity(profile)["sha256"] == card["sha256"]
    sha = {"same": card["sha256"], "other": "0" * 64, None: None}[recorded]
    backbone = {"name": "adaptlib-test", "pretrained": "embedded", "sha256": sha} if sha else None
    C.calibration_file(profile).write_text(json.dumps({"chosen": {}, "backbone": backbone}))
    warning = C.stale_calibration(profile)
    assert (warning is not None) == warns
    if warns:
        assert "tiny-calibration.json" in warning and "000000000000" in warning and "make calibrate" in warning


def test_a_partial_recalibration_refuses_to_keep_choices_made_on_other_weights(tmp_path, monkeypatch):
    _, out = calibrated_once(tmp_path, monkeypatch)
    report = json.loads(out.read_text())
    out.write_text(json.dumps({**report, "backbone": {"name": "adaptlib-test", "sha256": "0" * 64}}))
    with pytest.raises(SystemExit, match="other weights"):
        C.main([str(tmp_path / "in.json"), str(out), "--jobs", "0", "--only", "coop"])
