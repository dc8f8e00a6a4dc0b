"""Sweep profiles: a YAML file that describes a grid of runs, expanded into ``RunSpec``s and checked up front.

A profile holds (every key but ``methods`` optional)::

    name: embedded
    description: ...
    backbone: adaptlib-tiny          # or  backbones: [{name: ViT-B-16, pretrained: openai, quick_gelu: true}, ...]
    pretrained: embedded
    quick_gelu: null
    results: results/embedded        # the default results folder of `adaptlib sweep`
    run_defaults: {crop_scale: [1, 1], train: {max_steps: 60}, feature_cache: true}
    datasets: [shape, colour]        # the default grid of every setting and group
    shots: [1, 4, 16]
    seeds: [1, 2, 3]
    selections: [few_shot_val]       # model selection (runs.selection): few_shot_val | fixed | oracle_test
    methods:                         # label -> entry; the label names the method in tables
      coop: {train: {lr: 0.002}}
      clipfit@lambda=0: {method: clipfit, part_options: {text_regulariser: {weight: 0.0}}}
      prompt+adapter: {method: hybrid, parts: [[coop_prompt, {}], [clip_adapter, {}]]}
    settings:                        # few_shot | base_to_new | cross_dataset, each over the default grid
      few_shot: {methods: [coop, ...]}
      base_to_new: {shots: [16]}     # a setting's methods default to those of few_shot (else all)
      cross_dataset: {datasets: [imagenet], eval_datasets: [imagenet_v2, ...]}
    groups:                          # extra grids: a setting, methods (labels or inline entries), grid overrides
      dials: {setting: few_shot, methods: [coop], datasets: ["shape@inter=0.3"], shots: [16], seeds: [1]}
    cluster: {partition: gpu, gpus_per_node: 1, timeout_min: 240, array_parallelism: 32, runs_per_job: 4}

A method entry may set ``method``, ``parts`` (hybrids), ``train``, ``train_by_shots``, ``part_options``,
``ensemble_alphas``, ``save_state``, ``crop_scale`` and ``feature_cache``. ``train_by_shots`` maps shot counts to
training overrides applied over ``train`` (the nearest lower key applies), e.g. the learning rates calibrated per
shot count: ``train_by_shots: {1: {lr: 0.02}, 4: {lr: 0.006}, 16: {lr: 0.002}}``. Everything is validated before any run starts: unknown
names get the nearest valid one, every part and training option is checked against its type and range, and shot
counts are checked against the smallest class of each dataset. ``selections`` (top level or per setting and
group) runs every method under each model selection: under ``fixed`` the ``train_by_shots`` values are not applied
(they are chosen on the few-shot validation set), under ``oracle_test`` the parts choose on test. Numbers may be written as the papers write them
(``lr: 2e-4``; plain YAML would read that as a string).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import open_clip
import yaml

# importing backbones.load also registers the project's models with open_clip
from ..backbones.load import BackboneUnavailableError, _resolve_embedded, check_checkpoint
from ..data.embedded import parse_task_name
from ..data.registry import check_folder_dataset, dataset_names, get_dataset, is_embedded, is_folder_dataset
from ..methods import RECIPES
from ..utils.names import unknown_name_error, unknown_name_message
from ..utils.paths import REPO_ROOT
from ..utils.typed import load_yaml
from .selection import FEW_SHOT_VAL, FIXED, SELECTIONS
from .spec import SETTINGS, RunSpec, check_spec

TOP_KEYS = ("name", "description", "backbone", "backbones", "pretrained", "quick_gelu", "results", "run_defaults",
            "datasets", "shots", "seeds", "selections", "methods", "settings", "groups", "cluster", "extends")
ENTRY_KEYS = ("method", "parts", "train", "train_by_shots", "part_options", "ensemble_alphas", "save_state",
              "crop_scale", "feature_cache")
DEFAULT_KEYS = ("crop_scale", "train", "feature_cache")
GRID_KEYS = ("methods", "datasets", "shots", "seeds", "eval_datasets", "selections")
GROUP_KEYS = ("setting",) + GRID_KEYS
CLUSTER_KEYS = ("partition", "gpus_per_node", "cpus_per_task", "mem_gb", "timeout_min", "array_parallelism",
                "runs_per_job", "account", "qos", "constraint")


class ProfileError(ValueError):
    """A profile that cannot be run; the message names the file, the place in it and what to do."""


@dataclass(frozen=True)
class BackboneChoice:
    name: str
    pretrained: str | None
    quick_gelu: bool | None = None


@dataclass(frozen=True)
class MethodEntry:
    """One method of a profile: its label in tables and the RunSpec fields it sets."""

    label: str
    method: str
    fields: dict = field(default_factory=dict, hash=False)


@dataclass
class Grid:
    """One setting or group: which methods run on which datasets, shots and seeds."""

    name: str
    setting: str
    methods: list[MethodEntry]
    datasets: list[str]
    shots: list[int]
    seeds: list[int]
    eval_datasets: list[str] = field(default_factory=list)
    selections: list[str] = field(default_factory=lambda: [FEW_SHOT_VAL])


@dataclass
class Profile:
    name: str
    path: Path | None
    description: str
    backbones: list[BackboneChoice]
    datasets: list[str]
    shots: list[int]
    seeds: list[int]
    methods: dict[str, MethodEntry]
    grids: list[Grid]
    run_defaults: dict
    results: str | None
    cluster: dict

    def method_spec(self, label: str, dataset: str, shots: int, seed: int, setting: str = "few_shot",
                    backbone: BackboneChoice | None = None, eval_datasets: tuple[str, ...] = (),
                    entry: MethodEntry | None = None, selection: str = FEW_SHOT_VAL) -> RunSpec:
        """The RunSpec of method ``label`` of this profile on one dataset, shot count and seed; under the ``fixed``
        selection without the entry's ``train_by_shots`` (values chosen on validation)."""
        if entry is None:
            if label not in self.methods:
                raise unknown_name_error(f"method label of profile {self.name!r}", label, self.methods)
            entry = self.methods[label]
        bb = backbone or self.backbones[0]
        values: dict[str, Any] = {k: v for k, v in self.run_defaults.items() if k != "train"}
        values.update({k: v for k, v in entry.fields.items() if k not in ("train", "train_by_shots")})
        calibrated = {} if selection == FIXED else for_shots(entry.fields.get("train_by_shots", {}), int(shots))
        train = {**self.run_defaults.get("train", {}), **entry.fields.get("train", {}), **calibrated}
        if "crop_scale" in values and values["crop_scale"] is not None:
            values["crop_scale"] = tuple(float(x) for x in values["crop_scale"])
        if "hybrid_parts" in values:
            values["hybrid_parts"] = tuple((n, o) for n, o in values["hybrid_parts"])
        return RunSpec(method=entry.method, dataset=dataset, shots=int(shots), seed=int(seed), setting=setting,
                       backbone=bb.name, pretrained=bb.pretrained, quick_gelu=bb.quick_gelu, train=train,
                       eval_datasets=tuple(eval_datasets), label="" if entry.label == entry.method else entry.label,
                       selection=selection, **values)

    def expand(self) -> list[RunSpec]:
        """Every run of the profile, each once (a run named by two grids is one run), in profile order."""
        seen: dict[str, RunSpec] = {}
        for grid in self.grids:
            for bb in self.backbones:
                for entry in grid.methods:
                    for dataset in grid.datasets:
                        for shots in grid.shots:
                            for seed in grid.seeds:
                                for selection in grid.selections:
                                    spec = self.method_spec(entry.label, dataset, shots, seed, grid.setting, bb,
                                                            tuple(grid.eval_datasets), entry, selection)
                                    seen.setdefault(spec.key(), spec)
        return list(seen.values())


# ------------------------------------------------------------------------------------------------ loading
def resolve_profile_path(profile: str | os.PathLike) -> Path:
    """A profile file (``profiles/embedded.yaml``, any existing path) as it is; a bare name (``embedded``,
    ``smoke``, ``paper``) -> that profile's file in the repository's ``profiles/``."""
    path = Path(profile)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return REPO_ROOT / "profiles" / f"{profile}.yaml"


def load_profile(path: str | os.PathLike, data_root: str | None = None, check_data: bool = False) -> Profile:
    """Read and validate a profile file. ``check_data`` also checks shot counts against the data (benchmarks
    need ``data_root`` for that) and that the backbone weights can be found, as a sweep does before it starts."""
    path = Path(path)
    if not path.is_file():
        raise ProfileError(f"profile file {path} does not exist; profiles live in profiles/ "
                           f"({', '.join(sorted(p.stem for p in path.parent.glob('*.yaml'))) or 'none here'})")
    profile = parse_profile(read_profile_file(path), path)
    if check_data:
        check_profile_data(profile, data_root)
    return profile


def read_profile_file(path: Path, seen: tuple[Path, ...] = ()) -> Any:
    """A profile file's mapping, with ``extends: OTHER.yaml`` (relative to the file) resolved: the other profile's
    keys, each top-level key the file sets replacing the other's (``methods``, ``groups`` and the like as a
    whole), so a variant (another backbone) states only what differs."""
    try:
        raw = load_yaml(path.read_text())
    except yaml.YAMLError as err:
        raise ProfileError(f"profile {path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict) or "extends" not in raw:
        return raw
    base_path = (path.parent / str(raw["extends"])).resolve()
    if base_path in seen or base_path == path.resolve():
        raise ProfileError(f"profile {path}: 'extends' makes a cycle through {base_path}")
    if not base_path.is_file():
        raise ProfileError(f"profile {path}: extends {raw['extends']!r}, but {base_path} does not exist")
    base = read_profile_file(base_path, seen + (path.resolve(),))
    if not isinstance(base, dict):
        raise ProfileError(f"profile {base_path} (extended by {path}) must be a mapping")
    return {**base, **{k: v for k, v in raw.items() if k != "extends"}}


def parse_profile(raw: Any, path: Path | None = None) -> Profile:
    where = f"profile {path}" if path else "profile"
    if not isinstance(raw, dict):
        raise ProfileError(f"{where} must be a mapping of keys ({', '.join(TOP_KEYS)}), got {type(raw).__name__}")
    _check_keys(raw, TOP_KEYS, where)
    backbones = _backbones(raw, where)
    datasets = _names(raw.get("datasets", []), f"{where}: datasets")
    shots = _ints(raw.get("shots", [16]), f"{where}: shots", minimum=1)
    seeds = _ints(raw.get("seeds", [1]), f"{where}: seeds", minimum=0)
    selections = _selections(raw.get("selections", [FEW_SHOT_VAL]), f"{where}: selections")
    defaults = raw.get("run_defaults") or {}
    _check_mapping(defaults, f"{where}: run_defaults")
    _check_keys(defaults, DEFAULT_KEYS, f"{where}: run_defaults")
    if "train" in defaults:
        _check_mapping(defaults["train"], f"{where}: run_defaults.train")
    methods_raw = raw.get("methods")
    if not isinstance(methods_raw, dict) or not methods_raw:
        raise ProfileError(f"{where} needs 'methods': a mapping of method labels to entries, e.g. "
                           f"'methods: {{coop: {{}}, zeroshot: {{}}}}'")
    methods = {str(label): _entry(str(label), e, f"{where}: methods.{label}") for label, e in methods_raw.items()}
    grids = []
    settings = raw.get("settings") or {}
    _check_mapping(settings, f"{where}: settings")
    few_shot = settings.get("few_shot") or {}
    default_methods = few_shot.get("methods", list(methods)) if isinstance(few_shot, dict) else list(methods)
    for setting, body in settings.items():
        if setting not in SETTINGS:
            raise _unknown(f"{where}: settings: unknown setting", setting, SETTINGS)
        body = body or {}
        _check_mapping(body, f"{where}: settings.{setting}")
        _check_keys(body, GRID_KEYS, f"{where}: settings.{setting}")
        grids.append(_grid(setting, setting, body.get("methods", default_methods), body, methods, datasets, shots,
                           seeds, f"{where}: settings.{setting}", selections))
    groups = raw.get("groups") or {}
    _check_mapping(groups, f"{where}: groups")
    for name, body in groups.items():
        _check_mapping(body, f"{where}: groups.{name}")
        _check_keys(body, GROUP_KEYS, f"{where}: groups.{name}")
        setting = body.get("setting", "few_shot")
        if setting not in SETTINGS:
            raise _unknown(f"{where}: groups.{name}: unknown setting", setting, SETTINGS)
        if "methods" not in body:
            raise ProfileError(f"{where}: groups.{name} needs 'methods' (labels of 'methods' or inline entries)")
        grids.append(_grid(str(name), setting, body["methods"], body, methods, datasets, shots, seeds,
                           f"{where}: groups.{name}", selections))
    if not grids:
        raise ProfileError(f"{where} runs nothing: add 'settings' (few_shot, base_to_new, cross_dataset) or 'groups'")
    cluster = raw.get("cluster") or {}
    _check_mapping(cluster, f"{where}: cluster")
    _check_keys(cluster, CLUSTER_KEYS, f"{where}: cluster")
    profile = Profile(name=str(raw.get("name") or (path.stem if path else "profile")), path=path,
                      description=str(raw.get("description", "")), backbones=backbones, datasets=datasets,
                      shots=shots, seeds=seeds, methods=methods, grids=grids, run_defaults=defaults,
                      results=raw.get("results"), cluster=cluster)
    _check_names(profile, where)
    return profile


def _unknown(prefix: str, name: str, valid) -> ProfileError:
    return ProfileError(unknown_name_message(prefix, name, valid))


def _check_mapping(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise ProfileError(f"{where} must be a mapping, got {type(value).__name__} ({value!r})")


def _check_keys(mapping: dict, allowed: tuple[str, ...], where: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise _unknown(f"{where}: unknown key", key, allowed)


def _names(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProfileError(f"{where} must be a list of names, got {value!r}")
    return list(value)


def _ints(value: Any, where: str, minimum: int) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum
                                              for v in value):
        raise ProfileError(f"{where} must be a list of integers >= {minimum}, got {value!r}")
    return list(value)


def _backbones(raw: dict, where: str) -> list[BackboneChoice]:
    if "backbones" in raw:
        if "backbone" in raw:
            raise ProfileError(f"{where} sets both 'backbone' and 'backbones': keep one")
        items = raw["backbones"]
        if not isinstance(items, list) or not items:
            raise ProfileError(f"{where}: backbones must be a non-empty list of {{name, pretrained, quick_gelu}}")
        out = []
        for i, item in enumerate(items):
            if isinstance(item, str):
                item = {"name": item}
            _check_mapping(item, f"{where}: backbones[{i}]")
            _check_keys(item, ("name", "pretrained", "quick_gelu"), f"{where}: backbones[{i}]")
            if "name" not in item:
                raise ProfileError(f"{where}: backbones[{i}] needs a 'name' (an open_clip model name)")
            out.append(BackboneChoice(str(item["name"]), _pretrained(item.get("pretrained")),
                                      item.get("quick_gelu")))
        return out
    return [BackboneChoice(str(raw.get("backbone", "adaptlib-tiny")), _pretrained(raw.get("pretrained", "embedded")),
                           raw.get("quick_gelu"))]


def for_shots(by_shots: dict[int, dict], shots: int) -> dict:
    """The overrides of the nearest lower shot count in ``by_shots`` (the smallest key below all keys)."""
    if not by_shots:
        return {}
    keys = sorted(by_shots)
    eligible = [k for k in keys if k <= max(shots, keys[0])]
    return dict(by_shots[eligible[-1]])


def _pretrained(value: Any) -> str | None:
    return None if value in (None, "", "random", "none") else str(value)


def _entry(label: str, body: Any, where: str) -> MethodEntry:
    body = body or {}
    _check_mapping(body, where)
    _check_keys(body, ENTRY_KEYS, where)
    method = str(body.get("method", label))
    fields: dict[str, Any] = {}
    for key in ("train", "part_options"):
        if key in body:
            _check_mapping(body[key], f"{where}.{key}")
            fields[key] = dict(body[key])
    if "train_by_shots" in body:
        _check_mapping(body["train_by_shots"], f"{where}.train_by_shots")
        by_shots = {}
        for k, v in body["train_by_shots"].items():
            if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                raise ProfileError(f"{where}.train_by_shots: keys are shot counts (positive integers), got {k!r}")
            _check_mapping(v, f"{where}.train_by_shots.{k}")
            by_shots[k] = dict(v)
        fields["train_by_shots"] = by_shots
    if "parts" in body:
        parts = []
        for i, item in enumerate(body["parts"] or []):
            if isinstance(item, str):
                item = [item, {}]
            if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)
                    and isinstance(item[1] or {}, dict)):
                raise ProfileError(f"{where}.parts[{i}] must be [part name, {{options}}] or a part name, got {item!r}")
            parts.append((item[0], dict(item[1] or {})))
        fields["hybrid_parts"] = parts
    if method == "hybrid" and not fields.get("hybrid_parts"):
        raise ProfileError(f"{where}: method 'hybrid' needs 'parts', e.g. parts: [[coop_prompt, {{}}], [layernorm, {{}}]]")
    if "ensemble_alphas" in body:
        alphas = body["ensemble_alphas"]
        if not isinstance(alphas, list) or not all(isinstance(a, (int, float)) and 0 <= a <= 1 for a in alphas):
            raise ProfileError(f"{where}.ensemble_alphas must be a list of numbers in [0, 1], got {alphas!r}")
        fields["ensemble_alphas"] = tuple(float(a) for a in alphas)
    for key in ("save_state", "feature_cache"):
        if key in body:
            if not isinstance(body[key], bool):
                raise ProfileError(f"{where}.{key} must be true or false, got {body[key]!r}")
            fields[key] = body[key]
    if "crop_scale" in body:
        fields["crop_scale"] = body["crop_scale"]
    return MethodEntry(label, method, fields)


def _grid(name: str, setting: str, methods: Any, body: dict, known: dict[str, MethodEntry], datasets: list[str],
          shots: list[int], seeds: list[int], here: str, selections: list[str] | None = None) -> Grid:
    if isinstance(methods, dict):
        entries = [_entry(str(label), e, f"{here}.methods.{label}") for label, e in methods.items()]
    elif isinstance(methods, list):
        entries = []
        for label in methods:
            if label not in known:
                raise _unknown(f"{here}.methods: unknown method label", label, known)
            entries.append(known[label])
    else:
        raise ProfileError(f"{here}.methods must be a list of method labels or a mapping of inline entries")
    grid_datasets = _names(body.get("datasets", datasets), f"{here}.datasets")
    if not grid_datasets:
        raise ProfileError(f"{here} has no datasets: set 'datasets' at the top of the profile or in it")
    eval_datasets = _names(body.get("eval_datasets", []), f"{here}.eval_datasets")
    if eval_datasets and setting != "cross_dataset":
        raise ProfileError(f"{here}: eval_datasets only applies to the cross_dataset setting (got {setting!r})")
    if setting == "cross_dataset" and not eval_datasets:
        raise ProfileError(f"{here}: the cross_dataset setting needs eval_datasets, the datasets to evaluate on after "
                           f"training on its datasets (e.g. eval_datasets: [imagenet_v2, imagenet_sketch])")
    return Grid(name, setting, entries, grid_datasets, _ints(body.get("shots", shots), f"{here}.shots", 1),
                _ints(body.get("seeds", seeds), f"{here}.seeds", 0), eval_datasets,
                _selections(body.get("selections", selections or [FEW_SHOT_VAL]), f"{here}.selections"))


def _selections(value: Any, where: str) -> list[str]:
    """A non-empty list of model selections, each named in runs.selection.SELECTIONS."""
    if not isinstance(value, list) or not value:
        raise ProfileError(f"{where} must be a non-empty list of model selections ({', '.join(SELECTIONS)}), "
                           f"got {value!r}")
    for name in value:
        if name not in SELECTIONS:
            raise _unknown(f"{where}: unknown model selection", str(name), SELECTIONS)
    return [str(v) for v in dict.fromkeys(value)]


# ------------------------------------------------------------------------------------------------ validation
def _check_names(profile: Profile, where: str) -> None:
    """Method, part, option, dataset and backbone names, checked without loading any weights or data."""
    models = open_clip.list_models()
    for bb in profile.backbones:
        if bb.name not in models:
            raise _unknown(f"{where}: unknown backbone", bb.name, models)
    valid_datasets = dataset_names()
    for grid in profile.grids:
        for ds in grid.datasets + grid.eval_datasets:
            if is_embedded(ds):
                try:
                    parse_task_name(ds)
                except ValueError as err:
                    raise ProfileError(f"{where}: {grid.name}: dataset {ds!r}: {err}") from None
            elif is_folder_dataset(ds):
                try:
                    check_folder_dataset(ds)
                except ValueError as err:
                    raise ProfileError(f"{where}: {grid.name}: {err}") from None
            elif ds not in valid_datasets:
                raise _unknown(f"{where}: {grid.name}: unknown dataset", ds, valid_datasets)
    checked: set[int] = set()
    first = profile.grids[0]
    entries = [(first, e) for e in profile.methods.values()] + [(g, e) for g in profile.grids for e in g.methods]
    for grid, entry in entries:
        if id(entry) in checked:
            continue
        checked.add(id(entry))
        here = f"{where}: {grid.name}: method {entry.label!r}" if entry.label not in profile.methods or \
            profile.methods[entry.label] is not entry else f"{where}: methods.{entry.label}"
        if entry.method != "hybrid" and entry.method not in RECIPES:
            raise _unknown(f"{here}: unknown method", entry.method, list(RECIPES) + ["hybrid"])
        try:  # every shot count: train_by_shots may set other options at each
            for shots in sorted(set(grid.shots) | set(entry.fields.get("train_by_shots", {}))):
                spec = profile.method_spec(entry.label, grid.datasets[0], shots, grid.seeds[0], grid.setting,
                                           eval_datasets=tuple(grid.eval_datasets), entry=entry)
                check_spec(spec)  # the method, its parts, every part and training option (names, types, ranges)
        except (KeyError, ValueError, TypeError) as err:
            message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
            raise ProfileError(f"{here}: {message}") from None


def min_class_count(dataset: str, data_root: str | None) -> tuple[int, int, str]:
    """(train, val, class) of the smallest class of ``dataset``: the most shots and validation shots it allows."""
    if is_embedded(dataset):
        spec = parse_task_name(dataset)
        if spec.kind != "digits":
            return spec.per_class[0], spec.per_class[1], spec.classes[0]
    ds = get_dataset(dataset, data_root)
    if ds.target_only:
        return 0, 0, ""
    counts = {}
    for split in ("train", "val"):
        per_class = [0] * ds.num_classes
        for s in ds.split(split):
            per_class[s.label] += 1
        counts[split] = per_class
    smallest = min(range(ds.num_classes), key=lambda c: counts["train"][c])
    return counts["train"][smallest], min(counts["val"]), ds.classnames[smallest]


def check_profile_data(profile: Profile, data_root: str | None) -> None:
    """Shot counts against each dataset's smallest class, and the backbone weights, before any run starts."""
    for bb in profile.backbones:
        if bb.pretrained and bb.pretrained.startswith("embedded"):
            try:
                check_checkpoint(_resolve_embedded(bb.name, bb.pretrained), bb.pretrained)
            except BackboneUnavailableError as err:
                raise ProfileError(f"profile {profile.path}: {err}") from None
        elif bb.pretrained and ("/" in bb.pretrained or bb.pretrained.endswith((".pt", ".bin", ".safetensors"))):
            if not Path(bb.pretrained).expanduser().is_file():
                raise ProfileError(f"profile {profile.path}: checkpoint file {bb.pretrained} of backbone "
                                   f"{bb.name!r} does not exist; fix 'pretrained' in the profile")
            try:
                check_checkpoint(Path(bb.pretrained).expanduser(), bb.pretrained)
            except BackboneUnavailableError as err:
                raise ProfileError(f"profile {profile.path}: {err}") from None
    limits: dict[str, tuple[int, int, str]] = {}
    for grid in profile.grids:
        for ds in grid.datasets + grid.eval_datasets:
            if ds in limits:
                continue
            if not (is_embedded(ds) or is_folder_dataset(ds) or data_root or os.environ.get("ADAPTLIB_DATA_ROOT")):
                raise ProfileError(f"profile {profile.path}: dataset {ds!r} is a real benchmark: pass --data-root "
                                   f"DIR (or DATA_ROOT=... to make); data/DATASETS.md says how to get it")
            try:
                limits[ds] = min_class_count(ds, data_root)
            except (OSError, ValueError, KeyError) as err:
                message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
                raise ProfileError(f"profile {profile.path}: dataset {ds!r}: {message}") from None
        for ds in grid.datasets:
            train, val, cls = limits[ds]
            too_many = [k for k in grid.shots if k > train or min(k, 4) > val]
            if too_many:
                raise ProfileError(
                    f"profile {profile.path}: {grid.name}: shots {too_many} on dataset {ds!r}: its smallest class "
                    f"{cls!r} has {train} training and {val} validation images; use at most {train} shots")


def check_writable(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and prove a file can be written in it; else a clear error."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-", delete=True):
            pass
    except OSError as err:
        raise ProfileError(f"results directory {folder} is not writable ({err.strerror or err}): choose another "
                           f"with --results DIR or fix its permissions") from None
    return folder
