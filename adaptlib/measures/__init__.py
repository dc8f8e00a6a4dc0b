"""The measures stage: what the study computes from data and models rather than from the results table.

Between the runs and the study: ``adaptlib measures --profile P --results DIR`` (``make measures``) reads the
results table to know the tasks and runs, loads the profile's frozen backbone, the tasks and the saved adapted
states, and writes ``DIR/measures/``: per task its number of classes (``tasks``), the class structure of the frozen
backbone on the test split and on the few-shot training split (``class_structure_test``, ``class_structure_train``)
and APEX's class distance (``class_distance``); per saved run the per-tensor parameter drift (``drift``) and the
per-layer CKA of the image tower on a probe task (``cka``). The study notebooks read these tables and the results
table, and load no model and no dataset.

``layout``: the folder and its tables (pandas only). ``structure``: task measures. ``drift``: run measures.
``stage``: the stage. ``cli``: its command line. Importing this package loads no torch; the heavy names load on use.
"""

from __future__ import annotations

from importlib import import_module

from .layout import FOLDER, FORMAT, MANIFEST, TABLES, measures_dir, read_manifest, read_table

_LAZY = {
    "compute_measures": "stage", "write_measures": "stage", "measure": "stage", "main": "cli",
    "read_runs": "stage", "structure_of": "structure", "task_structure": "structure",
    "task_structures": "structure", "class_distance": "structure", "num_classes": "structure",
    "run_drift": "drift", "drift_tables": "drift", "cka_profile": "drift", "probe_images": "drift",
}

__all__ = ["FOLDER", "FORMAT", "MANIFEST", "TABLES", "measures_dir", "read_manifest", "read_table", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
