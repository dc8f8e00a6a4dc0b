"""The data check: is every benchmark where the readers expect it, and can every one of its images be opened?

A folder of your own images (``folder:PATH``, ``adaptlib/data/folder.py``) is checked the same way: when the root
is itself such a folder (class folders, train/ test/ folders or a split file) or when ``--datasets folder:PATH``
names one.

For each dataset it says found or missing, counts images per split and classes, and lists every problem (missing
or unreadable images, classes without images, files the reader rejects) without stopping at the first one: a
user fixing a data folder wants the whole list in one run. ``quick`` checks that image files exist; the default
also opens each with PIL's ``verify()`` (reads headers and structure, does not decode every pixel).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from ..utils.names import unknown_name_error
from .benchmarks import BENCHMARKS, load_benchmark
from .benchmarks.base import DOCS
from .dataset import Sample, unreadable_reason
from .folder import FolderScan, folder_path, is_folder_dataset_root, is_folder_name, scan_folder

MAX_STORED = 1000  # problems kept per dataset; every problem is counted
BATCH = 4096
PROGRESS_FROM = 2 * BATCH  # images of a dataset from which the check shows a progress bar


@dataclass
class DatasetReport:
    """What the check found for one dataset."""

    name: str
    path: Path
    found: bool
    counts: dict[str, int] = field(default_factory=dict)
    num_classes: int | None = None
    expected_classes: int | None = None
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    missing_images: int = 0
    unreadable_images: int = 0
    notes: list[str] = field(default_factory=list)  # facts worth knowing that are not problems (folder datasets)
    folder: bool = False  # a folder dataset (folder:PATH), not a benchmark

    @property
    def missing(self) -> bool:
        return not self.found

    @property
    def ok(self) -> bool:
        return self.found and self.problem_count == 0

    def add(self, problem: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_STORED:
            self.problems.append(problem)


def image_problem(path: Path, quick: bool) -> tuple[str, str] | None:
    """None when the image is fine, else (kind, detail) with kind "missing" or "unreadable"."""
    if not path.is_file():
        return "missing", ""
    if quick:
        return None
    reason = unreadable_reason(path)
    return None if reason is None else ("unreadable", reason)


def _unique_samples(splits: dict[str, list[Sample]]) -> list[tuple[str, Sample]]:
    seen: set[str] = set()
    out = []
    for split, samples in splits.items():
        for s in samples:
            if s.key not in seen:
                seen.add(s.key)
                out.append((split, s))
    return out


def check_dataset(root: Path, name: str, quick: bool = False, workers: int | None = None,
                  progress: bool = False) -> DatasetReport:
    """Check one dataset; a reader error becomes a problem of the report, never an exception. ``progress`` shows
    a bar on stderr for datasets of more than ``PROGRESS_FROM`` images."""
    info = BENCHMARKS[name]
    path = Path(root) / info.folder
    report = DatasetReport(name, path, found=path.is_dir(), expected_classes=info.num_classes)
    if not report.found:
        return report
    try:
        dataset = load_benchmark(name, root)
    except (OSError, ValueError, KeyError) as err:
        report.add(f"cannot read the dataset: {err}")
        return report
    _check_classes(report, dataset.classnames, dataset.splits)
    _check_images(report, Path(dataset.info["image_root"]), dataset.splits, quick, workers, progress)
    return report


def _check_classes(report: DatasetReport, classnames: list[str], splits: dict[str, list[Sample]]) -> None:
    """Counts per split, the class count, and every class without images in a split."""
    report.counts = {s: len(v) for s, v in splits.items()}
    report.num_classes = len(classnames)
    for split, samples in splits.items():
        present = {s.label for s in samples}
        for label, classname in enumerate(classnames):
            if label not in present:
                report.add(f"class {classname!r} (label {label}) has no {split} images")


def _check_images(report: DatasetReport, image_root: Path, splits: dict[str, list[Sample]], quick: bool,
                  workers: int | None, progress: bool) -> list[str]:
    """Open (or, ``quick``, find) every image once, recording each problem; the keys of the bad ones."""
    name = report.name
    items = _unique_samples(splits)
    bad: list[str] = []
    workers = workers or min(8, (os.cpu_count() or 1) + 2)
    bar = tqdm(total=len(items), desc=f"checking {name}", unit="image", file=sys.stderr, leave=False,
               disable=not progress or len(items) < PROGRESS_FROM, mininterval=1.0, dynamic_ncols=True)
    with ThreadPoolExecutor(max_workers=workers) as pool:  # file I/O bound: threads overlap the reads
        for start in range(0, len(items), BATCH):  # batches keep ImageNet's 1.3M pending checks out of memory
            batch = items[start:start + BATCH]
            results = pool.map(lambda item: image_problem(image_root / item[1].key, quick), batch)
            for (split, sample), problem in zip(batch, results, strict=True):
                if problem is not None:
                    _record(report, image_root, split, sample, problem)
                    bad.append(sample.key)
            bar.update(len(batch))
    bar.close()
    return bad


def check_folder(name: str, quick: bool = False, workers: int | None = None,
                 progress: bool = False) -> DatasetReport:
    """Check the folder dataset ``folder:PATH`` as a benchmark is checked (a layout error becomes a problem),
    plus the classes a run would lose to unreadable images and notes on the layout and the smallest class."""
    path = folder_path(name)
    report = DatasetReport(name, path, found=path.exists(), folder=True)
    if not report.found:
        return report
    try:
        scan = scan_folder(name)
    except (OSError, ValueError, KeyError) as err:
        report.add(f"cannot read the dataset: {err}")
        return report
    _check_classes(report, scan.classnames, scan.splits)
    bad = set(_check_images(report, scan.image_root, scan.splits, quick, workers, progress))
    for split in ("train", "val"):
        good = {s.label for s in scan.splits[split] if s.key not in bad}
        for label in sorted({s.label for s in scan.splits[split]} - good):
            report.add(f"class {scan.classnames[label]!r} (label {label}) has no readable {split} images: a run "
                       f"stops on it; replace them")
    report.notes = _folder_notes(scan, bad)
    return report


def _folder_notes(scan: FolderScan, bad: set[str]) -> list[str]:
    """Layout, split rule, templates and the most shots the smallest class allows."""
    per_class = [0] * len(scan.classnames)
    for s in scan.splits["train"]:
        per_class[s.label] += s.key not in bad
    smallest = min(range(len(per_class)), key=per_class.__getitem__)
    notes = [f"layout: {scan.layout} ({scan.split_policy})",
             f"classes: {', '.join(repr(c) for c in scan.classnames[:10])}"
             + (f" ... and {len(scan.classnames) - 10} more" if len(scan.classnames) > 10 else ""),
             f"templates: {scan.templates}",
             f"smallest class: {scan.classnames[smallest]!r} with {per_class[smallest]} train images, so at most "
             f"--shots {per_class[smallest]}"]
    return notes + scan.notes


def _record(report: DatasetReport, image_root: Path, split: str, sample: Sample, problem: tuple[str, str]) -> None:
    kind, detail = problem
    if kind == "missing":
        report.missing_images += 1
    else:
        report.unreadable_images += 1
    where = f"{image_root / sample.key} ({split}, class {sample.classname!r})"
    report.add(f"{kind} image {where}" + (f": {detail}" if detail else ""))


def check_root(root: Path | None, names: list[str] | None = None, quick: bool = False,
               workers: int | None = None, progress: bool = False) -> list[DatasetReport]:
    """Check each of ``names`` (default: every benchmark) under the data root ``root``; ``folder:PATH`` names are
    checked where they point. A root that is itself a folder dataset, without ``names``, is checked as one."""
    benchmark_folders = [info.folder for info in BENCHMARKS.values()]
    if root is not None and names is None and is_folder_dataset_root(Path(root), benchmark_folders):
        return [check_folder(f"folder:{root}", quick, workers, progress)]
    names = list(BENCHMARKS) if names is None else list(names)
    for name in names:
        if name not in BENCHMARKS and not is_folder_name(name):
            raise unknown_name_error("benchmark dataset (or folder:PATH)", name, BENCHMARKS)
    benchmarks = [n for n in names if not is_folder_name(n)]
    if benchmarks and root is None:
        raise FileNotFoundError(f"benchmark(s) {benchmarks} need --root: the folder that holds the dataset folders "
                                f"({DOCS})")
    if benchmarks:
        root = Path(root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"data root {root} does not exist or is not a folder: pass the folder that "
                                    f"holds the dataset folders ({DOCS}), or a folder of your own images")
    return [check_folder(n, quick, workers, progress) if is_folder_name(n) else
            check_dataset(Path(root), n, quick, workers, progress) for n in names]


def _status(r: DatasetReport) -> str:
    return "missing" if r.missing else ("ok" if r.ok else "PROBLEMS")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def format_report(reports: Iterable[DatasetReport], max_problems: int = 10) -> str:
    """A table (one row per dataset), then each dataset's problems: at most ``max_problems`` lines, all counted."""
    reports = list(reports)
    header = ("dataset", "status", "classes", "train", "val", "test", "problems")
    rows = [header]
    for r in reports:
        expected = "" if r.expected_classes is None else f"/{r.expected_classes}"
        classes = "-" if r.num_classes is None else f"{r.num_classes}{expected}"
        counts = [str(r.counts[s]) if s in r.counts else "-" for s in ("train", "val", "test")]
        rows.append((r.name, _status(r), classes, *counts, str(r.problem_count)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:  # names and status left-aligned, numbers right-aligned
        cells = zip(row, widths, strict=True)
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(cells)).rstrip()

    lines = [line(row) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    missing = [r for r in reports if r.missing and not r.folder]
    if missing:
        lines.append(f"\nnot found ({DOCS} says how to get each):")
        lines += [f"  - {r.name}: expected the folder {r.path}" for r in missing]
    lines += [f"\n{r.name}: {r.path} does not exist: pass a folder of images (one sub-folder per class) or a split "
              f"file" for r in reports if r.missing and r.folder]
    for r in reports:
        if r.notes:
            lines.append(f"\n{r.name}:")
            lines += [f"  {n}" for n in r.notes]
        if r.found and r.problem_count:
            kinds = [_plural(n, k) for n, k in ((r.missing_images, "missing image"),
                                                (r.unreadable_images, "unreadable image")) if n]
            lines.append(f"\n{r.name}: {_plural(r.problem_count, 'problem')}"
                         + (f" ({', '.join(kinds)})" if kinds else ""))
            lines += [f"  - {p}" for p in r.problems[:max_problems]]
            if r.problem_count > max_problems:
                lines.append(f"  ... and {r.problem_count - max_problems} more")
    ready = sum(r.ok for r in reports)
    lines.append(f"\n{ready} of {len(reports)} datasets ready.")
    return "\n".join(lines)


def exit_code(reports: Iterable[DatasetReport]) -> int:
    """0 when every checked dataset is found and has no problem, else 1."""
    return int(any(r.problem_count or r.missing for r in reports))


def main_check(root: str | None, datasets: str | None, quick: bool) -> int:
    """``adaptlib data check --root DIR [--quick] [--datasets a,b,folder:PATH]``: print the report, return the exit
    status (0 all ready, 1 missing datasets or problems, 2 bad arguments). ``--root`` may itself be a folder of
    your own images; only ``folder:`` datasets need no root."""
    names = [n.strip() for n in datasets.split(",") if n.strip()] if datasets else None
    if root is None and names is None:
        print("error: pass --root DIR (a folder of benchmarks, or a folder of your own images) or "
              "--datasets folder:PATH", file=sys.stderr)
        return 2
    try:
        reports = check_root(None if root is None else Path(root), names, quick=quick, progress=True)
    except (FileNotFoundError, KeyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_report(reports))
    return exit_code(reports)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="check benchmark datasets under a data root")
    parser.add_argument("--root", default=None, help="folder of the benchmarks, or a folder of your own images")
    parser.add_argument("--datasets", default=None, help="comma-separated names or folder:PATH (default: all)")
    parser.add_argument("--quick", action="store_true", help="check that images exist, do not open them")
    args = parser.parse_args()
    sys.exit(main_check(args.root, args.datasets, args.quick))
