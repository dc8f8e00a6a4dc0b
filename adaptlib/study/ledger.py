"""The reproduction ledger: the published numbers the study compares against, and their comparison with the runs.

``references/published_results.csv`` (at the repository root; ``references/README.md`` says where every value was
read) has one row per published number: ``method, backbone, dataset, setting, shots, metric, value, source``, with
method and dataset spelled as adaptlib spells them, ``dataset = average`` for the mean over the 11 datasets of the
few-shot protocol, ``setting`` one of few_shot / base_to_new / cross_dataset, ``metric`` one of accuracy / base /
new / hm, values in percent. Zero-shot rows have ``shots = 0`` (zero-shot uses no training image; its runs are
matched whatever their shot count).

``compare_with_ledger(results, ledger)`` puts each published number next to its reproduction: the mean over
seeds (in %), a 95% confidence interval over seeds, the difference reproduced - published, and ``outside_ci`` when
the published value lies outside that interval. Conventions, those of ``tables``:

- A task's number is the mean of its seeds; an ``average`` is the mean of the 11 task numbers, computed only when
  all 11 datasets have runs (else NaN, and the ``note`` says which are missing). For cross_dataset, ``average``
  is the mean over the 10 target datasets other than ImageNet (the source).
- Base-to-new ``hm`` is the harmonic mean of the seed-averaged base and new accuracies (for ``average``: of the
  task-averaged base and new), the standard protocol.
- The CI is over seeds, the unit that varies between runs of one configuration. ``ci="t"`` (default): a Student-t
  interval of the per-seed values (for ``average``: of the per-seed task averages, over the seeds every task
  has; for ``hm``: of the per-seed harmonic means, so the interval is centred on the mean of per-seed HMs, a hair
  below the HM of the means that ``reproduced`` reports). ``ci="bootstrap"``: a percentile bootstrap that
  resamples seeds and recomputes the reported statistic itself. With fewer than two seeds the CI is NaN,
  ``outside_ci`` is missing (pandas NA) and the note says "one seed: no CI".
- Runs on a dialled task (``dataset`` with ``@``) are never compared; a ledger row of another backbone than the
  runs' finds no runs (note "no runs").
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..utils.paths import REPO_ROOT
from .tables import ZERO_SHOT, harmonic_mean

LEDGER_PATH = REPO_ROOT / "references" / "published_results.csv"
COLUMNS = ("method", "backbone", "dataset", "setting", "shots", "metric", "value", "source")
KEY = ("method", "backbone", "dataset", "setting", "shots", "metric")
SETTINGS = ("few_shot", "base_to_new", "cross_dataset")
METRICS = ("accuracy", "base", "new", "hm")
SETTING_METRICS = {"few_shot": ("accuracy",), "base_to_new": ("base", "new", "hm"), "cross_dataset": ("accuracy",)}
AVERAGE = "average"
# the 11 datasets of the few-shot CLIP protocol, as adaptlib's benchmark registry names them (checked by a test)
FEW_SHOT_DATASETS = ("imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101",
                     "fgvc_aircraft", "sun397", "dtd", "eurosat", "ucf101")
IMAGENET_VARIANTS = ("imagenet_v2", "imagenet_sketch", "imagenet_a", "imagenet_r")
DATASETS = FEW_SHOT_DATASETS + IMAGENET_VARIANTS
CROSS_DATASET_SOURCE = "imagenet"
RESULT_COLUMN = {"accuracy": "accuracy", "base": "base_accuracy", "new": "new_accuracy"}
PAPER_PROFILE = "paper"
OUTPUT_COLUMNS = ("method", "backbone", "dataset", "setting", "shots", "metric", "published", "reproduced", "ci_low",
                  "ci_high", "seeds", "difference", "outside_ci", "note", "source")

_METHOD = re.compile(r"^[a-z0-9][a-z0-9_+@=. -]*$")


class LedgerError(ValueError):
    """A ledger file that cannot be used; the message names the file and the rows at fault."""


# ---------------------------------------------------------------------------------------------------------- loading

def load_ledger(path: str | Path | None = None) -> pd.DataFrame:
    """The ledger at ``path`` (default: the repository's ``references/published_results.csv``), validated.

    Every row needs all of ``COLUMNS``: a known setting and dataset (or ``average``), a metric of that setting,
    an integer ``shots >= 0``, a numeric ``value`` in [0, 100] and a non-empty ``source``; no two rows may give
    the same (method, backbone, dataset, setting, shots, metric). Anything else raises ``LedgerError`` naming the
    file and each faulty row (by its line in the file, the header being line 1)."""
    path = Path(path) if path is not None else LEDGER_PATH
    if not path.is_file():
        raise LedgerError(f"{path}: no ledger file there (the repository keeps it at {LEDGER_PATH})")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise LedgerError(f"{path}: not a readable CSV ledger: {err}") from err
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise LedgerError(f"{path}: missing column(s) {missing}; a ledger has the columns {', '.join(COLUMNS)}")
    if raw.empty:
        raise LedgerError(f"{path}: the ledger has no rows")
    raw = raw[list(COLUMNS)].apply(lambda col: col.astype(str).str.strip())

    problems: list[str] = []
    for i, row in enumerate(raw.itertuples(index=False), start=2):
        for problem in _row_problems(row._asdict()):
            problems.append(f"line {i}: {problem}")
    if not problems:
        dup = raw.duplicated(list(KEY), keep=False)
        for i in np.flatnonzero(dup.to_numpy()):
            key = ", ".join(f"{k}={raw.iloc[i][k]}" for k in KEY)
            problems.append(f"line {i + 2}: another row gives the same number ({key}); keep one published value")
    if problems:
        shown = problems[:12] + ([f"... and {len(problems) - 12} more"] if len(problems) > 12 else [])
        raise LedgerError(f"{path}: invalid ledger row(s):\n  " + "\n  ".join(shown))

    ledger = raw.copy()
    ledger["shots"] = ledger["shots"].astype(int)
    ledger["value"] = ledger["value"].astype(float)
    return ledger.reset_index(drop=True)


def _row_problems(row: dict) -> list[str]:
    out = []
    for col in COLUMNS:
        if not row[col]:
            out.append(f"empty {col!r}")
    if out:
        return out
    if not _METHOD.match(row["method"]):
        out.append(f"method {row['method']!r} is not a method name as adaptlib spells them (lower case, e.g. coop)")
    if row["setting"] not in SETTINGS:
        out.append(f"unknown setting {row['setting']!r} (one of {', '.join(SETTINGS)})")
    elif row["metric"] not in SETTING_METRICS[row["setting"]]:
        what = "unknown metric" if row["metric"] not in METRICS else f"metric not of the {row['setting']} setting:"
        out.append(f"{what} {row['metric']!r} (the {row['setting']} setting has "
                   f"{', '.join(SETTING_METRICS[row['setting']])})")
    if row["dataset"] != AVERAGE and row["dataset"] not in DATASETS:
        out.append(f"unknown dataset {row['dataset']!r} (one of {', '.join(DATASETS)}, or {AVERAGE})")
    if not re.fullmatch(r"\d+", row["shots"]):
        out.append(f"shots {row['shots']!r} is not a whole number >= 0")
    try:
        value = float(row["value"])
    except ValueError:
        out.append(f"value {row['value']!r} is not a number")
    else:
        if not math.isfinite(value) or not 0 <= value <= 100:
            out.append(f"value {row['value']!r} is not a percentage in [0, 100]")
    return out


# ------------------------------------------------------------------------------------------------------- comparison

def compare_with_ledger(df: pd.DataFrame, ledger: pd.DataFrame | None = None, *, confidence: float = 0.95,
                        ci: str = "t", n_boot: int = 10000, seed: int = 0) -> pd.DataFrame:
    """Per ledger row (in the ledger's order): the published value, the reproduced mean over seeds (%), its CI
    over seeds, ``seeds`` (the seeds behind the CI; for ``average``, those every task has), the difference reproduced - published, ``outside_ci`` (published value
    outside the CI; NA where there is no CI) and a ``note`` saying why a number is missing.

    ``df`` is a results table (``results.csv``, or ``tables.load_results``): columns ``method_label``,
    ``dataset``, ``setting``, ``shots``, ``seed``, ``backbone`` and the metric columns, accuracies as fractions.
    ``ledger`` defaults to ``load_ledger()``. See the module docstring for the conventions."""
    if ci not in ("t", "bootstrap"):
        raise ValueError(f"ci must be 't' or 'bootstrap', got {ci!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    ledger = load_ledger() if ledger is None else ledger
    runs = _prepare(df)
    rng = np.random.default_rng(seed)
    rows, selections = [], {}
    for entry in ledger.to_dict("records"):
        key = (entry["setting"], entry["method"], entry["backbone"], int(entry["shots"]))
        if key not in selections:
            selections[key] = _select(runs, entry)
        sel = selections[key]
        if entry["dataset"] == AVERAGE:
            stat = _average_stat(sel, entry)
        else:
            stat = _task_stat(sel, entry, entry["dataset"])
        rows.append(_finish(entry, stat, confidence, ci, n_boot, rng))
    out = pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS))
    out["seeds"] = out["seeds"].astype(int)
    out["outside_ci"] = out["outside_ci"].astype("boolean")
    return out


def _prepare(df: pd.DataFrame) -> pd.DataFrame:
    need = [c for c in ("dataset", "setting", "shots", "seed") if c not in df.columns]
    if "method_label" not in df.columns and "method" not in df.columns:
        need.append("method_label")
    if need:
        raise KeyError(f"the results table lacks column(s) {need}: pass results.csv as adaptlib writes it")
    runs = df.copy()
    if "method_label" not in runs.columns:
        runs["method_label"] = runs["method"]
    runs["dataset"] = runs["dataset"].astype(str)
    dialled = runs["dialled"].astype(bool) if "dialled" in runs.columns else runs["dataset"].str.contains("@",
                                                                                                      regex=False)
    runs = runs[~dialled.to_numpy()].copy()
    runs["method_label"] = runs["method_label"].astype(str)
    runs["shots"] = pd.to_numeric(runs["shots"], errors="coerce")
    runs["seed"] = pd.to_numeric(runs["seed"], errors="coerce")
    if "backbone" in runs.columns:
        runs["backbone"] = runs["backbone"].astype(str)
    return runs


def _select(runs: pd.DataFrame, entry: dict) -> pd.DataFrame:
    keep = (runs["setting"] == entry["setting"]) & (runs["method_label"] == entry["method"])
    if "backbone" in runs.columns:
        keep &= runs["backbone"] == entry["backbone"]
    if entry["method"] != ZERO_SHOT:  # zero-shot does not depend on the shots: any run of it counts
        keep &= runs["shots"] == int(entry["shots"])
    return runs[keep.to_numpy()]


def _per_seed(sel: pd.DataFrame, entry: dict, dataset: str) -> pd.DataFrame:
    """Seed -> the values (%) the metric needs on ``dataset`` (columns ``value``, or ``base`` and ``new`` for hm);
    several runs of one seed (zero-shot at several shot counts) are averaged."""
    if entry["setting"] == "cross_dataset":
        own = sel[sel["dataset"] == dataset]
        parts = [pd.DataFrame({"seed": own["seed"], "value": _col(own, "accuracy")})]
        target = f"accuracy@{dataset}"
        if target in sel.columns:
            parts.append(pd.DataFrame({"seed": sel["seed"], "value": pd.to_numeric(sel[target], errors="coerce")}))
        values = pd.concat(parts, ignore_index=True)
    else:
        rows = sel[sel["dataset"] == dataset]
        if entry["metric"] == "hm":
            values = pd.DataFrame({"seed": rows["seed"], "base": _col(rows, "base_accuracy"),
                                   "new": _col(rows, "new_accuracy")})
        else:
            values = pd.DataFrame({"seed": rows["seed"], "value": _col(rows, RESULT_COLUMN[entry["metric"]])})
    values = values.dropna()
    if values.empty:
        return pd.DataFrame(columns=[c for c in values.columns if c != "seed"], dtype=float)
    values["seed"] = values["seed"].astype(int)
    return values.groupby("seed").mean().mul(100).sort_index()


def _col(rows: pd.DataFrame, name: str) -> pd.Series:
    if name not in rows.columns:
        return pd.Series(np.nan, index=rows.index)
    return pd.to_numeric(rows[name], errors="coerce")


class _Stat:
    """What a reproduced number and its CI come from: ``reported`` (the number), ``units`` (one row per seed:
    ``value``, or ``base`` and ``new`` for hm) and a ``note``."""

    def __init__(self, reported: float | None = None, units: pd.DataFrame | None = None, note: str = ""):
        self.reported, self.units, self.note = reported, units, note


def _task_stat(sel: pd.DataFrame, entry: dict, dataset: str) -> _Stat:
    if sel.empty:
        return _Stat(note="no runs")
    units = _per_seed(sel, entry, dataset)
    if units.empty:
        return _Stat(note="no runs")
    if entry["metric"] == "hm":
        return _Stat(harmonic_mean(float(units["base"].mean()), float(units["new"].mean())), units)
    return _Stat(float(units["value"].mean()), units)


def _average_stat(sel: pd.DataFrame, entry: dict) -> _Stat:
    if entry["setting"] == "cross_dataset":
        tasks = [d for d in FEW_SHOT_DATASETS if d != CROSS_DATASET_SOURCE]
        what = f"the {len(tasks)} target datasets"
    else:
        tasks, what = list(FEW_SHOT_DATASETS), f"all {len(FEW_SHOT_DATASETS)} datasets"
    if sel.empty:
        return _Stat(note="no runs")
    per_task = {t: _per_seed(sel, entry, t) for t in tasks}
    if all(v.empty for v in per_task.values()):
        return _Stat(note="no runs")
    missing = [t for t, v in per_task.items() if v.empty]
    if missing:
        return _Stat(note=f"average needs {what}; missing: {', '.join(missing)}")
    cols = ["base", "new"] if entry["metric"] == "hm" else ["value"]
    # the reported number: mean over tasks of each task's seed mean (hm: of the task-averaged base and new)
    task_means = pd.DataFrame({t: v[cols].mean() for t, v in per_task.items()}).T
    if entry["metric"] == "hm":
        reported = harmonic_mean(float(task_means["base"].mean()), float(task_means["new"].mean()))
    else:
        reported = float(task_means["value"].mean())
    # the CI's units: per seed, the average over tasks, over the seeds every task has
    common = sorted(set.intersection(*(set(v.index) for v in per_task.values())))
    units = pd.concat([v.loc[common, cols] for v in per_task.values()]).groupby(level=0).mean() if common \
        else pd.DataFrame(columns=cols, dtype=float)
    note = "" if len(common) >= 2 else "fewer than two seeds common to every task: no CI"
    return _Stat(reported, units, note)


def _hm(base, new):
    base, new = np.asarray(base, dtype=float), np.asarray(new, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(base + new > 0, 2 * base * new / (base + new), np.nan)


def _finish(entry: dict, stat: _Stat, confidence: float, ci: str, n_boot: int, rng) -> dict:
    out = {"method": entry["method"], "backbone": entry["backbone"], "dataset": entry["dataset"],
           "setting": entry["setting"], "shots": int(entry["shots"]), "metric": entry["metric"],
           "published": float(entry["value"]), "reproduced": np.nan, "ci_low": np.nan, "ci_high": np.nan,
           "seeds": 0, "difference": np.nan, "outside_ci": pd.NA, "note": stat.note, "source": entry["source"]}
    if stat.reported is None:
        return out
    units = stat.units
    out["reproduced"] = float(stat.reported)
    out["difference"] = out["reproduced"] - out["published"]
    out["seeds"] = int(len(units))
    if len(units) < 2:
        out["note"] = stat.note or "one seed: no CI"
        return out
    hm = entry["metric"] == "hm"
    if ci == "t":
        per_unit = _hm(units["base"], units["new"]) if hm else units["value"].to_numpy(dtype=float)
        lo, hi = t_interval(per_unit, confidence)
    else:  # percentile bootstrap over seeds of the reported statistic
        idx = rng.integers(0, len(units), size=(n_boot, len(units)))
        if hm:
            boots = _hm(units["base"].to_numpy(dtype=float)[idx].mean(axis=1),
                        units["new"].to_numpy(dtype=float)[idx].mean(axis=1))
        else:
            boots = units["value"].to_numpy(dtype=float)[idx].mean(axis=1)
        alpha = (1 - confidence) / 2
        lo, hi = (float(q) for q in np.quantile(boots, [alpha, 1 - alpha]))
    out["ci_low"], out["ci_high"] = lo, hi
    out["outside_ci"] = bool(out["published"] < lo or out["published"] > hi)
    return out


def t_interval(values, confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of ``values`` (NaN, NaN with fewer than two values)."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float("nan"), float("nan")
    mean, sem = float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values)))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1)) * sem
    return mean - half, mean + half


# ------------------------------------------------------------------------------------------------------------- note

def ledger_note(profile) -> str | None:
    """The sentence a notebook shows instead of the ledger when its results are not of the paper profile
    (``None`` under the paper profile). ``profile``: a profile name, a profile file's path, or a loaded
    ``Profile``."""
    name = getattr(profile, "name", profile)
    if isinstance(name, Path) or (isinstance(name, str) and name.endswith((".yaml", ".yml"))):
        name = Path(name).stem
    name = str(name)
    if name == PAPER_PROFILE:
        return None
    return (f"The reproduction ledger compares with published numbers and needs the paper profile (CLIP ViT-B/16 "
            f"on the 11 datasets of the few-shot protocol): the {name} profile's results have no published "
            f"counterpart, so nothing is compared here.")
