"""Where adaptlib keeps generated data: backbones, caches and results."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """``$ADAPTLIB_DATA_DIR`` if set; else the checkout's ``data/`` folder; else ``./data``."""
    env = os.environ.get("ADAPTLIB_DATA_DIR")
    if env:
        return Path(env)
    if (REPO_ROOT / "adaptlib").is_dir() and (REPO_ROOT / "pyproject.toml").is_file():
        return REPO_ROOT / "data"
    return Path.cwd() / "data"


def cache_dir(*parts: str) -> Path:
    return data_dir().joinpath("cache", *parts)
