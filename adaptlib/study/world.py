"""The embedded world characterised against the 11-dataset benchmark (notebook 00): per task and backbone the
properties that make a task hard or easy to adapt to (classes, test images, zero-shot accuracy, chance-corrected
zero-shot error 1 - kappa, APEX's RTD, the frozen image features' intra/inter-class similarity ratio, the headroom of
a 16-shot linear probe over zero-shot), and the benchmark's values of the same measures from the literature
(``references/benchmark_properties.csv``), so a reader sees where the miniature does and does not resemble it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.difficulty import chance_corrected_error, relative_transfer_difficulty
from ..utils.paths import REPO_ROOT
from .difficulty import task_difficulty

BENCHMARK_FILE = REPO_ROOT / "references" / "benchmark_properties.csv"
COLUMNS = ["task", "backbone", "group", "classes", "test_images", "zero_shot", "one_minus_kappa", "rtd",
           "intra_inter_ratio", "headroom"]
# what a measure is, as the figure's axes say it
MEASURE_LABEL = {
    "classes": "classes (log scale)",
    "zero_shot": "zero-shot accuracy (%)",
    "one_minus_kappa": "chance-corrected zero-shot error 1 - kappa",
    "rtd": "RTD = 1 / (C x zero-shot acc) (log scale)",
    "intra_inter_ratio": "intra/inter-class similarity ratio",
    "headroom": "headroom: 16-shot linear probe - zero-shot (points)",
}


def task_properties(df: pd.DataFrame, classes: pd.Series, structure: pd.DataFrame, groups: pd.Series,
                    backbone: str, shots: int = 16) -> pd.DataFrame:
    """One row per few-shot task of the results (``COLUMNS``; accuracies as fractions): ``classes``, ``groups``
    and ``structure`` (the test split's class structure, whose ``n`` is its number of test images) are the
    measures stage's tables."""
    diff = task_difficulty(df, classes, shots=shots)
    missing = [t for t in diff.index if t not in structure.index]
    if missing:
        raise KeyError(f"no test-split class structure of task(s) {missing}: compute the measures again "
                       f"(make measures)")
    out = pd.DataFrame({
        "task": diff.index,
        "backbone": backbone,
        "group": [groups.get(t, "main") for t in diff.index],
        "classes": diff["classes"].astype(int).values,
        "test_images": structure.loc[diff.index, "n"].astype(int).values,
        "zero_shot": diff["zero_shot"].values,
        "one_minus_kappa": diff["zero_shot_error_kappa"].values,
        "rtd": diff["rtd"].values,
        "intra_inter_ratio": structure.loc[diff.index, "intra_inter_ratio"].values,
        "headroom": diff["headroom"].values,
    }, columns=COLUMNS)
    return out.sort_values(["group", "task"], key=lambda c: c.map({"main": 0, "far": 1}) if c.name == "group"
                           else c).reset_index(drop=True)


def load_benchmark(path: str | Path = BENCHMARK_FILE) -> pd.DataFrame:
    """The 11 benchmark datasets' measures from the literature, with 1 - kappa and RTD computed from their
    zero-shot accuracy and class count (the headroom is not in the sources: NaN)."""
    path = Path(path)
    table = pd.read_csv(path)
    need = {"dataset", "classes", "zero_shot", "intra_inter_ratio", "source"}
    if not need <= set(table.columns):
        raise ValueError(f"{path} lacks column(s) {sorted(need - set(table.columns))}; it needs {sorted(need)}")
    if table["source"].isna().any() or (table["source"].astype(str).str.strip() == "").any():
        raise ValueError(f"{path}: every row needs a source (where its numbers were read)")
    table = table.assign(one_minus_kappa=chance_corrected_error(table["zero_shot"], table["classes"]),
                         rtd=relative_transfer_difficulty(table["zero_shot"], table["classes"]),
                         headroom=np.nan)
    return table


def zero_shot_ci(accuracy: pd.Series, n: pd.Series, z: float = 1.959964) -> tuple[np.ndarray, np.ndarray]:
    """Wilson 95% interval of a zero-shot accuracy measured on ``n`` test images (fractions): what a task's test
    split can resolve."""
    p, n = np.asarray(accuracy, float), np.asarray(n, float)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def ranges(tasks: pd.DataFrame, benchmark: pd.DataFrame) -> pd.DataFrame:
    """Per measure: the benchmark's range and median beside the embedded main suite's, and the share of main tasks
    inside the benchmark's range."""
    main = tasks[tasks["group"] == "main"]
    rows = []
    for m in ["classes", "zero_shot", "one_minus_kappa", "rtd", "intra_inter_ratio", "headroom"]:
        b = benchmark[m].dropna()
        e = main[m].dropna()
        inside = float(((e >= b.min()) & (e <= b.max())).mean()) if len(b) and len(e) else np.nan
        rows.append({"measure": m,
                     "benchmark_min": b.min() if len(b) else np.nan, "benchmark_median": b.median() if len(b) else np.nan,
                     "benchmark_max": b.max() if len(b) else np.nan,
                     "embedded_min": e.min(), "embedded_median": e.median(), "embedded_max": e.max(),
                     "embedded_inside_benchmark_range": inside})
    return pd.DataFrame(rows).set_index("measure")


def issue_targets(tasks: pd.DataFrame) -> pd.DataFrame:
    """The suite's targets (issue 13) checked on the main tasks: each with its measured value and whether it holds."""
    main = tasks[tasks["group"] == "main"]
    chance = 1.0 / main["classes"]
    checks = [
        ("main tasks", "at least 20", len(main), len(main) >= 20),
        ("1 - kappa range", "reaches about 0.07 and 0.76 (the extremes: the two rows below)",
         f"{main['one_minus_kappa'].min():.2f} to {main['one_minus_kappa'].max():.2f}",
         bool(main["one_minus_kappa"].min() <= 0.1 and main["one_minus_kappa"].max() >= 0.7)),
        ("tasks above 95% zero-shot", "none", int((main["zero_shot"] > 0.95).sum()),
         bool((main["zero_shot"] <= 0.95).all())),
        ("tasks within twice chance", "none", int((main["zero_shot"] < 2 * chance).sum()),
         bool((main["zero_shot"] >= 2 * chance).all())),
        ("intra/inter ratio above 1", "at least 80% of tasks", f"{(main['intra_inter_ratio'] > 1).mean():.0%}",
         bool((main["intra_inter_ratio"] > 1).mean() >= 0.8)),
        ("positive headroom", "at least 80% of tasks", f"{(main['headroom'] > 0).mean():.0%}",
         bool((main["headroom"] > 0).mean() >= 0.8)),
        ("tasks with 50+ classes", "at least 2", int((main["classes"] >= 50).sum()),
         bool((main["classes"] >= 50).sum() >= 2)),
        ("test images per task", "at least 1,000", int(main["test_images"].min()),
         bool((main["test_images"] >= 1000).all())),
    ]
    return pd.DataFrame(checks, columns=["target", "wanted", "measured", "holds"]).set_index("target")


def readable(tasks: pd.DataFrame, descriptions: dict[str, str] | None = None) -> pd.DataFrame:
    """``tasks`` as the README shows it: percentages, two or three decimals, the task's description."""
    out = pd.DataFrame({
        "task": tasks["task"], "group": tasks["group"], "backbone": tasks["backbone"], "classes": tasks["classes"],
        "test images": tasks["test_images"],
        "chance %": (100.0 / tasks["classes"]).round(1),
        "zero-shot %": (100 * tasks["zero_shot"]).round(1),
        "1 - kappa": tasks["one_minus_kappa"].round(2),
        "RTD": tasks["rtd"].round(3),
        "intra/inter": tasks["intra_inter_ratio"].round(2),
        "headroom (points)": (100 * tasks["headroom"]).round(1),
    })
    if descriptions:
        out["what it is"] = [descriptions.get(t, "") for t in tasks["task"]]
    return out
