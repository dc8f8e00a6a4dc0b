"""The one place that writes figures and tables, deterministically.

Figures are saved as PDF and PNG with the metadata that embeds dates or versions removed, so regenerating a
figure from the same numbers gives byte-identical files. Tables are written as CSV plus a Markdown rendering.
Everything is written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .utils.atomic import atomic_path, atomic_write_text

os.environ.setdefault("SOURCE_DATE_EPOCH", "0")


def use_style() -> None:
    """A fixed, font-stable matplotlib style (no system fonts differ between machines: DejaVu ships with it)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    matplotlib.rcParams.update({
        "font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9,
        "legend.fontsize": 8, "figure.dpi": 100, "savefig.dpi": 150, "axes.spines.top": False,
        "axes.spines.right": False, "svg.hashsalt": "adaptlib", "pdf.compression": 6,
    })


def save_figure(fig, folder: str | os.PathLike, name: str, close: bool = True) -> list[Path]:
    """Write ``fig`` as ``folder/name.pdf`` and ``folder/name.png``; returns the two paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext, meta in (("pdf", {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None}),
                      ("png", {"Software": None})):
        target = folder / f"{name}.{ext}"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=ext, bbox_inches="tight", metadata=meta)
        paths.append(target)
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return paths


def _format(value) -> str:
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:.2f}"
    return str(value)


def markdown_table(df: pd.DataFrame, index: bool = True) -> str:
    """A GitHub Markdown table, floats at two decimals (no extra dependency)."""
    frame = df.reset_index() if index else df
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(_format(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


def save_table(df: pd.DataFrame, folder: str | os.PathLike, name: str, index: bool = True) -> list[Path]:
    """Write ``folder/name.csv`` (full precision) and ``folder/name.md`` (rounded, for reading)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = folder / f"{name}.csv", folder / f"{name}.md"
    atomic_write_text(csv_path, df.to_csv(index=index, float_format="%.6g", lineterminator="\n"))
    atomic_write_text(md_path, markdown_table(df, index=index))
    return [csv_path, md_path]
