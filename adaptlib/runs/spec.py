"""What identifies one run: method, dataset, shots, seed, setting, backbone and every override.

The run's key names its result file; its config hash detects a file written for a different config.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ..methods.recipes import Recipe, get_recipe, hybrid_recipe
from .selection import FEW_SHOT_VAL, check_selection

SETTINGS = ("few_shot", "base_to_new", "cross_dataset")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "-", text).strip("-")


def _freeze(obj: Any) -> Any:
    """Dicts and lists as nested tuples, so a spec is hashable and compares by value."""
    if isinstance(obj, dict):
        return tuple(sorted((str(k), _freeze(v)) for k, v in obj.items()))
    if isinstance(obj, (list, tuple)):
        return tuple(_freeze(v) for v in obj)
    return obj


def _thaw(obj: Any) -> Any:
    if isinstance(obj, tuple) and all(isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) for x in obj):
        return {k: _thaw(v) for k, v in obj}
    if isinstance(obj, tuple):
        return [_thaw(v) for v in obj]
    return obj


@dataclass(frozen=True)
class RunSpec:
    method: str
    dataset: str
    shots: int
    seed: int
    setting: str = "few_shot"
    backbone: str = "adaptlib-tiny"
    pretrained: str | None = "embedded"
    quick_gelu: bool | None = None
    hybrid_parts: tuple = ()  # ((part, {options}), ...) for method "hybrid"
    part_options: tuple = ()  # frozen {part: {option: value}} overrides
    train: tuple = ()  # frozen TrainConfig overrides
    eval_datasets: tuple[str, ...] = ()  # cross-dataset targets
    crop_scale: tuple[float, float] | None = None  # training crop scale; None: the method's (protocol: 0.08-1)
    feature_cache: bool = True  # train frozen-image methods from cached features
    label: str = ""  # a short name for a hybrid or variant in tables (part of the key)
    ensemble_alphas: tuple[float, ...] = ()  # also evaluate an adaptive ensemble with each fixed alpha
    save_state: bool = False  # keep the trained parameters (drift analysis)
    selection: str = FEW_SHOT_VAL  # where non-gradient choices come from (runs.selection)

    def __post_init__(self) -> None:
        if self.setting not in SETTINGS:
            from ..utils.names import unknown_name_error

            raise unknown_name_error("setting", self.setting, SETTINGS)
        check_selection(self.selection)
        for name in ("hybrid_parts", "part_options", "train"):
            object.__setattr__(self, name, _freeze(getattr(self, name)))
        object.__setattr__(self, "eval_datasets", tuple(self.eval_datasets))
        if not all(_is_number(a) and 0 <= a <= 1 for a in self.ensemble_alphas):
            raise ValueError(f"ensemble_alphas must be numbers in [0, 1], got {list(self.ensemble_alphas)}")
        object.__setattr__(self, "ensemble_alphas", tuple(float(a) for a in self.ensemble_alphas))
        if self.crop_scale is not None:
            object.__setattr__(self, "crop_scale", parse_crop_scale(self.crop_scale))
        self._check_shape()

    def _check_shape(self) -> None:
        """What a run's arguments must satisfy together, checked without loading anything."""
        if not (isinstance(self.shots, int) and not isinstance(self.shots, bool)) or self.shots < 1:
            raise ValueError(f"shots must be a whole number >= 1 (K images per class), got {self.shots!r}; "
                             f"zero-shot CLIP is --method zeroshot (any --shots)")
        if not (isinstance(self.seed, int) and not isinstance(self.seed, bool)) or self.seed < 0:
            raise ValueError(f"seed must be a whole number >= 0, got {self.seed!r}")
        if self.method != "hybrid" and self.hybrid_parts:
            names = [n for n, _ in self.hybrid()]
            raise ValueError(f"parts {names} were given for method {self.method!r}, which has its own parts: parts "
                             f"are for method 'hybrid' (--method hybrid --parts ...); to change an option of "
                             f"method {self.method!r} use --set PART.OPTION=VALUE")
        if self.setting == "cross_dataset" and not self.eval_datasets:
            raise ValueError(f"setting 'cross_dataset' needs the datasets to evaluate on after training on "
                             f"{self.dataset!r}: pass --eval-datasets NAME[,NAME...] (profiles: eval_datasets)")
        if self.setting != "cross_dataset" and self.eval_datasets:
            raise ValueError(f"eval_datasets {list(self.eval_datasets)} apply only to setting 'cross_dataset'; "
                             f"setting {self.setting!r} evaluates on {self.dataset!r} only: drop --eval-datasets "
                             f"or use --setting cross_dataset")

    @property
    def method_label(self) -> str:
        return self.label or self.method

    def part_overrides(self) -> dict:
        return _thaw(self.part_options) or {}

    def train_overrides(self) -> dict:
        """The training overrides, checked against ``TrainConfig``'s types (a numeric string read as a number)."""
        return check_train_overrides(_thaw(self.train) or {})

    def hybrid(self) -> list[tuple[str, dict]]:
        return [(name, _thaw(opts) or {}) for name, opts in self.hybrid_parts]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hybrid_parts"] = [[n, o] for n, o in self.hybrid()]
        d["part_options"] = self.part_overrides()
        d["train"] = _thaw(self.train) or {}
        d["eval_datasets"] = list(self.eval_datasets)
        d["crop_scale"] = list(self.crop_scale) if self.crop_scale is not None else None
        d["ensemble_alphas"] = list(self.ensemble_alphas)
        if self.selection == FEW_SHOT_VAL:  # the default leaves the config (and so the key) of every run as it was
            del d["selection"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunSpec":
        d = dict(d)
        d["hybrid_parts"] = tuple((n, o) for n, o in d.get("hybrid_parts", []))
        return cls(**d)

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def key(self) -> str:
        """Relative path of the run's result file: readable parts plus the config hash."""
        backbone = _slug(f"{self.backbone}-{self.pretrained or 'random'}")
        selection = "" if self.selection == FEW_SHOT_VAL else f"-{self.selection}"
        return "/".join([backbone, self.setting, _slug(self.dataset), _slug(self.method_label),
                         f"shots{self.shots}-seed{self.seed}{selection}-{self.config_hash()[:8]}"])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_crop_scale(value: Any, what: str = "crop_scale") -> tuple[float, float]:
    """``"0.08,1"``, ``[0.08, 1]`` -> (0.08, 1.0): two numbers with 0 < min <= max <= 1, else a clear error."""
    items = value.split(",") if isinstance(value, str) else value
    try:
        low, high = (float(x) for x in items)
        ok = 0 < low <= high <= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{what} expects two numbers MIN,MAX with 0 < MIN <= MAX <= 1 (the random resized crop's "
                         f"scale; e.g. 0.08,1, or 1,1 for no crop), got {value!r}")
    return (low, high)


def check_train_overrides(values: dict) -> dict:
    """Training overrides checked against ``TrainConfig``'s field types: unknown keys get the nearest valid one, a
    value of the wrong type names the key and the type expected; ``epochs`` may be one number or a table."""
    from ..methods.train_config import TrainConfig
    from ..utils.names import unknown_keys_error
    from ..utils.typed import coerce_fields, field_types

    known = set(field_types(TrainConfig))
    if set(values) - known:
        raise unknown_keys_error("the training config", set(values) - known, known)
    special = {"epochs": int | dict[int, int]}
    values = coerce_fields(TrainConfig, values, "training config", special)
    for key in ("batch_size", "views", "max_steps", "iterations_per_shot"):
        if values.get(key) is not None and values[key] < 1:
            raise ValueError(f"training config: option {key!r} = {values[key]!r} is out of range: expected >= 1")
    for key in ("lr", "budget"):
        if key in values and not values[key] > 0:
            raise ValueError(f"training config: option {key!r} = {values[key]!r} is out of range: expected > 0")
    for key in ("weight_decay", "warmup_epochs", "warmup_lr", "momentum", "eps"):
        if key in values and values[key] < 0:
            raise ValueError(f"training config: option {key!r} = {values[key]!r} is out of range: expected >= 0")
    return values


def recipe_for(spec: RunSpec) -> Recipe:
    """The method a spec names: a registered recipe, or a hybrid of the spec's parts."""
    if spec.method == "hybrid":
        if not spec.hybrid_parts:
            raise ValueError("method 'hybrid' needs parts (e.g. --parts coop_prompt,clip_adapter,layernorm)")
        return hybrid_recipe(spec.hybrid(), spec.method_label if spec.label else None)
    return get_recipe(spec.method)


def check_spec(spec: RunSpec) -> None:
    """Everything about ``spec`` that can be checked before any weights or data load: the method and its parts,
    every part option (name, type, range), the training options, the dataset names. Raises ``ValueError`` or
    ``KeyError`` with a message naming the bad value and what to do."""
    from ..data.embedded import parse_task_name
    from ..data.registry import check_folder_dataset, dataset_names, is_embedded, is_folder_dataset
    from ..methods.registry import build_part
    from ..utils.names import unknown_name_error
    recipe = recipe_for(spec)
    recipe.train_config(spec.setting, spec.dataset).with_overrides(spec.train_overrides())
    overrides = spec.part_overrides()
    parts = dict(recipe.part_options(spec.setting, spec.dataset))
    for name, options in overrides.items():
        if name not in parts:
            raise ValueError(f"part options were given for part {name!r}, which method {spec.method_label!r} does "
                             f"not have (its parts: {sorted(parts) or 'none'})")
        if not isinstance(options, dict):
            raise ValueError(f"part options of {name!r} must be a mapping OPTION: VALUE (--set {name}.OPTION=VALUE), "
                             f"got {options!r}")
    for name, options in parts.items():
        build_part(name, {**options, **overrides.get(name, {})})
    valid = None
    for ds in (spec.dataset, *spec.eval_datasets):
        if is_embedded(ds):
            parse_task_name(ds)
        elif is_folder_dataset(ds):
            check_folder_dataset(ds)  # the folder or split file exists (your own images)
        else:
            valid = valid or dataset_names()
            if ds not in valid:
                raise unknown_name_error("dataset", ds, valid)
