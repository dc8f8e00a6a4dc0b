"""Shared fixtures: every test writes caches and results into its own temporary data folder."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path, monkeypatch):
    """Caches (few-shot subsets, features, generated tasks) go to a fresh folder per test, never to data/."""
    monkeypatch.setenv("ADAPTLIB_DATA_DIR", str(tmp_path / "data"))
    torch.set_num_threads(1)
    yield tmp_path / "data"


@pytest.fixture(scope="session")
def tiny_backbone_factory():
    """Random-weight tiny CLIP (the project's 'adaptlib-test' config): a fresh copy per call."""
    from adaptlib.backbones import load_backbone

    def make(seed: int = 0):
        return load_backbone("adaptlib-test", None, seed=seed)

    return make
