"""Transfer difficulty of a task for a CLIP backbone (APEX, arXiv 2311.15569, and two corrections of it).

APEX's relative transfer difficulty RTD = 1 / (C * zero-shot accuracy) is chance accuracy divided by zero-shot
accuracy: 1 at chance, 1/C at perfect accuracy. It is therefore dominated by the class count C, so the study
also reports the chance-corrected zero-shot error 1 - kappa (0 perfect, 1 chance, whatever C) and the headroom
left for adaptation (16-shot linear probe minus zero-shot). Accuracies are fractions in [0, 1].
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._arrays import ArrayLike, as_f64

TABLE_COLUMNS = ("dataset", "classes", "zero_shot", "linear_probe_16")
MEASURES = ("rtd", "zero_shot_error_kappa", "headroom")


def _accuracy(x: ArrayLike, name: str, allow_zero: bool = True) -> np.ndarray:
    acc = as_f64(x, name)
    if np.any(acc > 1):
        hint = " (they look like percentages: divide by 100)" if np.all(acc <= 100) else ""
        raise ValueError(f"{name} must be fractions in [0, 1]{hint}; got max {acc.max():g}")
    if np.any(acc < 0) or (not allow_zero and np.any(acc == 0)):
        bound = "(0, 1]" if not allow_zero else "[0, 1]"
        raise ValueError(f"{name} must lie in {bound}; got min {acc.min():g}")
    return acc


def _classes(x: ArrayLike) -> np.ndarray:
    c = as_f64(x, "classes")
    if np.any(c != np.round(c)) or np.any(c < 2):
        raise ValueError(f"classes must be integers >= 2 (a task needs two classes); got {np.ravel(c).tolist()}")
    return c


def _out(x: np.ndarray) -> float | np.ndarray:
    return float(x) if x.ndim == 0 else x


def relative_transfer_difficulty(zero_shot: ArrayLike, classes: ArrayLike) -> float | np.ndarray:
    """APEX's RTD = 1 / (C * acc_zs): how far zero-shot is above chance, as a ratio (EuroSAT 0.184)."""
    acc = _accuracy(zero_shot, "zero_shot", allow_zero=False)
    return _out(1.0 / (_classes(classes) * acc))


def chance_corrected_error(zero_shot: ArrayLike, classes: ArrayLike) -> float | np.ndarray:
    """1 - kappa with kappa = (acc - 1/C) / (1 - 1/C): zero-shot error relative to chance, comparable across C.

    Negative kappa (below chance) gives an error above 1; it is kept, not clipped, so such a task stands out.
    """
    acc = _accuracy(zero_shot, "zero_shot")
    chance = 1.0 / _classes(classes)
    return _out(1.0 - (acc - chance) / (1.0 - chance))


def headroom(linear_probe_16: ArrayLike, zero_shot: ArrayLike) -> float | np.ndarray:
    """16-shot linear-probe accuracy minus zero-shot accuracy: what few-shot supervision alone can add.

    Negative when the probe loses to zero-shot (it does on some tasks at few shots); kept as is.
    """
    return _out(_accuracy(linear_probe_16, "linear_probe_16") - _accuracy(zero_shot, "zero_shot"))


def difficulty_table(table: pd.DataFrame) -> pd.DataFrame:
    """The three difficulty measures for each dataset of ``table``, with their ranks (1 = hardest).

    ``table`` has the columns dataset, classes, zero_shot, linear_probe_16 (accuracies as fractions); the result
    keeps its rows and order and adds rtd, zero_shot_error_kappa, headroom and rank_<measure> (ties share the
    smaller rank), so the RTD ordering of APEX can be set beside the chance-corrected one.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks column(s) {missing}; it needs {list(TABLE_COLUMNS)}")
    if table.empty:
        raise ValueError("table has no rows")
    dup = table["dataset"][table["dataset"].duplicated()].tolist()
    if dup:
        raise ValueError(f"dataset names must be unique; repeated: {dup}")
    out = table.copy()
    out["rtd"] = relative_transfer_difficulty(table["zero_shot"], table["classes"])
    out["zero_shot_error_kappa"] = chance_corrected_error(table["zero_shot"], table["classes"])
    out["headroom"] = headroom(table["linear_probe_16"], table["zero_shot"])
    for m in MEASURES:
        out[f"rank_{m}"] = out[m].rank(ascending=False, method="min").astype(int)
    return out
