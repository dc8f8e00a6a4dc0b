"""Training hyper-parameters of a recipe, with the per-shot epoch tables the papers use.

A plain declaration: which values a method trains with. Per-setting and per-dataset values (CLIPFit's 10
epochs in base-to-new, ImageNet's shorter schedules) are the recipe's overrides (``Recipe.setting_train``,
``Recipe.dataset_train``), not branches here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ..utils.names import unknown_keys_error, unknown_name_error

OPTIMIZERS = ("sgd", "adamw", "adadelta")


@dataclass(frozen=True)
class TrainConfig:
    """How a method trains. ``epochs`` maps shot counts to epochs (the nearest lower key applies);
    ``iterations_per_shot`` (CLIP-LoRA: 500) replaces epochs by a step count of that many times K."""

    optimizer: str = "sgd"
    lr: float = 0.002
    weight_decay: float = 5e-4
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    batch_size: int = 32
    epochs: dict[int, int] = field(default_factory=lambda: {1: 50, 2: 100, 4: 100, 8: 200, 16: 200})
    iterations_per_shot: int | None = None
    warmup_epochs: int = 1  # Dassl's constant warm-up: the first epoch(s) at warmup_lr
    warmup_lr: float = 1e-5
    # the per-step schedule's warm-up is at most this share of the run's steps (a step-capped run keeps >= 90% of
    # its steps at the schedule's own rates); Dassl's per-epoch schedule keeps its whole warm-up epoch
    max_warmup_fraction: float = 0.1
    scheduler: str = "cosine"  # cosine | constant
    # Dassl's cosine (CoOp and the Dassl-based methods): the rate changes once per epoch, CosineAnnealingLR with
    # T_max = the run's epochs counted from the end of the warm-up, so the last epoch does not reach eta_min.
    # False: per-step cosine over the steps after the warm-up (Tip-Adapter-F, CLIP-LoRA; step-capped profiles)
    schedule_per_epoch: bool = False
    eta_min: float = 0.0  # the cosine's floor (CLIP-LoRA: 1e-6)
    views: int = 10  # augmented views per training image in the feature cache (Tip-Adapter uses 10)
    budget: float = 1.0  # scales epochs / iterations (profiles with a compute budget set it below 1)
    max_steps: int | None = None  # caps the optimisation steps of a run (the schedule spans the capped run)
    grad_clip: float | None = None
    part_lr: dict[str, float] = field(default_factory=dict)  # per-part learning rates (hybrids)

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise unknown_name_error("optimizer", self.optimizer, OPTIMIZERS)
        if not 0.0 <= self.max_warmup_fraction <= 1.0:
            raise ValueError(f"max_warmup_fraction must be in [0, 1] (got {self.max_warmup_fraction})")
        if self.lr <= 0 or self.batch_size <= 0 or self.budget <= 0:
            raise ValueError(f"lr, batch_size and budget must be positive (got {self.lr}, {self.batch_size}, "
                             f"{self.budget})")

    def epochs_for(self, shots: int) -> int:
        """Epochs at ``shots`` shots, scaled by the budget (per-dataset epochs are the recipe's ``dataset_train``)."""
        keys = sorted(self.epochs)
        eligible = [k for k in keys if k <= max(shots, keys[0])]
        return max(1, round(self.epochs[eligible[-1]] * self.budget))

    def steps_per_epoch(self, n_train: int) -> int:
        """Dassl's loader drops the last incomplete batch when there is at least one full batch."""
        return max(1, n_train // self.batch_size) if n_train >= self.batch_size else 1

    def total_steps(self, shots: int, n_train: int) -> int:
        """Optimisation steps of a run: epochs x steps per epoch (or iterations x K), scaled, then capped."""
        if self.iterations_per_shot:
            steps = max(1, round(self.iterations_per_shot * max(shots, 1) * self.budget))
        else:
            steps = self.epochs_for(shots) * self.steps_per_epoch(n_train)
        if self.max_steps is not None:
            steps = min(steps, self.max_steps)
        return steps

    def with_overrides(self, values: dict[str, Any]) -> "TrainConfig":
        """A copy with ``values`` replaced; ``epochs`` may be one number (every shot count) or a per-shot table."""
        known = {f.name for f in fields(self)}
        bad = set(values) - known
        if bad:
            raise unknown_keys_error("the training config", bad, known)
        values = dict(values)
        if "epochs" in values and isinstance(values["epochs"], (int, float)):
            values["epochs"] = {1: int(values["epochs"])}
        if "epochs" in values:
            values["epochs"] = {int(k): int(v) for k, v in dict(values["epochs"]).items()}
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        if "part_lr" in values:
            values["part_lr"] = {str(k): float(v) for k, v in dict(values["part_lr"]).items()}
        return replace(self, **values)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["epochs"] = {str(k): v for k, v in self.epochs.items()}
        return d
