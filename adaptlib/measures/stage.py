"""The measures stage: from a profile's results, its data and its models, every table the study notebooks need
beyond the results table, written into ``<results>/measures/`` in one piece.

``adaptlib measures --profile smoke --results results/smoke`` (``make measures``). The stage reads the results
table (``results.csv``, written by ``adaptlib results``) only to know which tasks and runs there are; it loads the
profile's (first) backbone, the tasks and the runs' saved states. The tables are computed into a temporary folder
that replaces ``measures/`` only when all of them are done and one of them differs from what is there, so a
failure leaves the previous measures as they were and an unchanged result leaves the folder's files untouched
(make then reruns no notebook).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..utils.atomic import atomic_write_text
from .layout import FORMAT, MANIFEST, TABLES, manifest_text, measures_dir, results_digest, table_text

TRAIN_SEED = 1  # the few-shot sample the hybrid rule measures (seed 1 of the largest shot count)
CKA_IMAGES = 256  # test images of the probe task


def read_runs(results_dir: str | Path) -> pd.DataFrame:
    """The results table with each run's state file resolved against the results folder."""
    results_dir = Path(results_dir)
    csv = results_dir / "results.csv"
    if not csv.is_file():
        raise FileNotFoundError(f"no {csv}: collect the results first (make results, or adaptlib results "
                                f"--results {results_dir})")
    df = pd.read_csv(csv)
    if df.empty:
        raise FileNotFoundError(f"{csv} holds no runs: run the sweep first (make sweep, or adaptlib sweep)")
    if "state_file" in df.columns:  # stored relative to the results folder, wherever that is now
        df["state_file"] = [str((results_dir / p).resolve()) if isinstance(p, str) else p for p in df["state_file"]]
    df["dialled"] = df["dataset"].astype(str).str.contains("@")
    return df


def plan(runs: pd.DataFrame) -> dict:
    """Which tasks and runs each table covers (the notebooks' own selections, read off the results table)."""
    from .drift import cka_runs

    undialled = runs[~runs["dialled"]]
    few = runs[runs["setting"] == "few_shot"]
    probe, cka = cka_runs(runs)
    return {
        "tasks": sorted(undialled["dataset"].unique()),
        "few_shot_tasks": sorted(few.loc[~few["dialled"], "dataset"].unique()),
        "max_shots": int(few["shots"].max()) if len(few) else None,
        "base_to_new_tasks": sorted(undialled.loc[undialled["setting"] == "base_to_new", "dataset"].unique()),
        "saved_runs": runs[runs["state_file"].notna()] if "state_file" in runs.columns else runs.iloc[0:0],
        "cka_probe": probe,
        "cka_runs": cka,
    }


def compute_measures(profile, results_dir: str | Path, data_root: str | None = None, device: str = "cpu",
                     progress: bool = True) -> tuple[dict[str, pd.DataFrame], dict]:
    """(tables, manifest) of a profile's results: see :data:`adaptlib.measures.layout.TABLES`."""
    from tqdm.auto import tqdm

    from ..backbones import load_backbone
    from ..data.registry import dataset_description, dataset_group, get_dataset
    from ..runs.profile import Profile, load_profile, resolve_profile_path
    from . import drift as D
    from . import structure as S

    prof = profile if isinstance(profile, Profile) else load_profile(resolve_profile_path(profile))
    runs = read_runs(results_dir)
    todo = plan(runs)
    choice = prof.backbones[0]
    backbone = load_backbone(choice.name, choice.pretrained, quick_gelu=choice.quick_gelu, device=device)
    k_max = todo["max_shots"]
    found: dict[str, dict] = {name: {} for name in TABLES}
    images: dict = {}
    frozen: dict = {}  # the frozen backbones' activations on the probe images

    probe = todo["cka_probe"]

    def cka(r):
        if "probe" not in images:  # read once, when the first CKA step runs
            images["probe"] = D.probe_images(backbone, probe, CKA_IMAGES, data_root)
        return D.cka_row(r, images["probe"], probe, frozen)

    # (progress label, table, row key, what computes the row)
    jobs: list[tuple[str, str, object, Callable[[], object]]] = []
    for t in todo["tasks"]:
        jobs.append((f"classes {t}", "tasks", t, lambda t=t: S.num_classes(t, data_root)))
    for t in todo["few_shot_tasks"]:
        jobs.append((f"structure {t} test", "class_structure_test", t,
                     lambda t=t: S.task_structure(backbone, t, "test", data_root=data_root, device=device)))
        jobs.append((f"structure {t} train", "class_structure_train", t,
                     lambda t=t: S.task_structure(backbone, t, "train", k_max, TRAIN_SEED, data_root, device)))
        jobs.append((f"examples {t}", "examples", t, lambda t=t: S.example_images(t, data_root)))
    for t in todo["base_to_new_tasks"]:
        jobs.append((f"class distance {t}", "class_distance", t,
                     lambda t=t: S.class_distance(backbone, get_dataset(t, data_root))))
    for i, (_, r) in enumerate(todo["saved_runs"].iterrows()):
        jobs.append((f"drift {r['method_label']} {r['dataset']}", "drift", i,
                     lambda r=r: D.row_drift(r)))
    for i, (_, r) in enumerate(todo["cka_runs"].iterrows()):
        jobs.append((f"cka {r['method_label']} {r['dataset']}", "cka", i, lambda r=r: cka(r)))

    bar = tqdm(jobs, desc="measures", unit="step", disable=not progress, dynamic_ncols=True)
    for label, table, key, compute in bar:
        bar.set_postfix_str(label, refresh=False)
        found[table][key] = compute()
    bar.close()

    tables = {
        "tasks": pd.DataFrame({"dataset": list(found["tasks"]), "classes": list(found["tasks"].values()),
                               "group": [dataset_group(t) for t in found["tasks"]],
                               "description": [dataset_description(t) for t in found["tasks"]]},
                              columns=["dataset", "classes", "group", "description"]).astype({"classes": "int64"}),
        "class_structure_test": _structure_table(found["class_structure_test"]),
        "class_structure_train": _structure_table(found["class_structure_train"]),
        "class_distance": pd.DataFrame({"dataset": list(found["class_distance"]),
                                        "class_distance": list(found["class_distance"].values())},
                                       columns=["dataset", "class_distance"]).astype({"class_distance": "float64"}),
        "drift": D.concat_drift(found["drift"].values()),
        "cka": pd.DataFrame(list(found["cka"].values()),
                            columns=None if found["cka"] else ["method", "dataset", "key", "images", "note"]),
        "examples": pd.DataFrame([row for rows in found["examples"].values() for row in rows],
                                 columns=["dataset", "label", "classname", "height", "width", "pixels"]),
    }
    manifest = {
        "format": FORMAT,
        "profile": prof.name,
        "backbone": {"name": choice.name, "pretrained": choice.pretrained, "quick_gelu": choice.quick_gelu},
        "results_sha256": results_digest(results_dir),
        "class_structure_train": {"shots": k_max, "seed": TRAIN_SEED},
        "cka": {"dataset": todo["cka_probe"], "images": len(images["probe"]) if "probe" in images else 0},
        "tables": {name: int(len(df)) for name, df in tables.items()},
    }
    return tables, manifest


def _structure_table(rows: dict[str, dict]) -> pd.DataFrame:
    """Tasks x measures as ``task_structures`` builds it (a float column per measure), the task as a column."""
    if not rows:
        return pd.DataFrame(columns=["dataset"])
    table = pd.DataFrame(rows).T
    return table.rename_axis("dataset").reset_index()


def write_measures(results_dir: str | Path, tables: dict[str, pd.DataFrame], manifest: dict) -> bool:
    """Write the tables and the manifest into ``<results>/measures/`` in one piece: into a temporary folder, then
    renamed into place. Nothing is written when every file is as it is already; True if the folder changed."""
    results_dir = Path(results_dir)
    target = measures_dir(results_dir)
    files = {f"{name}.csv": table_text(df) for name, df in tables.items()}
    files[MANIFEST] = manifest_text(manifest)
    if target.is_dir() and sorted(p.name for p in target.iterdir()) == sorted(files) and all(
            (target / name).read_text() == text for name, text in files.items()):
        return False
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=results_dir))
    old = None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700 folders; the measures are ordinary files
        for name, text in files.items():
            atomic_write_text(tmp / name, text)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=results_dir))
            os.replace(target, old / target.name)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and (old / target.name).exists() and not target.exists():
            os.replace(old / target.name, target)  # put the previous measures back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return True


def measure(profile, results_dir: str | Path, data_root: str | None = None, device: str = "cpu",
            progress: bool = True) -> dict:
    """Compute and write the measures of a results folder; returns the manifest and whether the folder changed."""
    tables, manifest = compute_measures(profile, results_dir, data_root, device, progress)
    changed = write_measures(results_dir, tables, manifest)
    return {"manifest": manifest, "changed": changed, "folder": measures_dir(results_dir)}
