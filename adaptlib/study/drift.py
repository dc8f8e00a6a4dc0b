"""The parameter and representation drift question (CLIPFit).

Claims tested (declared as ``Claim`` s, tested through :func:`adaptlib.study.verdicts.test_claims`):
1. CLIPFit beats zero-shot CLIP in base-to-new (per task and seed: CLIPFit's HM minus zero-shot's; zero-shot has
   one run per task, paired with every CLIPFit seed; sign-flip test over tasks);
2. among CLIPFit's text FFN biases, the low-level (early) layers change most (drift falls with depth: Spearman's
   rho over the layers, exact permutation p);
3. among the image LayerNorms, the first one changes most (its rank among all LayerNorms, exact p = rank / count);
4. the text-feature regulariser keeps the class text features close to the frozen ones (drift falls as its weight
   grows: Page's trend test within tasks).
Drift is CLIPFit's own measure, the squared L2 change sum (theta - theta0)^2 of a layer's (or module's) tensors
(``PRIMARY``); relative L2 and RMS are shown beside it.

The per-tensor drift and the per-layer CKA of the saved runs come from the measures stage
(``adaptlib.measures.drift``: tables ``drift`` and ``cka``); this module reads them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ..analysis import drift_by_layer
from ..analysis.claims import Claim
from .tables import ZERO_SHOT, base_to_new_seeds
from .verdicts import Planned, complete, sizes_of

PRIMARY = "sq_l2"  # CLIPFit's measure; rel_l2 and rms beside it
MEASURES = ("sq_l2", "rel_l2", "rms")
MEASURE_LABEL = {"sq_l2": "squared L2 change", "rel_l2": "relative L2 change", "rms": "RMS change"}

# --- the claims, declared before any result is read --------------------------------------------------------------
BEATS_ZERO_SHOT = Claim("CLIPFit 1: CLIPFit beats zero-shot CLIP in base-to-new HM", "paired_difference",
                        "greater", unit="points")
LOW_TEXT_LAYERS = Claim("CLIPFit 2: the low text FFN bias layers change most (drift falls with depth)",
                        "depth_trend", "less")
FIRST_LAYERNORM = Claim("CLIPFit 3: the first image LayerNorm changes most", "argmax_is_first", "greater")
REGULARISER = Claim("CLIPFit 4: text-feature drift falls as the regulariser's weight grows", "trend", "less")


def layer_profile(drift: pd.DataFrame, method: str, tower: str, module: str | None = None,
                  measure: str = PRIMARY) -> pd.DataFrame:
    """Mean over tasks of the per-layer drift of ``method`` in ``tower`` (optionally one module kind)."""
    sel = drift[(drift["method"] == method) & (drift["tower"] == tower)]
    if module is not None:
        sel = sel[sel["module"].str.startswith(module)]
    per_task = []
    for dataset, g in sel.groupby("dataset"):
        layers = drift_by_layer(g)
        per_task.append(layers.assign(dataset=dataset))
    if not per_task:
        return pd.DataFrame()
    table = pd.concat(per_task)
    return table.groupby("layer")[measure].agg(["mean", "std"]).reset_index()


def regulariser_table(df: pd.DataFrame, prefix: str = "clipfit@lambda=") -> pd.DataFrame:
    """Per regulariser weight: text-feature drift, base, new and HM (means over tasks, %)."""
    rows = df[df["method_label"].astype(str).str.startswith(prefix) & (df["setting"] == "base_to_new")]
    if rows.empty:
        raise ValueError(f"no runs labelled {prefix}<weight> in the results")
    rows = rows.assign(weight=rows["method_label"].str.removeprefix(prefix).astype(float))
    g = rows.groupby("weight")
    table = pd.DataFrame({
        "text_feature_drift": g["text_feature_drift"].mean(),
        "base": 100 * g["base_accuracy"].mean(), "new": 100 * g["new_accuracy"].mean()})
    table["hm"] = 2 * table["base"] * table["new"] / (table["base"] + table["new"])
    return table.sort_index()




def regulariser_seeds(df: pd.DataFrame, prefix: str = "clipfit@lambda=") -> pd.DataFrame:
    """Per (dataset, seed): the text-feature drift of each regulariser weight (columns: the weights as text, in
    increasing order)."""
    rows = df[df["method_label"].astype(str).str.startswith(prefix) & (df["setting"] == "base_to_new")]
    if rows.empty:
        return pd.DataFrame(columns=["dataset", "seed"])
    rows = rows.assign(weight=rows["method_label"].str.removeprefix(prefix).astype(float))
    table = rows.pivot_table(index=["dataset", "seed"], columns="weight", values="text_feature_drift",
                             aggfunc="mean").sort_index(axis=1)
    table.columns = [f"{w:g}" for w in table.columns]
    return table.reset_index()


def regulariser_planned(df: pd.DataFrame, prefix: str = "clipfit@lambda=") -> Planned:
    """CLIPFit claim 4: Page's trend test of the text-feature drift along the regulariser weights, within tasks."""
    table = regulariser_seeds(df, prefix)
    weights = [c for c in table.columns if c not in ("dataset", "seed")]
    if len(weights) < 2:
        return Planned(REGULARISER, problem=f"{len(weights)} regulariser weight(s) run; a trend needs 2")
    table = complete(table, weights)
    n_t, n_s = sizes_of(table)
    if not n_t:
        return Planned(REGULARISER, problem="no task has the text-feature drift of every weight")
    return Planned(REGULARISER, {"data": table, "columns": weights, "levels": [float(w) for w in weights]},
                   sizes={"n_items": len(weights)}, n_tasks=n_t, n_seeds=n_s)


def beats_zero_shot_planned(df: pd.DataFrame, shots: int, method: str = "clipfit") -> Planned:
    """CLIPFit claim 1: per (task, seed), CLIPFit's base-to-new HM against zero-shot's (one run per task, paired
    with every seed)."""
    table = base_to_new_seeds(df, [method, ZERO_SHOT], shots)
    if method not in table.columns or ZERO_SHOT not in table.columns:
        return Planned(BEATS_ZERO_SHOT, problem=f"no base-to-new runs of {method} and zero-shot on a common task")
    table = complete(table, [method, ZERO_SHOT])
    n_t, n_s = sizes_of(table)
    if not n_t:
        return Planned(BEATS_ZERO_SHOT, problem="no task has both")
    return Planned(BEATS_ZERO_SHOT, {"data": table, "a_col": method, "b_col": ZERO_SHOT}, n_tasks=n_t, n_seeds=n_s)


def _cube(per: pd.DataFrame, unit: list[str], measure: str) -> tuple[np.ndarray, list]:
    """per-(dataset, seed, unit) rows -> (tasks, seeds, units) array (NaN-padded seeds), units in order."""
    units = sorted({tuple(u) for u in per[unit].to_numpy().tolist()})
    tasks = sorted(per["dataset"].unique())
    n_s = int(per.groupby("dataset")["seed"].nunique().max())
    arr = np.full((len(tasks), n_s, len(units)), np.nan)
    index = {u: i for i, u in enumerate(units)}
    for ti, (task, g) in enumerate(per.groupby("dataset", sort=True)):
        for si, (_, gs) in enumerate(g.groupby("seed", sort=True)):
            for _, r in gs.iterrows():
                arr[ti, si, index[tuple(r[c] for c in unit)]] = r[measure]
    present = ~np.isnan(arr).all(axis=2)  # the (task, seed) slots that have a run
    keep = ~(np.isnan(arr) & present[..., None]).any(axis=(0, 1))  # units measured in every run
    arr = arr[..., keep]
    return arr, [u for u, k in zip(units, keep) if k]


def depth_values(drift: pd.DataFrame, method: str = "clipfit", tower: str = "text", module: str = "mlp.c_proj",
                 param: str | None = "bias", measure: str = PRIMARY) -> tuple[np.ndarray, list[int]]:
    """(tasks, seeds, layers) drift of ``method``'s ``module`` tensors per transformer block (layers >= 0, in
    depth order; the tensors of a layer aggregated as one vector, :func:`adaptlib.analysis.drift_by_layer`)."""
    sel = drift[(drift["method"] == method) & (drift["tower"] == tower)]
    if module is not None:
        sel = sel[sel["module"].str.startswith(module)]
    if param is not None:
        sel = sel[sel["param"] == param]
    sel = sel[sel["layer"] >= 0]
    if sel.empty:
        return np.empty((0, 0, 0)), []
    per = drift_by_layer(sel, by=("dataset", "seed", "layer"))
    arr, units = _cube(per, ["layer"], measure)
    return arr, [u[0] for u in units]


def layernorm_values(drift: pd.DataFrame, method: str = "clipfit", measure: str = PRIMARY
                     ) -> tuple[np.ndarray, list[str]]:
    """(tasks, seeds, modules) drift of ``method``'s image LayerNorms in network order: ln_pre, then ln_1 and ln_2
    of each block, then ln_post (weight and bias of one LayerNorm aggregated as one vector)."""
    sel = drift[(drift["method"] == method) & (drift["tower"] == "image") & drift["module"].str.startswith("ln")]
    if sel.empty:
        return np.empty((0, 0, 0)), []
    per = drift_by_layer(sel, by=("dataset", "seed", "layer", "module"))
    arr, units = _cube(per, ["layer", "module"], measure)
    return arr, [f"layer {layer} {module}" for layer, module in units]


def drift_planned(drift: pd.DataFrame | None, method: str = "clipfit", measure: str = PRIMARY) -> list[Planned]:
    """CLIPFit claims 2 and 3 on the saved runs' drift (``measure``, default CLIPFit's squared L2)."""
    if drift is None or drift.empty:
        return [Planned(LOW_TEXT_LAYERS, problem="no run saved its state"),
                Planned(FIRST_LAYERNORM, problem="no run saved its state")]
    out = []
    values, layers = depth_values(drift, method, measure=measure)
    if len(layers) < 3:
        out.append(Planned(LOW_TEXT_LAYERS, problem=f"{len(layers)} text layer(s) with drift; a depth trend needs 3",
                           n_tasks=values.shape[0] if values.ndim == 3 else 0,
                           n_seeds=values.shape[1] if values.ndim == 3 else 0))
    else:
        out.append(Planned(LOW_TEXT_LAYERS, {"values": values}, sizes={"n_items": len(layers)},
                           n_tasks=values.shape[0], n_seeds=values.shape[1]))
    values, modules = layernorm_values(drift, method, measure)
    if len(modules) < 2:
        out.append(Planned(FIRST_LAYERNORM, problem=f"{len(modules)} image LayerNorm(s) with drift"))
    else:
        out.append(Planned(FIRST_LAYERNORM, {"values": values, "names": modules}, sizes={"n_items": len(modules)},
                           n_tasks=values.shape[0], n_seeds=values.shape[1]))
    return out


def drift_measures_table(drift: pd.DataFrame, method: str = "clipfit") -> pd.DataFrame:
    """Per image LayerNorm (network order) and per text c_proj.bias layer of ``method``: the three drift measures
    (mean over tasks and seeds), squared L2 first (the primary measure), with each measure's rank (1 = most)."""
    rows = []
    for what, (values_fn, kw) in {"text c_proj.bias": (depth_values, {}),
                                  "image LayerNorm": (layernorm_values, {})}.items():
        for measure in MEASURES:
            values, units = values_fn(drift, method, measure=measure, **kw)
            if not len(units):
                continue
            prof = np.nanmean(np.nanmean(values, axis=1), axis=0)
            ranks = pd.Series(prof).rank(ascending=False, method="min").to_numpy()
            for u, v, r in zip(units, prof, ranks):
                rows.append({"group": what, "unit": f"layer {u}" if isinstance(u, (int, np.integer)) else u,
                             "measure": measure, "value": v, "rank": int(r)})
    if not rows:
        return pd.DataFrame(columns=["group", "unit"])
    t = pd.DataFrame(rows)
    wide = t.pivot_table(index=["group", "unit"], columns="measure", values=["value", "rank"], sort=False)
    wide.columns = [f"{m}" if k == "value" else f"{m}_rank" for k, m in wide.columns]
    return wide[[c for c in [*MEASURES, *[f"{m}_rank" for m in MEASURES]] if c in wide.columns]]


def regulariser_ci(df: pd.DataFrame, prefix: str = "clipfit@lambda=") -> pd.DataFrame:
    """:func:`regulariser_table` with 95% CIs (bootstrap over tasks, then seeds) of the text-feature drift and of
    base, new and HM (``<col>_ci_low``, ``<col>_ci_high``); HM here is the mean over tasks of per-run HMs' task
    means for the CI, the table's HM of the averages for the point."""
    from .tables import mean_ci

    table = regulariser_table(df, prefix)
    labels = [f"{prefix}{w:g}" for w in table.index]
    rows = df[df["method_label"].isin(labels) & (df["setting"] == "base_to_new")]
    b, n = rows["base_accuracy"].astype(float), rows["new_accuracy"].astype(float)
    rows = rows.assign(hm=(2 * b * n / (b + n)).where(b + n > 0))
    for col, metric, scale in (("text_feature_drift", "text_feature_drift", 1.0), ("base", "base_accuracy", 100.0),
                               ("new", "new_accuracy", 100.0), ("hm", "hm", 100.0)):
        if metric not in rows.columns:
            continue
        from .verdicts import seed_pivot

        per = seed_pivot(rows, "method_label", metric, scale)
        cols = [c for c in labels if c in per.columns]
        ci = mean_ci(per, cols, n_boot=1000)
        table[f"{col}_ci_low"] = ci["ci_low"].reindex(cols).to_numpy()
        table[f"{col}_ci_high"] = ci["ci_high"].reindex(cols).to_numpy()
    return table


def first_layernorm_changes_most(drift: pd.DataFrame, method: str = "clipfit", measure: str = PRIMARY) -> dict:
    """Descriptive (decides nothing; the claim is tested by :data:`FIRST_LAYERNORM`): which image LayerNorm drifts
    most, averaged over tasks, and the top five."""
    sel = drift[(drift["method"] == method) & (drift["tower"] == "image") & drift["module"].str.startswith("ln")]
    per_module = sel.groupby(["layer", "module"])[measure].mean().sort_values(ascending=False)
    top_layer, top_module = per_module.index[0]
    first = per_module.index.min()
    return {"most_changed": f"layer {top_layer} {top_module}", "first": f"layer {first[0]} {first[1]}",
            "ranking": [f"{layer}:{module}" for layer, module in per_module.index[:5]]}
