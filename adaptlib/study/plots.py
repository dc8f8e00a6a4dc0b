"""The study's figures: each function takes a table from the study layer and returns a matplotlib figure
(saved by :func:`adaptlib.reporting.save_figure`, which makes the files byte-identical when regenerated)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..reporting import use_style

use_style()

import matplotlib.pyplot as plt  # noqa: E402  (after the style: a fixed backend and fonts)

HIGHLIGHT = ("zeroshot", "linear_probe", "coop", "clip_adapter", "tip_adapter", "layernorm", "clipfit", "apex",
             "clip_lora")


def _colours(labels) -> dict:
    cmap = plt.get_cmap("tab20")
    return {m: cmap(i % 20) for i, m in enumerate(labels)}


def few_shot_curves(curve: pd.DataFrame, spread: pd.DataFrame | None = None, title: str = "") -> plt.Figure:
    """Average accuracy over tasks against shots, one line per method (error bars: std over seeds)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colours = _colours(curve.index)
    shots = [int(s) for s in curve.columns]
    for method, row in curve.iterrows():
        err = spread.loc[method].reindex(curve.columns).values if spread is not None and method in spread.index \
            else None
        style = "-" if method in HIGHLIGHT else ":"
        ax.errorbar(shots, row.values, yerr=err, label=method, color=colours[method], linestyle=style, marker="o",
                    markersize=3, linewidth=1.4 if method in HIGHLIGHT else 1.0, capsize=2)
    ax.set_xscale("log", base=2)
    ax.set_xticks(shots, [str(s) for s in shots])
    ax.set_xlabel("shots per class")
    ax.set_ylabel("accuracy, average over tasks (%)")
    ax.set_title(title)
    ax.legend(ncol=2, fontsize=7, frameon=False, loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def per_task_curves(long: pd.DataFrame, methods: list[str], columns: int = 3) -> plt.Figure:
    """Accuracy against shots for each task (small multiples)."""
    tasks = sorted(long["dataset"].unique())
    rows = -(-len(tasks) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.0 * columns, 2.4 * rows), squeeze=False, sharex=True)
    colours = _colours(methods)
    for ax, task in zip(axes.flat, tasks):
        sel = long[long["dataset"] == task]
        for m in methods:
            s = sel[sel["method"] == m].sort_values("shots")
            ax.plot(s["shots"], s["mean"], marker="o", markersize=2.5, color=colours[m], label=m, linewidth=1.1)
        ax.set_xscale("log", base=2)
        ax.set_title(task)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(methods)), frameon=False, fontsize=7)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def base_to_new_bars(table: pd.DataFrame) -> plt.Figure:
    """Base, new and HM accuracy per method (averaged over tasks)."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(table)), 3.6))
    x = np.arange(len(table))
    for i, (col, colour) in enumerate((("base", "#4c72b0"), ("new", "#dd8452"), ("hm", "#55a868"))):
        ax.bar(x + (i - 1) * 0.27, table[col].values, width=0.27, label=col, color=colour)
    ax.set_xticks(x, table.index, rotation=60, ha="right")
    ax.set_ylabel("accuracy (%)")
    ax.legend(frameon=False, ncol=3)
    ax.grid(axis="y", alpha=0.3)
    return fig


def scatter_gain_vs_difficulty(gains: pd.DataFrame, difficulty: pd.Series, methods: list[str],
                               xlabel: str) -> plt.Figure:
    """Each method's gain over zero-shot against the tasks' difficulty."""
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    colours = _colours(methods)
    for m in methods:
        if m not in gains.index:
            continue
        g = gains.loc[m]
        d = difficulty.loc[g.index]
        ax.scatter(d.values, g.values, s=14, color=colours[m], label=m)
        order = np.argsort(d.values)
        ax.plot(d.values[order], g.values[order], color=colours[m], linewidth=0.6, alpha=0.6)
    for task, value in difficulty.items():
        ax.annotate(task, (value, ax.get_ylim()[0]), fontsize=6, rotation=90, va="bottom", alpha=0.6)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("gain over zero-shot (points)")
    ax.legend(ncol=2, fontsize=7, frameon=False)
    return fig


def advantage_plot(advantage: pd.DataFrame, xlabel: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ax.scatter(advantage["difficulty"], advantage["advantage"], color="#c44e52")
    for task, row in advantage.iterrows():
        ax.annotate(task, (row["difficulty"], row["advantage"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("visual prompt / text adapter minus\ntext-prompt methods (points)")
    return fig


def gap_plot(gap: pd.DataFrame) -> plt.Figure:
    """Base - new accuracy gap against shots, per prompting family."""
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    for method, row in gap.iterrows():
        ax.plot([int(s) for s in row.index], row.values, marker="o", label=method)
    ax.set_xscale("log", base=2)
    ax.set_xticks([int(s) for s in gap.columns], [str(s) for s in gap.columns])
    ax.set_xlabel("shots per base class")
    ax.set_ylabel("base - new accuracy (points)")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return fig


def ensemble_plot(sweep: pd.DataFrame) -> plt.Figure:
    """HM against a fixed alpha for every task (lines), with the adaptive ensemble's HM (stars)."""
    alphas = sorted(float(c.split("@")[1]) for c in sweep.columns if c.startswith("hm@"))
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    colours = _colours(sweep.index)
    for task, row in sweep.iterrows():
        ax.plot(alphas, [row[f"hm@{a:g}"] for a in alphas], color=colours[task], marker="o", markersize=3,
                linewidth=1, label=task)
        ax.scatter([1.04], [row["hm_adaptive"]], marker="*", s=60, color=colours[task])
    ax.set_xlabel("fixed alpha (weight of the adapted model); stars: adaptive")
    ax.set_ylabel("harmonic mean of base and new (%)")
    ax.legend(ncol=2, fontsize=7, frameon=False)
    ax.grid(alpha=0.3)
    return fig


def best_alpha_plot(sweep: pd.DataFrame, distance: pd.Series) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    ax.scatter(distance.loc[sweep.index], sweep["best_fixed_alpha"])
    for task in sweep.index:
        ax.annotate(task, (distance[task], sweep.loc[task, "best_fixed_alpha"]), fontsize=7, xytext=(3, 2),
                    textcoords="offset points")
    x = np.linspace(0, max(distance.max(), 0.01), 50)
    ax.plot(x, np.exp(-4 * x), color="grey", linewidth=0.8, label="APEX: exp(-4 d)")
    ax.set_xlabel("class distance of new to base classes (mean 1 - cos)")
    ax.set_ylabel("best fixed alpha")
    ax.legend(frameon=False)
    return fig


def winner_heatmap(grid: pd.DataFrame, methods: list[str]) -> plt.Figure:
    """The winning method (colour) and its accuracy (text) over the inter x intra dial grid."""
    inter = sorted(grid["inter"].unique())
    intra = sorted(grid["intra"].unique())
    index = {m: i for i, m in enumerate(methods)}
    cells = np.full((len(intra), len(inter)), np.nan)
    fig, ax = plt.subplots(figsize=(4.8, 3.8))
    cmap = plt.get_cmap("Set2", len(methods))
    for _, row in grid.iterrows():
        i, j = intra.index(row["intra"]), inter.index(row["inter"])
        cells[i, j] = index[row["winner"]]
        ax.text(j, i, f"{row['winner']}\n{row[row['winner']]:.1f}%", ha="center", va="center", fontsize=7)
    ax.imshow(cells, cmap=cmap, vmin=-0.5, vmax=len(methods) - 0.5, origin="lower", aspect="auto")
    ax.set_xticks(range(len(inter)), [f"{v:g}" for v in inter])
    ax.set_yticks(range(len(intra)), [f"{v:g}" for v in intra])
    ax.set_xlabel("inter-class distance (dial)")
    ax.set_ylabel("intra-class variance (dial)")
    ax.set_title("best of " + ", ".join(methods))
    return fig


def method_heatmaps(grid: pd.DataFrame, methods: list[str]) -> plt.Figure:
    inter = sorted(grid["inter"].unique())
    intra = sorted(grid["intra"].unique())
    fig, axes = plt.subplots(1, len(methods), figsize=(3.0 * len(methods), 2.8), squeeze=False)
    lo, hi = grid[methods].min().min(), grid[methods].max().max()
    for ax, m in zip(axes[0], methods):
        cells = np.full((len(intra), len(inter)), np.nan)
        for _, row in grid.iterrows():
            cells[intra.index(row["intra"]), inter.index(row["inter"])] = row[m]
        im = ax.imshow(cells, vmin=lo, vmax=hi, origin="lower", cmap="viridis", aspect="auto")
        for (i, j), v in np.ndenumerate(cells):
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7, color="white")
        ax.set_xticks(range(len(inter)), [f"{v:g}" for v in inter])
        ax.set_yticks(range(len(intra)), [f"{v:g}" for v in intra])
        ax.set_title(m)
        ax.set_xlabel("inter")
    axes[0][0].set_ylabel("intra")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="accuracy (%)")
    return fig


def hybrid_bars(means: pd.Series) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5.6, 3.2))
    colours = ["#4c72b0" if "+" not in m and m != "rule" else ("#c44e52" if m == "rule" else "#55a868")
               for m in means.index]
    ax.bar(range(len(means)), means.values, color=colours)
    ax.set_xticks(range(len(means)), means.index, rotation=45, ha="right")
    ax.set_ylim(max(0, means.min() - 10), min(100, means.max() + 5))
    ax.set_ylabel("accuracy, average over tasks (%)")
    ax.grid(axis="y", alpha=0.3)
    return fig


def drift_profiles(profiles: dict[str, pd.DataFrame], ylabel: str = "relative L2 drift") -> plt.Figure:
    """Per-layer drift curves (one per method or parameter group)."""
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    for name, p in profiles.items():
        if len(p):
            ax.errorbar(p["layer"], p["mean"], yerr=p["std"], marker="o", markersize=3, capsize=2, label=name)
    ax.set_xlabel("layer (-1: before the first block)")
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.legend(frameon=False, fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def cka_plot(ckas: dict[str, list[float]]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    for name, values in ckas.items():
        ax.plot(range(len(values)), values, marker="o", label=name)
    ax.set_xlabel("image transformer block")
    ax.set_ylabel("linear CKA, frozen vs adapted")
    ax.legend(frameon=False, fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def regulariser_plot(table: pd.DataFrame) -> plt.Figure:
    fig, ax1 = plt.subplots(figsize=(5.0, 3.4))
    x = np.arange(len(table))
    ax1.plot(x, table["text_feature_drift"], marker="o", color="#c44e52", label="text-feature drift")
    ax1.set_ylabel("text-feature drift (1 - cos)", color="#c44e52")
    ax2 = ax1.twinx()
    for col, colour in (("base", "#4c72b0"), ("new", "#dd8452"), ("hm", "#55a868")):
        ax2.plot(x, table[col], marker="s", markersize=3, color=colour, label=col)
    ax2.set_ylabel("accuracy (%)")
    ax1.set_xticks(x, [f"{w:g}" for w in table.index])
    ax1.set_xlabel("regulariser weight lambda")
    ax2.legend(frameon=False, fontsize=7, loc="lower right")
    return fig


def drift_vs_accuracy(points: pd.DataFrame) -> plt.Figure:
    """Text-feature drift against accuracy, one point per method and task."""
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    colours = _colours(sorted(points["method"].unique()))
    for m, g in points.groupby("method"):
        ax.scatter(g["text_feature_drift"], g["accuracy"], s=14, color=colours[m], label=m)
    ax.set_xlabel("text-feature drift (1 - cos to frozen)")
    ax.set_ylabel("accuracy (%)")
    ax.legend(frameon=False, fontsize=7, ncol=2)
    return fig
