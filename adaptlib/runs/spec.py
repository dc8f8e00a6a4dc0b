"""What identifies one run: method, dataset, shots, seed, setting, backbone and every override.

The run's key names its result file; its config hash detects a file written for a different config.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

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

    def __post_init__(self) -> None:
        if self.setting not in SETTINGS:
            from ..utils.names import unknown_name_error

            raise unknown_name_error("setting", self.setting, SETTINGS)
        for name in ("hybrid_parts", "part_options", "train"):
            object.__setattr__(self, name, _freeze(getattr(self, name)))
        object.__setattr__(self, "eval_datasets", tuple(self.eval_datasets))
        object.__setattr__(self, "ensemble_alphas", tuple(float(a) for a in self.ensemble_alphas))
        if self.crop_scale is not None:
            object.__setattr__(self, "crop_scale", tuple(float(x) for x in self.crop_scale))

    @property
    def method_label(self) -> str:
        return self.label or self.method

    def part_overrides(self) -> dict:
        return _thaw(self.part_options) or {}

    def train_overrides(self) -> dict:
        return _thaw(self.train) or {}

    def hybrid(self) -> list[tuple[str, dict]]:
        return [(name, _thaw(opts) or {}) for name, opts in self.hybrid_parts]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hybrid_parts"] = [[n, o] for n, o in self.hybrid()]
        d["part_options"] = self.part_overrides()
        d["train"] = self.train_overrides()
        d["eval_datasets"] = list(self.eval_datasets)
        d["crop_scale"] = list(self.crop_scale) if self.crop_scale is not None else None
        d["ensemble_alphas"] = list(self.ensemble_alphas)
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
        return "/".join([backbone, self.setting, _slug(self.dataset), _slug(self.method_label),
                         f"shots{self.shots}-seed{self.seed}-{self.config_hash()[:8]}"])
