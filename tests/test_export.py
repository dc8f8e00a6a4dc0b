"""Export and predict, for every method: a run that keeps its state, exported, loaded back (by adaptlib, and by plain
open_clip for the weights-only kind) gives the run's own test logits; predict writes them as a CSV; bad inputs get
clear errors. Table-driven over every recipe and every registered part, on the tiny random backbone."""

from __future__ import annotations

import csv
import json
import os
import shlex
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adaptlib.cli import _run_spec, build_parser, main
from adaptlib.data.transforms import image_batches
from adaptlib.methods import PARTS, RECIPES
from adaptlib.methods.step import Batch
from adaptlib.runs.export import (CONFIG_FILE, PARTS_KIND, WEIGHTS_KIND, export_run, image_logits, open_export,
                                  read_run)
from adaptlib.runs.predict import list_images, predict_images, write_predictions
from adaptlib.runs.run import RunContext, finish, prepare, train_alone
from adaptlib.runs.spec import RunSpec
from adaptlib.runs.store import state_dir, write_result

TINY = dict(backbone="adaptlib-test", pretrained=None)
# the kind each method exports as: weights only where every part acts through backbone weights
WEIGHTS_METHODS = {"zeroshot", "layernorm", "layernorm_image", "layernorm_text", "bitfit", "bitfit_image",
                   "bitfit_text", "clipfit", "clip_lora", "prolip"}
# hybrids: a prompt with in-place backbone weights, and LoRA beside a feature adapter (both in the parts kind)
HYBRIDS = {"coop_prompt+layernorm": (("coop_prompt", {"n_ctx": 2}), ("layernorm", {"tower": "image"})),
           "lora+clip_adapter": (("lora", {"tower": "image"}), ("clip_adapter", {}))}
# every registered part runs at least once: alone, as a hybrid, when no recipe uses it
UNCOVERED = sorted(set(PARTS) - {name for r in RECIPES.values() for name, _ in r.parts}
                   - {name for parts in HYBRIDS.values() for name, _ in parts})
CASES = sorted(RECIPES) + sorted(HYBRIDS) + [f"part:{p}" for p in UNCOVERED]


@pytest.fixture(scope="module")
def shared_data(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(autouse=True)
def isolated_data_dir(shared_data, monkeypatch):
    """Overrides conftest's: one temporary data folder for the module, so the task is generated once."""
    monkeypatch.setenv("ADAPTLIB_DATA_DIR", str(shared_data))
    torch.set_num_threads(1)
    yield shared_data


def spec_for(case: str) -> RunSpec:
    common = dict(dataset="shape", shots=1, seed=1, crop_scale=(1.0, 1.0), save_state=True,
                  train={"max_steps": 3, "lr": 0.05, "warmup_epochs": 0}, **TINY)  # enough to move every method
    if case in HYBRIDS:
        return RunSpec("hybrid", hybrid_parts=HYBRIDS[case], label=case.replace("+", "-"), **common)
    if case.startswith("part:"):
        return RunSpec("hybrid", hybrid_parts=((case.removeprefix("part:"), {}),), **common)
    return RunSpec(case, **common)


def run_kept(spec: RunSpec, root: Path):
    """Run ``spec`` with its state kept into store ``root`` (as a sweep writes it); (result file, its test logits
    from the run's own model and features, the run)."""
    prep = prepare(spec, RunContext(state_dir=str(state_dir(root))))
    result = finish(prep, train_alone(prep))
    result["state_file"] = os.path.relpath(result["state_file"], root)
    path = write_result(root, result)
    run, task = prep.run, prep.run.train_task
    frozen, encoded = run.features_for(task, task.test, "test")
    run.model.eval()
    with torch.no_grad():
        logits = run.model.predict(Batch(features=frozen, encoded=encoded)).float()
    labels = torch.tensor([s.label for s in task.test])
    assert float((logits.argmax(1) == labels).float().mean()) == pytest.approx(result["metrics"]["accuracy"])
    return path, logits, run


def test_images(run) -> torch.Tensor:
    task = run.train_task
    return torch.cat([x for x, _ in image_batches(task, task.test, run.tf_cfg, False, 1024)])


test_images.__test__ = False  # a helper, not a test


def plain_open_clip_logits(folder: Path, images: torch.Tensor, config: dict) -> torch.Tensor:
    """The weights-only export through open_clip alone: the weights file, then the class text features."""
    import open_clip
    from safetensors.torch import load_file

    clip = open_clip.create_model(config["backbone"]["name"], pretrained=str(folder / config["files"]["weights"]))
    clip.eval()
    text = load_file(str(folder / config["files"]["text_features"]))["text_features"]
    tokenizer = open_clip.get_tokenizer(config["backbone"]["name"])
    prompts = [t.format(c) for c in config["classnames"] for t in config["templates"]]
    with torch.no_grad():
        encoded = F.normalize(clip.encode_text(tokenizer(prompts)), dim=-1)
        recomputed = F.normalize(encoded.view(len(config["classnames"]), -1, encoded.shape[-1]).mean(1), dim=-1)
        torch.testing.assert_close(recomputed, text, atol=1e-5, rtol=1e-5)
        local = open_clip.create_model(f"local-dir:{folder}").eval()
        torch.testing.assert_close(local.encode_image(images), clip.encode_image(images), atol=0, rtol=0)
        return clip.logit_scale.exp() * F.normalize(clip.encode_image(images), dim=-1) @ text.t()


@pytest.mark.parametrize("case", CASES)
def test_export_reproduces_the_runs_test_logits_and_predict_round_trips(case, tmp_path):
    path, run_logits, run = run_kept(spec_for(case), tmp_path / "results")
    config = export_run(path, tmp_path / "export")
    expected_kind = WEIGHTS_KIND if case in WEIGHTS_METHODS else PARTS_KIND
    assert config["kind"] == expected_kind, config["why"]
    assert sorted(os.listdir(tmp_path)) == ["export", "results"]  # no temporary folder left

    exported = open_export(tmp_path / "export")
    assert exported.model.classnames == run.train_task.classnames
    images = test_images(run)
    if run.model.parts:  # the adapted model is not the frozen one, so the comparison below means something
        with run.model.frozen_view():
            assert (image_logits(run.model, images) - run_logits).abs().max() > 1e-2
    torch.testing.assert_close(image_logits(exported.model, images), run_logits, atol=1e-5, rtol=1e-5)
    if expected_kind == WEIGHTS_KIND:
        torch.testing.assert_close(plain_open_clip_logits(tmp_path / "export", images, config), run_logits,
                                   atol=1e-5, rtol=1e-5)

    folder = tmp_path / "images"
    folder.mkdir()
    for i, sample in enumerate(run.train_task.test[:3]):  # the first test images, as files
        run.train_task.load_image(sample).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not an image")
    rows = predict_images(exported, list_images(folder), batch_size=2, progress=False)
    out = write_predictions(rows, exported.model.classnames, tmp_path / "predictions.csv")
    with open(out, newline="") as f:
        table = list(csv.reader(f))
    classes = exported.model.classnames
    assert table[0] == ["path", "predicted", "error", *[f"p:{c}" for c in classes]]
    assert [Path(r[0]).name for r in table[1:]] == ["0.png", "1.png", "2.png", "broken.png"]
    assert all(len(r) == 3 + len(classes) for r in table)
    broken = table[-1]
    assert broken[1] == "" and broken[2] and all(v == "" for v in broken[3:])
    probs = np.array([[float(v) for v in r[3:]] for r in table[1:4]])
    for row, logits in zip(table[1:4], run_logits[:3]):  # the run's argmax (up to ties: a 1-shot probe is flat)
        assert logits[classes.index(row[1])] >= logits.max() - 1e-5
    # predict encodes in batches of 2: float error relative to the logits' size (GDA's are on a Mahalanobis scale)
    scale = max(1.0, float(run_logits[:3].abs().max()))
    np.testing.assert_allclose(probs, run_logits[:3].softmax(1).numpy(), atol=1e-5 * scale)


def test_the_table_covers_every_method_and_part():
    covered = {name for case in CASES for name, _ in
               (RECIPES[case].parts if case in RECIPES else spec_for(case).hybrid())}
    assert covered == set(PARTS) and WEIGHTS_METHODS <= set(RECIPES)


# ---------------------------------------------------------------------------------------------- the command line
def _run_cli(tmp_path: Path, *extra: str) -> Path:
    results = tmp_path / "results"
    assert main(["run", "--method", "layernorm_text", "--dataset", "shape", "--shots", "1", "--backbone",
                 "adaptlib-test", "--pretrained", "random", "--train", "max_steps=2", "--crop-scale", "1,1",
                 "--results", str(results), "--quiet", *extra]) == 0
    return next(p for p in results.rglob("*.json") if not p.relative_to(results).parts[0].startswith("_"))


def test_cli_run_save_state_export_and_predict(tmp_path, capsys):
    result = _run_cli(tmp_path, "--save-state")
    record = json.loads(result.read_text())
    assert record["config"]["save_state"] and not Path(record["state_file"]).is_absolute()
    out = tmp_path / "model"
    assert main(["export", str(result), "--out", str(out)]) == 0
    assert "open_clip_weights" in capsys.readouterr().out
    assert main(["export", str(result), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["export", str(result), "--out", str(out), "--force"]) == 0
    assert (out / CONFIG_FILE).is_file() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]

    from PIL import Image

    image = tmp_path / "one.png"
    Image.new("RGB", (40, 50), (200, 30, 30)).save(image)
    listing = tmp_path / "list.txt"
    listing.write_text("one.png\n\n# a comment\nmissing.png\n")
    csv_path = tmp_path / "p.csv"
    assert main(["predict", str(out), "--images", str(listing), "--out", str(csv_path), "--quiet"]) == 0
    rows = list(csv.DictReader(open(csv_path, newline="")))
    assert [Path(r["path"]).name for r in rows] == ["one.png", "missing.png"]
    assert rows[0]["predicted"] and not rows[0]["error"] and "FileNotFoundError" in rows[1]["error"]
    assert main(["predict", str(out), "--images", str(image), "--out", str(csv_path), "--batch-size", "0"]) == 2
    assert "--batch-size" in capsys.readouterr().err


def test_export_errors_name_the_file_and_what_to_do(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    assert main(["export", str(missing), "--out", str(tmp_path / "o")]) == 2
    assert f"result file {missing} does not exist" in capsys.readouterr().err
    not_result = tmp_path / "other.json"
    not_result.write_text(json.dumps({"hello": 1}))
    assert main(["export", str(not_result), "--out", str(tmp_path / "o")]) == 2
    assert "is not a result record" in capsys.readouterr().err

    result = _run_cli(tmp_path)  # no --save-state
    assert main(["export", str(result), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "kept no state" in err and "--save-state" in err and not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="kept no state") as info:
        read_run(result)
    command = str(info.value).split("state kept: ", 1)[1].split(", then export")[0]
    args = build_parser().parse_args(shlex.split(command)[1:])
    rerun, _ = _run_spec(args)
    original = RunSpec.from_dict(json.loads(result.read_text())["config"])
    assert replace(rerun, save_state=True).key() == replace(original, save_state=True).key()

    record = json.loads(result.read_text())
    record.pop("content_hash")
    write_result(tmp_path / "results", {**record, "sweep": "embedded"})  # as a sweep's worker writes it
    with pytest.raises(ValueError, match="add 'save_state: true' to the method's entry"):
        read_run(result)

    other = tmp_path / "not-an-export"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert main(["export", str(result), "--out", str(other), "--force"]) == 2
    assert "holds no export" in capsys.readouterr().err and (other / "keep.txt").is_file()


def test_a_weights_export_that_does_not_reproduce_the_logits_falls_back_to_parts(tmp_path, monkeypatch):
    import adaptlib.runs.export as export

    path, run_logits, run = run_kept(spec_for("layernorm"), tmp_path / "results")
    monkeypatch.setattr(export, "verify_weights", lambda folder, model: "its logits differ (test)")
    with pytest.warns(UserWarning, match="its logits differ"):
        config = export_run(path, tmp_path / "export")
    assert config["kind"] == PARTS_KIND and config["why"] == "its logits differ (test)"
    assert set(os.listdir(tmp_path / "export")) == {CONFIG_FILE, "adapter.safetensors"}
    torch.testing.assert_close(image_logits(open_export(tmp_path / "export").model, test_images(run)), run_logits,
                               atol=1e-5, rtol=1e-5)
