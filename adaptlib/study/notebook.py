"""What every study notebook does first and last: read its inputs (the results table and the measures tables of
one results folder) and write its figures, tables and verdict where the README's findings section picks them up.

A notebook takes no model and no dataset: what is computed from them is the measures stage's
(``adaptlib measures``, ``make measures``), and is read here."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ..measures.layout import measures_dir, read_manifest, read_table, results_digest
from ..reporting import save_figure, save_table
from ..utils.atomic import atomic_write_json


class Measures:
    """The measures tables of a results folder, as the notebooks use them. They must be of the results table
    that is there now (the manifest records its digest): stale measures raise instead of being used."""

    def __init__(self, results_dir: str | Path, check: bool = True):
        self.results_dir = Path(results_dir)
        self.folder = measures_dir(results_dir)
        self.manifest = read_manifest(self.folder)
        if check and self.manifest.get("results_sha256") != results_digest(results_dir):
            raise ValueError(f"the measures in {self.folder} are of other results than {self.results_dir}/results.csv"
                             f": compute them again (make measures, or adaptlib measures --results {results_dir})")

    def table(self, name: str) -> pd.DataFrame:
        return read_table(self.folder, name)

    @staticmethod
    def _rows(table: pd.DataFrame, tasks: Iterable[str] | None, what: str) -> pd.DataFrame:
        table = table.set_index("dataset").rename_axis(None)
        if tasks is None:
            return table
        tasks = list(tasks)
        missing = [t for t in tasks if t not in table.index]
        if missing:
            raise KeyError(f"no {what} of task(s) {missing} in the measures: compute them again (make measures)")
        return table.loc[tasks]

    @property
    def classes(self) -> pd.Series:
        """Number of classes per task."""
        return self._rows(self.table("tasks"), None, "class count")["classes"]

    @property
    def groups(self) -> pd.Series:
        """'main' or 'far' per task (far and out-of-domain tasks are reported apart from the main suite)."""
        table = self._rows(self.table("tasks"), None, "task group")
        return table["group"] if "group" in table else pd.Series("main", index=table.index)

    @property
    def descriptions(self) -> dict[str, str]:
        """What each task is, in a line (empty where the dataset has no description)."""
        table = self._rows(self.table("tasks"), None, "task description")
        if "description" not in table:
            return {}
        return {t: ("" if pd.isna(d) else str(d)) for t, d in table["description"].items()}

    @property
    def examples(self) -> pd.DataFrame:
        """One test image per class (at most 8 classes) of each few-shot task: dataset, label, classname, image
        (an HxWx3 uint8 array)."""
        import numpy as np

        table = self.table("examples")
        images = [np.frombuffer(bytes.fromhex(h), dtype=np.uint8).reshape(int(r), int(c), 3)
                  for h, r, c in zip(table["pixels"], table["height"], table["width"])]
        return table.drop(columns=["pixels", "height", "width"]).assign(image=images)

    def class_structure(self, split: str, tasks: Iterable[str] | None = None) -> pd.DataFrame:
        """Tasks x class-structure measures of the frozen backbone on the ``'test'`` split or the few-shot
        ``'train'`` split (largest shot count, seed 1), in the order of ``tasks`` (default: all, sorted)."""
        if split not in ("test", "train"):
            raise ValueError(f"split must be 'test' or 'train', got {split!r}")
        return self._rows(self.table(f"class_structure_{split}"), tasks, f"{split}-split class structure")

    def class_distance(self, tasks: Iterable[str] | None = None) -> pd.Series:
        """APEX's class distance of new to base classes per base-to-new task."""
        return self._rows(self.table("class_distance"), tasks, "class distance")["class_distance"]

    @property
    def drift(self) -> pd.DataFrame:
        """Per-tensor parameter drift of every run that saved its state (method, dataset, seed, key columns)."""
        drift = self.table("drift")
        if drift.empty:
            raise ValueError("no run saved its state (profile group 'drift' with save_state: true)")
        return drift

    def cka(self) -> tuple[dict[str, list[float]], dict[str, str]]:
        """({method label: per-layer CKA on the probe task}, {method label: why it has none})."""
        table = self.table("cka")
        layers = [c for c in table.columns if c.isdigit()]
        notes = table["note"].fillna("").astype(str) if "note" in table.columns else pd.Series("", index=table.index)
        ckas = {row["method"]: [row[c] for c in layers] for (_, row), note in zip(table.iterrows(), notes)
                if not note}
        return ckas, {m: note for m, note in zip(table["method"], notes) if note}


def load_measures(results_dir: str | Path) -> Measures:
    """The measures of ``results_dir`` (``<results_dir>/measures/``, written by ``adaptlib measures``)."""
    return Measures(results_dir)


class Outputs:
    """Where a notebook writes its figures and tables (one folder per notebook, filled atomically by make)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def figure(self, fig, name: str) -> None:
        save_figure(fig, self.folder, name)

    def table(self, df: pd.DataFrame, name: str, index: bool = True) -> pd.DataFrame:
        save_table(df, self.folder, name, index=index)
        return df

    def verdict(self, question: str, claim: str, results, profile: str, notes=None) -> dict:
        """Write ``verdict.json`` of a notebook's tested sub-claims (``ClaimResult`` s from
        :func:`adaptlib.study.verdicts.test_claims`): the overall verdict computed from their outcomes, the counts
        (supported, contradicted, inconclusive), and per sub-claim exactly ``claim, outcome, estimate, ci95,
        p_value, p_adjusted, test, n_tasks, n_seeds``; ``not_decided``: why a claim was not decided (too little
        power, or not testable on these results)."""
        from .verdicts import record as evidence_record

        record = {"question": question, "claim": claim, "profile": profile,
                  **evidence_record(list(results), notes)}
        atomic_write_json(self.folder / "verdict.json", record)
        return record

    def summary(self, question: str, claim: str, parts: list[dict], profile: str) -> dict:
        """Write ``verdict.json`` of a notebook without a paper claim (the main results): its headline numbers,
        verdict 'summary'. Values are kept as JSON (numbers, strings, lists, mappings)."""
        record = {"question": question, "claim": claim, "verdict": "summary", "profile": profile,
                  "parts": [_jsonable(p) for p in parts]}
        atomic_write_json(self.folder / "verdict.json", record)
        return record


def _jsonable(v):
    import math

    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return v
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if f.is_integer() and not isinstance(v, float) and type(v).__name__.startswith("int"):
        return int(f)
    return float(f"{f:.6g}") if math.isfinite(f) else None
