"""Where the measures live and how their tables are written and read back (pandas only: no torch, no models).

``<results>/measures/`` holds one CSV per table and ``manifest.yaml`` (what they are of: the profile, its backbone,
the digest of ``results.csv``, the few-shot sample and the CKA probe; no ``.json`` file, so the results store never
takes it for a result file). Floats are written at full precision (repr) and
read back exactly, so a table read back equals the table computed, bit for bit: a figure
drawn from the file is the figure drawn from the computation.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

FOLDER = "measures"
MANIFEST = "manifest.yaml"
FORMAT = "adaptlib-measures-1"

# table name -> what one row is
TABLES = {
    "tasks": "a task of the results (undialled): its number of classes, group (main, or far: reported apart) and "
             "what it is",
    "class_structure_test": "a few-shot task: class structure of the frozen backbone on its full test split",
    "class_structure_train": "a few-shot task: class structure on its few-shot training split (largest shots, seed 1)",
    "class_distance": "a base-to-new task: APEX's class distance of new to base classes (frozen text features)",
    "drift": "a tensor of a run that saved its state: its parameter drift (frozen -> adapted)",
    "cka": "a method label on the probe task: per-layer linear CKA of the image tower, frozen vs adapted",
    "examples": "a few-shot task and class: its first test image (uint8 RGB bytes as hex), for the world's figure",
}


def measures_dir(results_dir: str | Path) -> Path:
    return Path(results_dir) / FOLDER


def results_digest(results_dir: str | Path) -> str | None:
    """SHA-256 of ``results.csv`` (None without one): the manifest records which results the measures are of."""
    path = Path(results_dir) / "results.csv"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def table_text(df: pd.DataFrame) -> str:
    """A table as CSV text: no index (every key is a column), floats at full precision (repr round-trips)."""
    return df.to_csv(index=False, lineterminator="\n")


def read_table(folder: str | Path, name: str) -> pd.DataFrame:
    """A measures table as written (floats exact; booleans and integers typed as they were)."""
    import pandas as pd

    if name not in TABLES:
        raise KeyError(f"no measures table {name!r}; the tables are {sorted(TABLES)}")
    path = Path(folder) / f"{name}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: compute the measures again (make measures)")
    text = path.read_text()
    if not text.strip():  # a table without columns (nothing to measure)
        return pd.DataFrame()
    return pd.read_csv(path)  # pandas' default parser reads repr-written floats back exactly (tested)


def read_manifest(folder: str | Path) -> dict:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no measures in {Path(folder)} ({MANIFEST} missing): run `make measures` or "
                                f"`adaptlib measures --profile PROFILE --results {Path(folder).parent}`")
    import yaml

    manifest = yaml.safe_load(path.read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: measures of format {manifest.get('format')!r}, expected {FORMAT!r}: "
                         f"compute them again (make measures)")
    return manifest


def manifest_text(manifest: dict) -> str:
    import yaml

    return yaml.safe_dump(manifest, sort_keys=True, default_flow_style=False)
