"""The paper profile's path on the CPU: random-weight ViT-B/16 (QuickGELU, as OpenAI's weights need) on fixture
copies of the real dataset layouts, through the real readers, transforms, feature cache and sweep."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from adaptlib.backbones import load_backbone
from adaptlib.backbones.text import zero_shot_classifier
from adaptlib.data.benchmarks.fixtures import build_fixture_root
from adaptlib.data.protocol import sample_few_shot
from adaptlib.data.registry import get_dataset
from adaptlib.data.transforms import TransformConfig, image_batches
from adaptlib.runs.profile import load_profile
from adaptlib.runs.sweep import run_sweep
from adaptlib.runs.table import collect_with_problems
from adaptlib.utils.paths import REPO_ROOT


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return build_fixture_root(tmp_path_factory.mktemp("benchmarks"))


@pytest.fixture(scope="module")
def vit_b16():
    return load_backbone("ViT-B-16", None, quick_gelu=True)


def test_vit_b16_forward_on_benchmark_images(data_root, vit_b16):
    task = sample_few_shot(get_dataset("caltech101", data_root), 1, 1)
    cfg = TransformConfig.for_backbone(vit_b16)
    images, labels = next(iter(image_batches(task, task.test[:2], cfg, False, 2)))
    assert images.shape == (2, 3, 224, 224) and cfg.interpolation == "bicubic"
    with torch.no_grad():
        features = vit_b16.model.encode_image(images)
    classifier = zero_shot_classifier(vit_b16, task.classnames, task.templates)
    assert features.shape == (2, 512) and torch.isfinite(features).all()
    assert classifier.shape == (3, 512) and vit_b16.info["quick_gelu"] is True


def tiny_paper_profile(tmp_path: Path) -> Path:
    """profiles/paper.yaml with random weights and a tiny grid: every setting and group kept, few runs each."""
    raw = yaml.safe_load((REPO_ROOT / "profiles" / "paper.yaml").read_text())
    raw.update(name="paper-fixture", pretrained="random", quick_gelu=True, datasets=["imagenet", "dtd"], shots=[1],
               seeds=[1], run_defaults={"train": {"max_steps": 1, "batch_size": 2}})
    # the methods the notebooks read: zero-shot and the linear probe (difficulty), CoOp, CLIP-Adapter and LayerNorm
    # tuning (variance), CLIPFit (drift), APEX (the ensemble); cached features and the image encoder every step
    raw["settings"]["few_shot"]["methods"] = ["linear_probe", "coop", "clip_adapter", "layernorm", "clipfit", "apex"]
    raw["settings"]["base_to_new"].update(datasets=["dtd"], shots=[1])
    raw["settings"]["cross_dataset"].update(shots=[1], methods=["coop"])
    for group in raw["groups"].values():
        group.update(shots=[1], seeds=[1])
        if isinstance(group["methods"], dict):
            group.update(datasets=["dtd"], methods=dict(list(group["methods"].items())[:2]))
    path = tmp_path / "paper-fixture.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_paper_profile_runs_end_to_end_on_fixtures(tmp_path, data_root):
    profile_path = tiny_paper_profile(tmp_path)
    profile = load_profile(profile_path)
    assert [g.setting for g in profile.grids[:3]] == ["few_shot", "base_to_new", "cross_dataset"]
    results = tmp_path / "results"
    summary = run_sweep(profile, results=results, data_root=str(data_root), progress=False, jobs=2)
    assert summary.ok, summary.report()
    df, problems = collect_with_problems(results)
    assert not problems and len(df) == summary.total == len(profile.expand())
    assert set(df["backbone"]) == {"ViT-B-16"} and set(df["dataset"]) == {"imagenet", "dtd"}
    cross = df[df["setting"] == "cross_dataset"].iloc[0]
    for variant in ("imagenet_v2", "imagenet_sketch", "imagenet_a", "imagenet_r"):
        assert 0 <= cross[f"accuracy@{variant}"] <= 1
    b2n = df[df["setting"] == "base_to_new"]
    assert b2n["base_accuracy"].notna().all() and len(b2n) >= 4
    assert b2n.loc[b2n["method"] != "linear_probe", "new_accuracy"].notna().all()  # a probe has no new classes
    assert df.loc[df["method"] == "apex", "trainable_parameters"].iloc[0] == 282_112
    assert df["state_file"].notna().sum() >= 2  # the drift group kept its trained parameters
    run_notebooks(profile_path, results, data_root, tmp_path / "figures", tmp_path / "executed")


def run_notebooks(profile_path: Path, results: Path, data_root: Path, figures: Path, executed: Path) -> None:
    """What `make results measures notebooks PROFILE=paper` does with these results: the results table, the
    measures (from the data and the saved runs), every notebook, then the findings."""
    import papermill

    from adaptlib.measures.stage import measure
    from adaptlib.runs.table import write_tables
    from adaptlib.study.findings import render

    write_tables(results)
    manifest = measure(profile_path, results, str(data_root), progress=False)["manifest"]
    assert manifest["tables"]["drift"] > 0 and manifest["tables"]["class_structure_test"] == 2
    executed.mkdir(parents=True, exist_ok=True)
    for notebook in sorted((REPO_ROOT / "notebooks").glob("[0-9]*.ipynb")):
        papermill.execute_notebook(
            str(notebook), str(executed / notebook.name), cwd=str(REPO_ROOT / "notebooks"), progress_bar=False,
            parameters={"profile": str(profile_path), "results_dir": str(results), "data_root": str(data_root),
                        "figures_dir": str(figures / notebook.stem)})
        written = figures / notebook.stem
        assert (written / "verdict.json").is_file() or (written / "tasks.csv").is_file()  # a claim, or the world
    findings = render(figures)
    assert "paper-fixture" in findings and findings.count("####") == 4


def test_paper_profile_needs_a_data_root(tmp_path, monkeypatch, capsys):
    from adaptlib.cli import main

    monkeypatch.delenv("ADAPTLIB_DATA_ROOT", raising=False)
    code = main(["sweep", str(tiny_paper_profile(tmp_path)), "--results", str(tmp_path / "r"), "--quiet"])
    assert code == 2 and "pass --data-root" in capsys.readouterr().err
