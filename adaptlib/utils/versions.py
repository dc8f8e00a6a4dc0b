"""Versions recorded in every result: determinism is promised per machine and library release, not across them."""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from importlib import metadata

from .paths import REPO_ROOT

LIBRARIES = ("adaptlib", "torch", "torchvision", "open_clip_torch", "numpy", "scikit-learn", "pillow")


@lru_cache(maxsize=1)
def code_version() -> str:
    """The git commit of the checkout (with ``-dirty`` when it has uncommitted changes), else the package version."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev[:12] + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return _version("adaptlib")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    out = {name: _version(name) for name in LIBRARIES}
    out["python"] = platform.python_version()
    return out
