"""What every study notebook does first and last: load (or, for the smoke profile, produce) the results, and
write its verdict where the README's findings section picks it up."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..reporting import save_figure, save_table
from ..utils.atomic import atomic_write_json
from ..utils.paths import REPO_ROOT
from .tables import load_results


def profile_path(profile: str) -> Path:
    path = Path(profile)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    return REPO_ROOT / "profiles" / f"{profile}.yaml"


def prepare(profile: str, results_dir: str, run_missing: bool = False, jobs: int = 1) -> pd.DataFrame:
    """The profile's results table; with ``run_missing`` the profile's sweep runs first for whatever is missing
    (the smoke profile's grid takes seconds, which is how nbval runs the notebooks in CI)."""
    results = Path(results_dir)
    if run_missing:
        from ..runs.sweep import run_sweep

        summary = run_sweep(profile_path(profile), jobs=jobs, results=results, progress=False)
        if summary.failed:
            raise RuntimeError(f"{summary.failed} runs of profile {profile!r} failed; see {results}/_failures")
        from ..runs.table import write_tables

        write_tables(results, results)
    return load_results(results)


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

    def verdict(self, question: str, claim: str, parts: list[dict], word: str, profile: str) -> dict:
        record = {"question": question, "claim": claim, "verdict": word, "profile": profile,
                  "parts": [{k: (v if isinstance(v, (str, bool, int, float)) or v is None else str(v))
                             for k, v in p.items()} for p in parts]}
        atomic_write_json(self.folder / "verdict.json", record)
        return record

