"""The bench's summary: medians of times, means of accuracies over seeds, the cached path's speed-up."""

from __future__ import annotations

import json

import pytest

from adaptlib.bench import summarise


def row(wall, train, acc, cold=False, examples=320):
    return {"wall_seconds": wall, "train_seconds": train, "examples": examples, "accuracy": acc, "cold": cold,
            "cuda_peak_mb": None}


def test_summary_of_a_frozen_image_method():
    raw = [{"method": "clip_adapter", "frozen_image_encoder": True, "peak_rss_mb": 900.0, "rss_before_mb": 800.0,
            "rows": {"cached": [row(3.0, 0.1, 0.50, cold=True), row(0.3, 0.1, 0.50),
                                row(2.0, 0.2, 0.60, cold=True), row(0.4, 0.2, 0.60)],
                     "uncached": [row(2.5, 2.0, 0.52), row(2.7, 2.2, 0.62)]}}]
    s = summarise(raw).iloc[0]
    assert s["train_seconds"] == pytest.approx(0.15) and s["uncached_train_seconds"] == pytest.approx(2.1)
    assert s["cached_speedup"] == pytest.approx(14.0) and s["images_per_second"] == pytest.approx(320 / 0.15)
    assert s["accuracy"] == pytest.approx(0.55) and s["uncached_accuracy"] == pytest.approx(0.57)
    assert s["accuracy_difference"] == pytest.approx(-2.0)
    assert s["cold_cached_run_seconds"] == pytest.approx(2.5) and s["run_speedup_cold"] == pytest.approx(2.6 / 2.5)
    assert s["peak_memory_mb"] == 900.0


def test_summary_of_a_method_that_trains_the_image_encoder():
    raw = [{"method": "layernorm", "frozen_image_encoder": False, "peak_rss_mb": 950.0, "rss_before_mb": 800.0,
            "rows": {"cached": [row(1.2, 1.0, 0.4), row(1.4, 1.2, 0.5)], "uncached": []}}]
    s = summarise(raw).iloc[0]
    assert s["train_seconds"] == pytest.approx(1.1) and s["accuracy"] == pytest.approx(0.45)
    assert "cached_speedup" not in s or s.isna()["cached_speedup"]


def test_summary_reports_flops_share_of_peak_and_overhead():
    warm = [dict(row(2.0, 1.0, 0.5), work_seconds=1.5), dict(row(4.0, 1.0, 0.5), work_seconds=3.0)]
    raw = [{"method": "layernorm", "frozen_image_encoder": False, "peak_rss_mb": 900.0, "rss_before_mb": 800.0,
            "flops_per_run": 6e9, "rows": {"cached": warm, "uncached": []}}]
    s = summarise(raw, peak_gflops=4.0).iloc[0]
    assert s["gflop_per_run"] == pytest.approx(6.0) and s["gflops"] == pytest.approx(2.0)  # 6 GFLOP / 3 s median
    assert s["share_of_peak"] == pytest.approx(0.5) and s["overhead_share"] == pytest.approx(0.25)


def test_matmul_peak_and_counted_flops():
    import torch

    from adaptlib.bench import counted_flops, matmul_peak_gflops

    assert matmul_peak_gflops(threads=1, size=128, repeats=3) > 0
    a, b = torch.ones(8, 16), torch.ones(16, 4)
    out, flops = counted_flops(lambda: a @ b)
    assert flops == 2 * 8 * 16 * 4 and torch.equal(out, torch.full((8, 4), 16.0))


def test_a_run_reports_the_seconds_of_its_phases():
    from adaptlib.runs.run import RunContext, execute
    from adaptlib.runs.spec import RunSpec

    phases: dict = {}
    spec = RunSpec(method="clip_adapter", dataset="shape", shots=1, seed=1, backbone="adaptlib-test",
                   pretrained=None, train={"max_steps": 2})
    execute(spec, RunContext(threads=1, phase_seconds=phases))
    assert set(phases) == {"build", "fit_and_train", "tune", "evaluate", "save"}
    assert all(v >= 0 for v in phases.values())


TINY = """\
name: tiny
backbone: adaptlib-test
pretrained: random
run_defaults: {crop_scale: [1, 1], train: {max_steps: 3}}
datasets: [colour, shape]
shots: [1, 2]
seeds: [1, 2]
methods:
  zeroshot: {}
  clip_adapter: {}
  layernorm: {}
settings:
  few_shot: {}
"""


def test_the_throughput_sample_takes_whole_cells(tmp_path):
    from adaptlib.bench.throughput import sample_cells
    from adaptlib.runs.profile import load_profile

    (tmp_path / "tiny.yaml").write_text(TINY)
    specs = load_profile(tmp_path / "tiny.yaml").expand()
    sample = sample_cells(specs, 5)
    cells = {(s.method, s.dataset, s.shots) for s in sample}
    assert len(sample) == 2 * len(cells) >= 5  # every seed of each drawn cell
    assert sample == sorted(sample, key=specs.index) and sample_cells(specs, 5) == sample


def test_the_throughput_benchmark_prints_its_line_and_writes_its_file(tmp_path, capsys):
    from adaptlib.bench.throughput import main

    profile = tmp_path / "tiny.yaml"
    profile.write_text(TINY)
    assert main(["--profile", str(profile), "--sample", "4", "--out", str(tmp_path)]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("throughput: one-by-one ") and "ratio" in line and "% of peak" in line
    report = json.loads((tmp_path / "throughput.json").read_text())
    assert report["runs"] >= 4 and report["ratio"] > 0 and 0 < report["efficiency"]
