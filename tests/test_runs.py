"""Running methods end to end on a tiny random CLIP: baselines, determinism, the CLI, failures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from adaptlib.cli import main
from adaptlib.methods.parts.linear_head import LinearHeadConfig, search_c
from adaptlib.runs.run import RunContext, execute
from adaptlib.runs.spec import RunSpec
from adaptlib.training.evaluate import expected_calibration_error
from adaptlib.training.loop import NonFiniteLossError

TINY = dict(backbone="adaptlib-test", pretrained=None)


def spec(method, **kw):
    base = dict(dataset="colour", shots=2, seed=1, crop_scale=(1.0, 1.0), train={"max_steps": 3}, **TINY)
    base.update(kw)
    return RunSpec(method, **base)


def test_zero_shot_matches_manual_classifier():
    from adaptlib.backbones import load_backbone
    from adaptlib.backbones.images import encode_image_arrays
    from adaptlib.backbones.text import zero_shot_classifier
    from adaptlib.data.registry import get_dataset

    result = execute(spec("zeroshot"))
    bb = load_backbone("adaptlib-test", None)
    ds = get_dataset("colour")
    x = ds.info["arrays"]["test"]
    y = np.array([s.label for s in ds.split("test")])
    manual = float(((encode_image_arrays(bb, x) @ zero_shot_classifier(bb, ds.classnames, ds.templates).T)
                    .argmax(1).numpy() == y).mean())
    assert result["metrics"]["accuracy"] == pytest.approx(manual, abs=1e-6)
    assert result["train"]["steps"] == 0 and result["trainable_parameters"] == 0


def test_linear_probe_search_follows_clip():
    g = np.random.default_rng(0)
    centres = g.normal(size=(3, 8)) * 3
    x = np.concatenate([centres[c] + g.normal(size=(10, 8)) for c in range(3)])
    y = np.repeat(np.arange(3), 10)
    c, acc, tried = search_c(x[::2], y[::2], x[1::2], y[1::2], LinearHeadConfig())
    log_cs = [lc for lc, _ in tried]
    assert {-6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0} <= set(log_cs)  # the initial log grid
    assert min(np.diff(sorted(log_cs))) == pytest.approx(0.125)  # refined to 8 steps per decade
    assert acc >= 0.9 and 1e-6 <= c <= 1e6


def test_linear_probe_run_beats_chance_on_a_separable_task():
    result = execute(spec("linear_probe", shots=8))
    assert result["metrics"]["accuracy"] > 2 / 8
    assert result["trainable_parameters"] == 8 * 33  # C x (E + 1)
    assert result["chosen"]["linear_head"]["C_tried"] >= 7


@pytest.mark.parametrize("method", ["coop", "clip_adapter", "layernorm", "apex"])
def test_a_seed_fixes_a_run(method):
    a, b = execute(spec(method)), execute(spec(method))
    assert a["metrics"] == b["metrics"] and a["train"]["epoch_loss"] == b["train"]["epoch_loss"]


def test_results_do_not_depend_on_the_feature_cache_state():
    first = execute(spec("coop"))  # fills the cache
    second = execute(spec("coop"))  # reads it
    assert first["metrics"] == second["metrics"]


def test_base_to_new_reports_base_new_and_hm():
    r = execute(spec("coop", setting="base_to_new"))
    m = r["metrics"]
    assert r["data"]["classes"] == 4
    assert m["hm"] == pytest.approx(2 * m["base_accuracy"] * m["new_accuracy"] / (m["base_accuracy"] + m["new_accuracy"]))
    lp = execute(spec("linear_probe", setting="base_to_new"))
    assert lp["metrics"]["new_accuracy"] is None and "no weights" in lp["metrics"]["new_note"]


def test_non_finite_loss_stops_the_run_and_writes_nothing(tmp_path, capsys):
    bad = spec("clip_adapter", train={"lr": 1e30, "max_steps": 50, "warmup_epochs": 0})
    with pytest.raises(NonFiniteLossError, match="no result is written"):
        execute(bad)
    code = main(["run", "--method", "clip_adapter", "--dataset", "colour", "--shots", "2", "--backbone",
                 "adaptlib-test", "--pretrained", "random", "--train", "lr=1e30", "--train", "max_steps=50",
                 "--train", "warmup_epochs=0", "--crop-scale", "1,1", "--results", str(tmp_path / "res"), "--quiet"])
    assert code != 0 and not any((tmp_path / "res").rglob("*.json"))
    assert "loss became" in capsys.readouterr().err


def test_cli_run_prints_accuracy_and_writes_one_result_file(tmp_path, capsys):
    code = main(["run", "--method", "zeroshot", "--dataset", "colour", "--shots", "2", "--seed", "1", "--backbone",
                 "adaptlib-test", "--pretrained", "random", "--results", str(tmp_path / "res"), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "result file" in out
    files = list((tmp_path / "res").rglob("*.json"))
    assert len(files) == 1
    record = json.loads(files[0].read_text())
    assert record["config"]["method"] == "zeroshot" and "torch" in record["versions"]
    assert record["wall_seconds"] > 0 and 0 <= record["metrics"]["accuracy"] <= 1


def test_cli_hybrid_from_parts_and_config(tmp_path, capsys):
    cfg = tmp_path / "hybrid.yaml"
    cfg.write_text("method: hybrid\nlabel: prompt+adapter\nparts:\n  - [coop_prompt, {n_ctx: 4}]\n"
                   "  - [clip_adapter, {ratio: 0.5}]\ntrain: {max_steps: 2}\n")
    args = ["--dataset", "colour", "--shots", "2", "--backbone", "adaptlib-test", "--pretrained", "random",
            "--results", str(tmp_path / "res"), "--quiet", "--crop-scale", "1,1"]
    assert main(["run", "--method", "hybrid", "--config", str(cfg), *args]) == 0
    assert main(["run", "--method", "hybrid", "--parts", "coop_prompt:n_ctx=4,layernorm:tower=image",
                 "--train", "max_steps=2", *args]) == 0
    records = [json.loads(p.read_text()) for p in (tmp_path / "res").rglob("*.json")]
    assert sorted(r["config"]["label"] for r in records) == ["", "prompt+adapter"]
    parts = sorted(tuple(p[0] for p in r["recipe"]["parts"]) for r in records)
    assert parts == [("coop_prompt", "clip_adapter"), ("coop_prompt", "layernorm")]


@pytest.mark.parametrize("argv, message", [
    (["--method", "copo"], "Did you mean 'coop'"),
    (["--dataset", "colours"], "Did you mean 'colour'"),
    (["--shots", "99"], "fewer than the 99 requested"),
    (["--setting", "few-shot"], "Did you mean 'few_shot'"),
])
def test_cli_errors_are_clear(tmp_path, capsys, argv, message):
    base = {"--method": "zeroshot", "--dataset": "colour", "--shots": "2", "--setting": "few_shot"}
    for flag, value in zip(argv[::2], argv[1::2]):
        base[flag] = value
    args = [x for kv in base.items() for x in kv]
    code = main(["run", *args, "--backbone", "adaptlib-test", "--pretrained", "random", "--quiet",
                 "--results", str(tmp_path / "res")])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "res").exists()


def test_params_command(capsys):
    assert main(["params", "--method", "coop", "--backbone", "adaptlib-test"]) == 0
    assert "512 trainable parameters" in capsys.readouterr().out  # 16 context vectors x width 32


@pytest.mark.parametrize("method", ["layernorm", "clip_lora", "bitfit"])
def test_a_run_that_tunes_the_image_encoder_caches_only_frozen_features(method):
    """The first run of a task on a fresh feature cache is one that changes the image encoder: the test features
    it caches after training (for its drift and any ensemble) are the frozen backbone's, so a frozen-feature run
    after it reads the same features as on a fresh cache, and the drift it reports is not zero."""
    spec = RunSpec(method, "shape", shots=2, seed=1, train={"max_steps": 4, "lr": 0.5}, **TINY)
    first = execute(spec)
    assert first["metrics"]["image_feature_drift"] > 1e-4
    after = execute(RunSpec("coop", "shape", shots=2, seed=1, train={"max_steps": 2}, **TINY))
    from adaptlib.utils.paths import cache_dir

    for f in cache_dir("features").rglob("*"):
        if f.is_file():
            f.unlink()
    fresh = execute(RunSpec("coop", "shape", shots=2, seed=1, train={"max_steps": 2}, **TINY))
    # equal up to float rounding: LoRA switched off computes attention through its own wrapper, not
    # nn.MultiheadAttention's kernel (features within ~1e-8)
    assert after["metrics"] == pytest.approx(fresh["metrics"], rel=1e-6, abs=1e-7)
    assert after["metrics"]["accuracy"] == fresh["metrics"]["accuracy"]


def test_prolip_trains_and_evaluates_on_cached_pooled_features():
    """A ProLIP run reads the pooled features of its views and of the test set from the cache (one entry per view,
    apart from the projected features'); its test accuracy is that of the trained projection run through the
    image encoder; a second run on the filled cache gives the same numbers."""
    from adaptlib.runs.run import Run, prepare, train_alone
    from adaptlib.training.evaluate import accuracy, encode_adapted, predict

    prolip = RunSpec("prolip", "shape", shots=2, seed=1, train={"max_steps": 5, "lr": 1e-2, "views": 3}, **TINY)
    prep = prepare(prolip, RunContext())
    run: Run = prep.run
    assert run.cached_mode and run.pooled_mode and prep.member.batches.pooled
    assert prep.member.batches.views.shape[1:] == (3, run.model.clip.visual.proj.shape[0])
    train_alone(prep)
    frozen, encoded = run.features_for(run.task, run.task.test, "test")
    adapted = encode_adapted(run.model, run.task, run.task.test, run.tf_cfg, run.device, 64, 0)
    torch.testing.assert_close(encoded, adapted, rtol=1e-4, atol=1e-5)
    y = run.labels(run.task.test)
    assert accuracy(predict(run.model, y, run.device, frozen, encoded), y) == \
        accuracy(predict(run.model, y, run.device, frozen, adapted), y)
    first, second = execute(prolip), execute(prolip)
    assert first["data"]["feature_cache"] and first["metrics"] == second["metrics"]
    assert first["metrics"]["image_feature_drift"] > 0


def test_calibration_metrics_by_hand():
    from adaptlib.training.evaluate import calibration_metrics

    # 4 images, 2 classes: confidences 0.9 (right), 0.6 (wrong), 0.8 (right), 0.55 (right)
    p = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55]])
    y = torch.tensor([0, 1, 1, 1])
    values, per_class, bins = calibration_metrics(p, y, ["a", "b"], bins=2)
    # bin (0.5, 1] holds all four: mean confidence 0.7125, accuracy 0.75
    assert values["ece"] == pytest.approx(abs(0.7125 - 0.75))
    assert bins["count"] == [0, 4] and bins["confidence"][0] is None and bins["accuracy"][0] is None
    assert bins["confidence"][1] == pytest.approx(0.7125) and bins["accuracy"][1] == pytest.approx(0.75)
    assert values["nll"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.8, 0.55])))
    assert per_class == {"a": 1.0, "b": pytest.approx(2 / 3)} and values["worst_class_accuracy"] == pytest.approx(2 / 3)
    # sigmoid scores are renormalised over the classes first
    values2, _, _ = calibration_metrics(p * 3, y, ["a", "b"], bins=2)
    assert values2["nll"] == pytest.approx(values["nll"])


@pytest.mark.parametrize("setting, prefixes, splits", [("few_shot", [""], ["test"]),
                                                       ("base_to_new", ["base_", "new_"], ["test-base", "test-new"])])
def test_every_run_records_calibration_and_per_class_accuracy(setting, prefixes, splits):
    r = execute(spec("coop", setting=setting))
    for prefix in prefixes:
        m = r["metrics"]
        assert 0 <= m[prefix + "ece"] <= 1 and m[prefix + "nll"] > 0
        assert 0 <= m[prefix + "worst_class_accuracy"] <= m[prefix + "accuracy"] + 1e-9
    assert list(r["per_class_accuracy"]) == splits
    few = r["per_class_accuracy"][splits[0]]
    accuracy = r["metrics"]["accuracy" if setting == "few_shot" else "base_accuracy"]
    assert min(few.values()) == pytest.approx(r["metrics"][prefixes[0] + "worst_class_accuracy"])
    assert len(few) == r["data"]["classes"] and 0 <= accuracy <= 1
    assert list(r["reliability"]) == splits
    for split, prefix in zip(splits, prefixes):
        bins = r["reliability"][split]
        assert len(bins["count"]) == 15 and sum(bins["count"]) > 0
        assert expected_calibration_error(bins) == pytest.approx(r["metrics"][prefix + "ece"], abs=1e-12)


def test_ece_from_bins_equals_the_direct_sum():
    """ECE from the reliability bins is the count-weighted |confidence - accuracy| of the images themselves."""
    from adaptlib.training.evaluate import calibration_metrics

    g = torch.Generator().manual_seed(0)
    p = torch.softmax(3 * torch.randn(500, 7, generator=g), dim=1)
    y = torch.randint(0, 7, (500,), generator=g)
    values, _, bins = calibration_metrics(p, y, list("abcdefg"))
    q = p.double() / p.double().sum(dim=1, keepdim=True)
    conf, pred = q.max(dim=1)
    correct = (pred == y).double()
    which = torch.clamp(torch.ceil(conf * 15).long() - 1, 0, 14)
    direct = sum(float((which == b).double().mean() * (conf[which == b].mean() - correct[which == b].mean()).abs())
                 for b in range(15) if (which == b).any())
    assert values["ece"] == pytest.approx(direct, abs=1e-12) and sum(bins["count"]) == 500


def test_cross_dataset_targets_record_their_calibration():
    """A run evaluated on shifted tasks records each target's ECE, NLL and worst-class accuracy and its bins."""
    targets = ("colour@shift=0.5", "colour@shift=1")
    r = execute(spec("coop", setting="cross_dataset", eval_datasets=targets))
    for target in targets:
        m = r["metrics"]
        assert 0 <= m[f"ece@{target}"] <= 1 and m[f"nll@{target}"] > 0
        assert m[f"worst_class_accuracy@{target}"] <= m[f"accuracy@{target}"] + 1e-9
        bins = r["reliability"][f"test@{target}"]
        assert expected_calibration_error(bins) == pytest.approx(m[f"ece@{target}"], abs=1e-12)
