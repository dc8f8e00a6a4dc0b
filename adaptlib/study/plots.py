"""The study's figures: each function takes a table from the study layer and returns a matplotlib figure
(saved by :func:`adaptlib.reporting.save_figure`, which makes the files byte-identical when regenerated).

Conventions of every accuracy plot here: error bars or bands are 95% bootstrap CIs (the title says over what:
tasks then seeds for averages over tasks, seeds for one task), axes are labelled with their units (accuracy in
%, differences in points), chance and zero-shot are drawn as reference lines where they apply, bars start at 0 and
line plots keep the data's own range (a zoomed axis says so in its label), each method has its own colour *and*
marker (:func:`method_style`, 16+ methods stay distinguishable), and legends sit outside the axes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..reporting import use_style

use_style()

import matplotlib.pyplot as plt  # noqa: E402  (after the style: a fixed backend and fonts)

HIGHLIGHT = ("zeroshot", "linear_probe", "coop", "clip_adapter", "tip_adapter", "layernorm", "clipfit", "apex",
             "clip_lora")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "d", "H")
CI_TASKS = "95% CI: bootstrap over tasks, then seeds"
CI_SEEDS = "95% CI: bootstrap over seeds"
CHANCE_STYLE = dict(color="grey", linestyle=":", linewidth=1.0)
ZERO_SHOT_STYLE = dict(color="black", linestyle="--", linewidth=1.0)


def method_style(labels) -> dict[str, dict]:
    """Colour and marker per label: colour i % 10 of tab10 and marker i % 12, so the pair is unique for up to 60
    labels (16 methods never share both), and the labels after the first ten get hollow markers; the order of
    ``labels`` fixes the assignment (deterministic). For line plots; :func:`_scatter_style` for scatters."""
    cmap = plt.get_cmap("tab10")
    out = {}
    for i, m in enumerate(labels):
        style = {"color": cmap(i % 10), "marker": MARKERS[i % len(MARKERS)]}
        if i >= 10:
            style["markerfacecolor"] = "white"
        out[m] = style
    return out


def _scatter_style(style: dict) -> dict:
    """A :func:`method_style` entry for ``ax.scatter`` (hollow markers as white faces with a coloured edge)."""
    if "markerfacecolor" in style:
        return {"marker": style["marker"], "facecolors": "white", "edgecolors": style["color"]}
    return {"marker": style["marker"], "color": style["color"]}


def _colours(labels) -> dict:
    return {m: s["color"] for m, s in method_style(labels).items()}


def legend_outside(ax, **kwargs) -> None:
    """The legend to the right of the axes, never over the data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=7, borderaxespad=0.0,
                  **kwargs)


def reference_lines(ax, chance: float | None = None, zero_shot: float | None = None, label_suffix: str = "") -> None:
    """Horizontal chance and zero-shot lines (labelled, so they enter the legend)."""
    if chance is not None and np.isfinite(chance):
        ax.axhline(chance, label=f"chance{label_suffix} ({chance:.1f}%)", **CHANCE_STYLE)
    if zero_shot is not None and np.isfinite(zero_shot):
        ax.axhline(zero_shot, label=f"zero-shot{label_suffix} ({zero_shot:.1f}%)", **ZERO_SHOT_STYLE)


def _err(mean, lo, hi) -> np.ndarray:
    mean, lo, hi = (np.asarray(x, dtype=float) for x in (mean, lo, hi))
    return np.vstack([np.clip(mean - lo, 0, None), np.clip(hi - mean, 0, None)])


def few_shot_curves(curve: pd.DataFrame, zero_shot: float | None = None, chance: float | None = None,
                    title: str = "") -> plt.Figure:
    """Average accuracy over tasks against shots, one line per method, with its 95% CI (bootstrap over tasks,
    then seeds). ``curve``: the long table of :func:`adaptlib.study.tables.curve_ci` (method, shots, mean, ci_low,
    ci_high); zero-shot and chance (averages over the same tasks) are reference lines."""
    fig, ax = plt.subplots(figsize=(7.6, 4.4))
    methods = list(dict.fromkeys(curve["method"]))
    styles = method_style(methods)
    shots = sorted(int(s) for s in curve["shots"].unique())
    for method in methods:
        c = curve[curve["method"] == method].sort_values("shots")
        ax.errorbar(c["shots"], c["mean"], yerr=_err(c["mean"], c["ci_low"], c["ci_high"]), label=method,
                    **styles[method], markersize=4,
                    linestyle="-" if method in HIGHLIGHT else ":", linewidth=1.4 if method in HIGHLIGHT else 1.0,
                    capsize=2)
    reference_lines(ax, chance, zero_shot)
    ax.set_xscale("log", base=2)
    ax.set_xticks(shots, [str(s) for s in shots])
    ax.set_xlabel("shots per class")
    ax.set_ylabel("accuracy, average over tasks (%)")
    ax.set_title((title + "\n" if title else "") + CI_TASKS, fontsize=9)
    legend_outside(ax, ncol=1 if len(methods) <= 18 else 2)
    ax.grid(alpha=0.3)
    return fig


def per_task_curves(per_task: pd.DataFrame, methods: list[str], chance: dict | None = None,
                    zero_shot: dict | None = None, columns: int = 3) -> plt.Figure:
    """Accuracy against shots for each task (small multiples), with 95% CIs over seeds
    (:func:`adaptlib.study.tables.per_task_ci`), chance and zero-shot per task."""
    tasks = sorted(per_task["dataset"].unique())
    rows = -(-len(tasks) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.0 * columns, 2.5 * rows + 0.6), squeeze=False, sharex=True)
    styles = method_style(methods)
    for ax, task in zip(axes.flat, tasks):
        sel = per_task[per_task["dataset"] == task]
        for m in methods:
            s = sel[sel["method"] == m].sort_values("shots")
            if s.empty:
                continue
            ax.errorbar(s["shots"], s["mean"], yerr=_err(s["mean"], s["ci_low"], s["ci_high"]), capsize=1.5,
                        markersize=3, label=m, linewidth=1.0, **styles[m])
        if chance and task in chance:
            ax.axhline(chance[task], label="chance", **CHANCE_STYLE)
        if zero_shot and task in zero_shot:
            ax.axhline(zero_shot[task], label="zero-shot", **ZERO_SHOT_STYLE)
        ax.set_xscale("log", base=2)
        ks = sorted(int(k) for k in sel["shots"].unique())
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_title(task)
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("shots per class")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.suptitle(CI_SEEDS + " of each task; each y-axis zoomed to its task's range", fontsize=9)
    fig.tight_layout(rect=(0, 0, 0.82, 0.97))
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.83, 0.95), frameon=False, fontsize=7)
    return fig


def base_to_new_bars(table: pd.DataFrame, zero_shot_hm: float | None = None) -> plt.Figure:
    """Base, new and HM accuracy per method (HM of the task averages), with 95% CIs (bootstrap over tasks, then
    seeds; :func:`adaptlib.study.tables.base_to_new_ci`); zero-shot's HM as a reference line."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(table)) + 1.4, 3.8))
    x = np.arange(len(table))
    for i, (col, colour) in enumerate((("base", "#4c72b0"), ("new", "#dd8452"), ("hm", "#55a868"))):
        err = _err(table[col], table[f"{col}_ci_low"], table[f"{col}_ci_high"]) \
            if f"{col}_ci_low" in table.columns else None
        ax.bar(x + (i - 1) * 0.27, table[col].values, width=0.27, label=col, color=colour, yerr=err, capsize=1.5,
               error_kw={"linewidth": 0.8})
    if zero_shot_hm is not None and np.isfinite(zero_shot_hm):
        ax.axhline(zero_shot_hm, label=f"zero-shot HM ({zero_shot_hm:.1f}%)", **ZERO_SHOT_STYLE)
    ax.set_xticks(x, table.index, rotation=60, ha="right")
    ax.set_ylabel("accuracy, average over tasks (%)")
    ax.set_ylim(0, 100)
    ax.set_title(CI_TASKS, fontsize=9)
    legend_outside(ax)
    ax.grid(axis="y", alpha=0.3)
    return fig


def scatter_gain_vs_difficulty(gains: pd.DataFrame, difficulty: pd.Series, methods: list[str],
                               xlabel: str) -> plt.Figure:
    """Each method's gain over zero-shot against the tasks' difficulty, with 95% CIs over seeds. ``gains``: long
    table method, dataset, gain, ci_low, ci_high (:func:`adaptlib.study.difficulty.gains_by_task`)."""
    fig, ax = plt.subplots(figsize=(7.2, 4.2))
    styles = method_style(methods)
    for m in methods:
        g = gains[gains["method"] == m]
        if g.empty:
            continue
        d = difficulty.loc[g["dataset"]].to_numpy(dtype=float)
        ax.errorbar(d, g["gain"], yerr=_err(g["gain"], g["ci_low"], g["ci_high"]), linestyle="none",
                    markersize=4, label=m, capsize=1.5, **styles[m])
        order = np.argsort(d)
        ax.plot(d[order], g["gain"].to_numpy()[order], color=styles[m]["color"], linewidth=0.6, alpha=0.5)
    ax.axhline(0, label="zero-shot (gain 0)", **ZERO_SHOT_STYLE)
    ymin = ax.get_ylim()[0]
    for task, value in difficulty.items():
        ax.annotate(task, (value, ymin), fontsize=6, rotation=90, va="bottom", alpha=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("gain over zero-shot (points of accuracy)")
    ax.set_title(CI_SEEDS + " of each task", fontsize=9)
    legend_outside(ax)
    return fig


def advantage_plot(advantage: pd.DataFrame, xlabel: str) -> plt.Figure:
    """Per visual-prompt / text-adapter method: its advantage over the text-prompt methods on each task against
    the task's difficulty, 95% CIs over seeds (:func:`adaptlib.study.difficulty.advantage_by_task`)."""
    fig, ax = plt.subplots(figsize=(6.6, 3.8))
    methods = list(dict.fromkeys(advantage["method"]))
    styles = method_style(methods)
    for m in methods:
        a = advantage[advantage["method"] == m].sort_values("difficulty")
        ax.errorbar(a["difficulty"], a["advantage"], yerr=_err(a["advantage"], a["ci_low"], a["ci_high"]),
                    marker=styles[m]["marker"], color=styles[m]["color"], label=m, capsize=1.5, linewidth=0.8)
    for task, row in advantage.drop_duplicates("dataset").set_index("dataset").iterrows():
        ax.annotate(task, (row["difficulty"], ax.get_ylim()[0]), fontsize=6, rotation=90, va="bottom", alpha=0.6)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("advantage over text-prompt\nmethods (points of accuracy)")
    ax.set_title(CI_SEEDS + " of each task", fontsize=9)
    legend_outside(ax)
    return fig


def gap_plot(gap: pd.DataFrame) -> plt.Figure:
    """Base - new accuracy gap against shots, per prompting family, with 95% CIs (bootstrap over tasks, then
    seeds): ``gap`` long table method, shots, mean, ci_low, ci_high."""
    fig, ax = plt.subplots(figsize=(6.2, 3.4))
    methods = list(dict.fromkeys(gap["method"]))
    styles = method_style(methods)
    for m in methods:
        g = gap[gap["method"] == m].sort_values("shots")
        ax.errorbar(g["shots"], g["mean"], yerr=_err(g["mean"], g["ci_low"], g["ci_high"]), label=m, capsize=2,
                    **styles[m])
    shots = sorted(int(s) for s in gap["shots"].unique())
    ax.set_xscale("log", base=2)
    ax.set_xticks(shots, [str(s) for s in shots])
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel("shots per base class")
    ax.set_ylabel("base - new accuracy (points)")
    ax.set_title(CI_TASKS, fontsize=9)
    legend_outside(ax)
    ax.grid(alpha=0.3)
    return fig


def ensemble_plot(sweep: pd.DataFrame, seeds: pd.DataFrame | None = None) -> plt.Figure:
    """HM against a fixed alpha for every task (lines, 95% CIs over seeds when ``seeds`` has them), the adaptive
    ensemble's HM (stars) and the oracle alpha (the best fixed alpha on test: circled, an oracle, not a method)."""
    alphas = sorted(float(c.split("@")[1]) for c in sweep.columns if c.startswith("hm@"))
    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    styles = method_style(sweep.index)
    for task, row in sweep.iterrows():
        y = np.array([row[f"hm@{a:g}"] for a in alphas])
        err = None
        if seeds is not None and len(seeds):
            g = seeds[seeds["dataset"] == task]
            if len(g) > 1:
                se = [g[f"hm@{a:g}"].std(ddof=1) / np.sqrt(len(g)) for a in alphas]
                err = 1.96 * np.asarray(se)
        ax.errorbar(alphas, y, yerr=err, color=styles[task]["color"], marker=styles[task]["marker"], markersize=3,
                    linewidth=1, label=task, capsize=1.5)
        ax.scatter([1.05], [row["hm_adaptive"]], marker="*", s=70, color=styles[task]["color"])
        if "oracle_alpha" in row and np.isfinite(row["oracle_alpha"]):
            ax.scatter([row["oracle_alpha"]], [row["hm_oracle_alpha"]], s=90, facecolors="none",
                       edgecolors=styles[task]["color"], linewidths=1.0)
    ax.scatter([], [], marker="*", s=70, color="grey", label="adaptive ensemble")
    ax.scatter([], [], s=90, facecolors="none", edgecolors="grey", label="oracle alpha (chosen on test)")
    ax.set_xlabel("fixed alpha (weight of the adapted model); stars at 1.05: adaptive")
    ax.set_ylabel("harmonic mean of base and new (%)")
    ax.set_title("error bars: normal 95% CI over seeds of each task", fontsize=9)
    legend_outside(ax)
    ax.grid(alpha=0.3)
    return fig


def best_alpha_plot(sweep: pd.DataFrame, distance: pd.Series) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5.8, 3.4))
    ax.scatter(distance.loc[sweep.index], sweep["oracle_alpha"], label="oracle alpha (best fixed alpha on test)")
    for task in sweep.index:
        ax.annotate(task, (distance[task], sweep.loc[task, "oracle_alpha"]), fontsize=7, xytext=(3, 2),
                    textcoords="offset points")
    x = np.linspace(0, max(distance.max(), 0.01), 50)
    ax.plot(x, np.exp(-4 * x), color="grey", linewidth=0.8, label="APEX: exp(-4 d)")
    ax.set_xlabel("class distance of new to base classes (mean 1 - cos)")
    ax.set_ylabel("oracle alpha (chosen on test)")
    legend_outside(ax)
    return fig


def winner_heatmap(grid: pd.DataFrame, methods: list[str]) -> plt.Figure:
    """The winning method (colour) and its accuracy (text) over the inter x intra dial grid; a tie has no
    winner (blank). The test of "each wins" uses the seeds (see the notebook); this shows the seed means."""
    inter = sorted(grid["inter"].unique())
    intra = sorted(grid["intra"].unique())
    index = {m: i for i, m in enumerate(methods)}
    cells = np.full((len(intra), len(inter)), np.nan)
    fig, ax = plt.subplots(figsize=(4.8, 3.8))
    cmap = plt.get_cmap("Set2", len(methods))
    for _, row in grid.iterrows():
        i, j = intra.index(row["intra"]), inter.index(row["inter"])
        w = row["winner"]
        if w in index:
            cells[i, j] = index[w]
            ax.text(j, i, f"{w}\n{row[w]:.1f}%", ha="center", va="center", fontsize=7)
        else:
            ax.text(j, i, "tie", ha="center", va="center", fontsize=7)
    ax.imshow(cells, cmap=cmap, vmin=-0.5, vmax=len(methods) - 0.5, origin="lower", aspect="auto")
    ax.set_xticks(range(len(inter)), [f"{v:g}" for v in inter])
    ax.set_yticks(range(len(intra)), [f"{v:g}" for v in intra])
    ax.set_xlabel("inter-class distance (dial)")
    ax.set_ylabel("intra-class variance (dial)")
    ax.set_title("best seed mean of " + ", ".join(methods), fontsize=9)
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
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="accuracy, seed mean (%)")
    return fig


def hybrid_bars(means: pd.DataFrame, chance: float | None = None, zero_shot: float | None = None) -> plt.Figure:
    """Accuracy of each single method, fixed hybrid, the rule and the oracle pick (average over tasks), with 95%
    CIs (bootstrap over tasks, then seeds). ``means``: :func:`adaptlib.study.tables.mean_ci` (mean, ci_low,
    ci_high per row)."""
    fig, ax = plt.subplots(figsize=(7.0, 3.4))
    colours = ["#c44e52" if m == "rule" else "#8172b3" if m.startswith("oracle") else
               "#55a868" if "+" in m else "#4c72b0" for m in means.index]
    ax.bar(range(len(means)), means["mean"].values, color=colours,
           yerr=_err(means["mean"], means["ci_low"], means["ci_high"]), capsize=2)
    reference_lines(ax, chance, zero_shot)
    ax.set_xticks(range(len(means)), means.index, rotation=45, ha="right")
    ax.set_ylim(0, 100)
    ax.set_ylabel("accuracy, average over tasks (%)")
    ax.set_title(CI_TASKS + "; blue single, green hybrid, red rule, purple oracle", fontsize=8)
    legend_outside(ax)
    ax.grid(axis="y", alpha=0.3)
    return fig


def drift_profiles(profiles: dict[str, pd.DataFrame], ylabel: str = "squared L2 change") -> plt.Figure:
    """Per-layer drift curves (one per method or parameter group): mean over tasks and seeds, error bars one
    standard deviation over them; log scale."""
    fig, ax = plt.subplots(figsize=(6.8, 3.6))
    styles = method_style(list(profiles))
    for name, p in profiles.items():
        if len(p):
            ax.errorbar(p["layer"], p["mean"], yerr=p["std"].fillna(0), markersize=3, capsize=2, label=name,
                        **styles[name])
    ax.set_xlabel("layer (-1: before the first block)")
    ax.set_ylabel(ylabel + " (log scale)")
    ax.set_yscale("log")
    ax.set_title("mean over runs; error bars: 1 SD over tasks and seeds", fontsize=9)
    legend_outside(ax)
    ax.grid(alpha=0.3)
    return fig


def cka_plot(ckas: dict[str, list[float]]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6.2, 3.4))
    styles = method_style(list(ckas))
    for name, values in ckas.items():
        ax.plot(range(len(values)), values, label=name, **styles[name])
    ax.set_xlabel("image transformer block")
    ax.set_ylabel("linear CKA, frozen vs adapted (1 = same)")
    ax.set_title("one run per method on the probe task (no CI)", fontsize=9)
    legend_outside(ax)
    ax.grid(alpha=0.3)
    return fig


def regulariser_plot(table: pd.DataFrame) -> plt.Figure:
    """Text-feature drift and accuracy against the regulariser's weight (two panels, not twin axes), 95% CIs
    (bootstrap over tasks, then seeds) where the table has them (``<col>_ci_low`` / ``<col>_ci_high``)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.4, 3.2))
    x = np.arange(len(table))

    def line(ax, col, colour, marker, label):
        err = _err(table[col], table[f"{col}_ci_low"], table[f"{col}_ci_high"]) \
            if f"{col}_ci_low" in table.columns else None
        ax.errorbar(x, table[col], yerr=err, marker=marker, color=colour, label=label, capsize=2)

    line(ax1, "text_feature_drift", "#c44e52", "o", "text-feature drift")
    ax1.set_ylabel("text-feature drift (1 - cos to frozen)")
    for col, colour, marker in (("base", "#4c72b0", "s"), ("new", "#dd8452", "^"), ("hm", "#55a868", "D")):
        line(ax2, col, colour, marker, col)
    ax2.set_ylabel("accuracy, average over tasks (%)")
    for ax in (ax1, ax2):
        ax.set_xticks(x, [f"{w:g}" for w in table.index])
        ax.set_xlabel("regulariser weight lambda")
        ax.grid(alpha=0.3)
    ax1.set_title("drift axis zoomed to its range", fontsize=8)
    ax2.set_title(CI_TASKS, fontsize=8)
    legend_outside(ax2)
    fig.tight_layout()
    return fig


def drift_vs_accuracy(points: pd.DataFrame) -> plt.Figure:
    """Text-feature drift against accuracy, one point per method and task (seed means)."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    styles = method_style(sorted(points["method"].unique()))
    for m, g in points.groupby("method"):
        ax.scatter(g["text_feature_drift"], g["accuracy"], s=16, label=m, **_scatter_style(styles[m]))
    ax.set_xlabel("text-feature drift (1 - cos to frozen)")
    ax.set_ylabel("accuracy, seed mean (%)")
    legend_outside(ax)
    return fig


def convergence_plot(table: pd.DataFrame, gains: dict[str, pd.DataFrame], margin: float = 2.0) -> plt.Figure:
    """Left: each method's few-shot validation accuracy at half, one and twice its step cap (means over the
    check's tasks, 95% bootstrap CI over tasks and seeds). Right: the gain from twice the steps per method, on the
    few-shot validation and on test, with its 95% CI and the margin below which a method counts as converged."""
    fig, (ax, gx) = plt.subplots(1, 2, figsize=(11.5, 4.6), gridspec_kw={"width_ratios": [1.1, 1]})
    methods = list(dict.fromkeys(table["method"]))
    styles = method_style(methods)
    for i, method in enumerate(methods):
        c = table[table["method"] == method].sort_values("budget")
        x = c["budget"] * 2 ** ((i - len(methods) / 2) * 0.012)  # a small dodge so that error bars do not overlap
        ax.errorbar(x, c["val_accuracy"], yerr=_err(c["val_accuracy"], c["val_ci_low"], c["val_ci_high"]),
                    label=method, **styles[method], markersize=4, linewidth=1.0, capsize=1.5)
    ax.set_xscale("log", base=2)
    budgets = sorted(table["budget"].round(3).unique())
    ax.set_xticks(budgets, [f"{b:g}x" for b in budgets])
    ax.set_xlabel("training steps, as a multiple of the method's cap in the profile")
    ax.set_ylabel("few-shot validation accuracy, mean over tasks (%)")
    ax.grid(alpha=0.3)
    ax.set_title("accuracy against the step budget (95% CI: tasks, then seeds)", fontsize=9)
    offsets = {"val_accuracy": -0.17, "accuracy": 0.17}
    names = {"val_accuracy": "few-shot validation", "accuracy": "test"}
    for column, g in gains.items():
        if g is None or g.empty:
            continue
        y = np.array([methods.index(m) for m in g.index], dtype=float) + offsets.get(column, 0.0)
        gx.errorbar(g["gain"], y, xerr=_err(g["gain"], g["ci_low"], g["ci_high"]), linestyle="none",
                    marker="o" if column == "val_accuracy" else "s", markersize=4, capsize=1.5,
                    color="tab:blue" if column == "val_accuracy" else "tab:orange", label=names.get(column, column))
    gx.axvline(0, color="0.3", linewidth=0.8)
    gx.axvline(margin, color="0.5", linestyle="--", linewidth=0.8, label=f"margin ({margin:g} points)")
    gx.set_yticks(range(len(methods)), methods, fontsize=7)
    gx.invert_yaxis()
    gx.set_xlabel("gain from twice the cap's steps (accuracy points, 95% CI)")
    gx.set_title("twice the steps minus the cap, per method", fontsize=9)
    gx.grid(alpha=0.3, axis="x")
    gx.legend(fontsize=7, loc="lower right")
    handles, labels = ax.get_legend_handles_labels()
    rows = -(-len(labels) // 7)
    fig.legend(handles, labels, loc="lower center", ncol=7, fontsize=7, frameon=False)  # below both panels
    fig.tight_layout(rect=(0, 0.035 * rows + 0.02, 1, 1))
    return fig


def selection_plot(tables: dict[int, pd.DataFrame], reference: str = "few_shot_val", other: str = "fixed") -> plt.Figure:
    """Per shot count (one panel each): every method's accuracy under the two model selections (means over tasks,
    95% CI: tasks, then seeds), a line joining the two, so a method whose gain rests on validation data shows a long
    line; the methods in the same order in every panel."""
    shots = sorted(tables)
    fig, axes = plt.subplots(1, len(shots), figsize=(4.2 * len(shots) + 1.5, 0.32 * max(len(t) for t in
                                                                                          tables.values()) + 1.6),
                             sharey=True, squeeze=False)
    methods = list(dict.fromkeys(m for k in shots for m in tables[k]["method"]))
    for ax, k in zip(axes[0], shots):
        t = tables[k].set_index("method").reindex(methods)
        y = np.arange(len(methods), dtype=float)
        ax.hlines(y, t["reference"], t["other"], color="0.7", linewidth=1.0)
        ax.errorbar(t["reference"], y - 0.12, xerr=_err(t["reference"], t["reference_ci_low"], t["reference_ci_high"]),
                    linestyle="none", marker="o", markersize=4, capsize=1.5, color="tab:blue", label=reference)
        ax.errorbar(t["other"], y + 0.12, xerr=_err(t["other"], t["other_ci_low"], t["other_ci_high"]),
                    linestyle="none", marker="s", markersize=4, capsize=1.5, color="tab:orange", label=other)
        ax.set_title(f"{k} shots", fontsize=9)
        ax.set_xlabel("test accuracy, mean over tasks (%)")
        ax.grid(alpha=0.3, axis="x")
    axes[0][0].set_yticks(range(len(methods)), methods, fontsize=7)
    axes[0][0].invert_yaxis()
    axes[0][-1].legend(fontsize=7, loc="lower right", title="model selection", title_fontsize=7)
    fig.tight_layout()
    return fig


def calibration_plot(table: pd.DataFrame) -> plt.Figure:
    """Each method's expected calibration error against its top-1 accuracy on test (means over tasks; error bars:
    95% CI, tasks then seeds): lower right is accurate and calibrated."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    styles = method_style(table["method"])
    for _, r in table.iterrows():
        ax.errorbar(r["accuracy"], r["ece"], xerr=[[r["accuracy"] - r["accuracy_ci_low"]],
                                                    [r["accuracy_ci_high"] - r["accuracy"]]],
                    yerr=[[r["ece"] - r["ece_ci_low"]], [r["ece_ci_high"] - r["ece"]]], label=r["method"],
                    **styles[r["method"]], linestyle="none", markersize=5, capsize=1.5, linewidth=0.8)
    ax.set_xlabel("test accuracy, mean over tasks (%)")
    ax.set_ylabel("expected calibration error, 15 bins (%)")
    ax.grid(alpha=0.3)
    ax.set_title(f"calibration against accuracy at {int(table['shots'].iloc[0])} shots (95% CI: tasks, then seeds)",
                 fontsize=9)
    legend_outside(ax)
    fig.tight_layout()
    return fig


def reliability_plot(table: pd.DataFrame) -> plt.Figure:
    """One reliability diagram per method (its runs' bins pooled): accuracy against mean confidence per
    confidence bin, bar width the bin, the diagonal perfect calibration; the bars' shade grows with the share of
    test images in the bin. The panel title gives the pooled ECE."""
    from .calibration import pooled_ece

    methods = list(dict.fromkeys(table["method"]))
    ece = pooled_ece(table)
    cols = min(3, len(methods))
    rows = int(np.ceil(len(methods) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False, sharex=True, sharey=True)
    colours = _colours(methods)
    for ax, method in zip(axes.ravel(), methods):
        t = table[table["method"] == method]
        share = t["count"] / t["count"].sum()
        filled = t.dropna(subset=["accuracy"])
        ax.bar(100 * filled["lo"], filled["accuracy"], width=100 * (filled["hi"] - filled["lo"]), align="edge",
               color=colours[method], alpha=0.25, edgecolor=colours[method], linewidth=0.6)
        ax.scatter(filled["confidence"], filled["accuracy"], s=12 + 120 * share[filled.index], color=colours[method],
                   zorder=3)
        ax.plot([0, 100], [0, 100], color="black", linestyle="--", linewidth=0.8)
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.set_title(f"{method}: ECE {ece[method]:.1f}% ({int(t['runs'].iloc[0])} runs)", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(methods):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("confidence (%)")
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy in bin (%)")
    fig.suptitle(f"reliability at {int(table['shots'].iloc[0])} shots: 15 confidence bins, test images of every "
                 f"task and seed pooled (marker area: share of images)", fontsize=9)
    fig.tight_layout()
    return fig


def shift_plot(table: pd.DataFrame) -> plt.Figure:
    """Accuracy and ECE of each method on the source task's test set and on its shifted renderings (means;
    error bars: 95% CI over tasks, then seeds), zero-shot dashed."""
    tests = list(dict.fromkeys(table["test_set"]))
    methods = list(dict.fromkeys(table["method"]))
    styles = method_style(methods)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    x = np.arange(len(tests))
    for method in methods:
        t = table[table["method"] == method].set_index("test_set").reindex(tests)
        style = dict(styles[method])
        if method == "zeroshot":
            style.update(color="black", linestyle="--")
        for ax, metric in zip(axes, ("accuracy", "ece")):
            ax.errorbar(x, t[metric], yerr=_err(t[metric], t[f"{metric}_ci_low"], t[f"{metric}_ci_high"]),
                        label=method, markersize=4, capsize=1.5, linewidth=0.9, **style)
    for ax, ylabel in zip(axes, ("test accuracy (%)", "expected calibration error, 15 bins (%)")):
        ax.set_xticks(x, tests, rotation=15, fontsize=7)
        ax.set_xlabel("test set (source task, then its shifted renderings)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].set_title(f"under distribution shift ({CI_TASKS})", fontsize=9)
    legend_outside(axes[1])
    fig.tight_layout()
    return fig


def world_vs_benchmark(tasks: pd.DataFrame, benchmark: pd.DataFrame, ci: tuple | None = None) -> plt.Figure:
    """The embedded tasks (main and far, one marker per backbone) beside the 11 benchmark datasets on each measure of
    notebook 00; zero-shot accuracy with its 95% Wilson interval over the task's test images (``ci``: (low, high)
    as fractions, in the rows' order)."""
    from .world import MEASURE_LABEL

    measures = list(MEASURE_LABEL)
    fig, axes = plt.subplots(1, len(measures), figsize=(2.3 * len(measures), 3.6))
    backbones = list(dict.fromkeys(tasks["backbone"]))
    styles = method_style(backbones)
    columns = [("11-dataset\nbenchmark", None), ("embedded\nmain", "main"), ("embedded\nfar", "far")]
    scale = {"zero_shot": 100.0, "headroom": 100.0}
    for ax, m in zip(axes, measures):
        k = scale.get(m, 1.0)
        b = benchmark[m].dropna() * k
        offsets = np.linspace(-0.18, 0.18, len(b)) if len(b) > 1 else np.zeros(len(b))
        ax.scatter(np.zeros(len(b)) + offsets, b, color="grey", marker="o", s=16,
                   label="benchmark (literature)" if m == measures[0] else None)
        for i, (_, group) in enumerate(columns[1:], start=1):
            for bb in backbones:
                sel = tasks[(tasks["group"] == group) & (tasks["backbone"] == bb)]
                if sel.empty:
                    continue
                xs = i + (np.linspace(-0.18, 0.18, len(sel)) if len(sel) > 1 else np.zeros(len(sel)))
                y = sel[m].to_numpy(float) * k
                label = f"embedded, {bb}" if m == measures[0] and i == 1 else None
                if m == "zero_shot" and ci is not None:
                    lo = np.asarray(ci[0], float)[sel.index] * k
                    hi = np.asarray(ci[1], float)[sel.index] * k
                    ax.errorbar(xs, y, yerr=_err(y, lo, hi), fmt="none", ecolor=styles[bb]["color"],
                                capsize=1.5, linewidth=0.8)
                ax.scatter(xs, y, s=18, label=label, **_scatter_style(styles[bb]))
        if m in ("classes", "rtd"):
            ax.set_yscale("log")
        if m == "intra_inter_ratio":
            ax.axhline(1.0, **CHANCE_STYLE)
        if m in ("headroom",):
            ax.axhline(0.0, **CHANCE_STYLE)
        if m == "headroom":
            ax.text(0, 0.5, "not in the\nsources", transform=ax.get_xaxis_transform(), ha="center", fontsize=6,
                    color="grey")
        ax.set_xticks(range(len(columns)), [c[0] for c in columns], fontsize=6.5)
        ax.set_xlim(-0.5, len(columns) - 0.5)
        ax.set_ylabel(MEASURE_LABEL[m], fontsize=7.5)
        ax.grid(alpha=0.3, axis="y")
    axes[1].set_title("zero-shot: 95% Wilson interval over test images", fontsize=7)
    fig.legend(loc="upper center", ncol=1 + len(backbones), frameon=False, fontsize=7, bbox_to_anchor=(0.5, 1.06))
    fig.tight_layout()
    return fig


def example_grid(examples: pd.DataFrame, group: pd.Series | None = None) -> plt.Figure:
    """One test image per class (at most 8) of each task, a row per task, its class names under the images."""
    datasets = list(dict.fromkeys(examples["dataset"]))
    width = int(examples.groupby("dataset").size().max())
    fig, axes = plt.subplots(len(datasets), width, figsize=(1.05 * width, 1.25 * len(datasets)), squeeze=False)
    for r, d in enumerate(datasets):
        rows = examples[examples["dataset"] == d].sort_values("label")
        for c in range(width):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c >= len(rows):
                ax.axis("off")
                continue
            row = rows.iloc[c]
            ax.imshow(row["image"], interpolation="nearest")
            ax.set_xlabel(str(row["classname"]), fontsize=6)
            if c == 0:
                tag = f" ({group.get(d, 'main')})" if group is not None else ""
                ax.set_ylabel(f"{d}{tag}", fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle("one test image per class (the first eight classes of each task), at the backbone's resolution",
                 fontsize=8)
    fig.tight_layout()
    return fig
