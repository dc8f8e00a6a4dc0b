"""The bench's summary: medians of times, means of accuracies over seeds, the cached path's speed-up."""

from __future__ import annotations

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
