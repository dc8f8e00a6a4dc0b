"""The one training loop of every method: optimiser, warm-up + cosine schedule, autocast, finite-loss guard.

Only parameters with ``requires_grad`` train (the parts decided which); a method with none skips the loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch

from ..methods.model import AdaptedCLIP
from ..methods.step import Batch, TrainingPlan
from ..methods.train_config import TrainConfig


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite: the run stops and writes no result."""


@dataclass
class TrainLog:
    epochs: int = 0
    steps: int = 0
    seconds: float = 0.0
    trainable_parameters: int = 0
    epoch_loss: list[float] = field(default_factory=list)
    final_loss: float | None = None
    examples_seen: int = 0
    steps_after_warmup: int = 0  # the steps that ran at the schedule's own rates, not the warm-up rate
    train_memory_bytes: int = 0  # what training adds over the frozen model's inference (see ``TrainingMemory``)
    together: int = 1  # runs trained as one program with this one (``training.together``); seconds are shared

    def to_dict(self) -> dict:
        out = {"epochs": self.epochs, "steps": self.steps, "seconds": round(self.seconds, 3),
               "trainable_parameters": self.trainable_parameters, "epoch_loss": self.epoch_loss,
               "final_loss": self.final_loss, "examples_seen": self.examples_seen,
               "steps_after_warmup": self.steps_after_warmup,
               "train_memory_mb": round(self.train_memory_bytes / 2**20, 3)}
        if self.together > 1:
            out["trained_together"] = self.together
        return out


def warmup_steps(total_steps: int, steps_per_epoch: int, cfg: TrainConfig) -> int:
    """How many of a run's first steps run at the warm-up rate (``lr_at`` returns ``cfg.warmup_lr`` for them)."""
    if cfg.schedule_per_epoch:
        return min(cfg.warmup_epochs * max(1, steps_per_epoch), total_steps)
    return min(cfg.warmup_epochs * steps_per_epoch, int(cfg.max_warmup_fraction * total_steps))


class TrainingMemory:
    """The memory a method's training adds over the frozen model, measured on the first step: the activations
    autograd saves for the backward pass (each storage once, the model's own weights excluded) plus the trainable
    parameters, their gradients and the optimiser's state. Deterministic, so it can be compared across methods
    and machines (a process's resident size cannot: allocator caches and the data loaders blur it)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.weights = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
        self.saved: dict[int, int] = {}

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in self.weights:
            self.saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    def watch(self):
        return torch.autograd.graph.saved_tensors_hooks(self._pack, lambda tensor: tensor)

    def total(self, params: list[torch.Tensor], optimizer: torch.optim.Optimizer) -> int:
        state = sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values()
                    if torch.is_tensor(t))
        trainable = sum(2 * p.numel() * p.element_size() for p in params)  # the parameter and its gradient
        return sum(self.saved.values()) + state + trainable


def parameter_groups(model: AdaptedCLIP, cfg: TrainConfig) -> list[dict]:
    """One optimiser group per learning rate: ``cfg.part_lr`` gives a part its own (a hybrid's parts keep the
    learning rates of the methods they come from); every other trainable parameter uses ``cfg.lr``."""
    unknown = set(cfg.part_lr) - {p.name for p in model.parts}
    if unknown:
        raise ValueError(f"part_lr names parts {sorted(unknown)} that this model does not have "
                         f"({[p.name for p in model.parts]})")
    groups: dict[float, list] = {}
    for _, p in model.trainable_parameters():
        owner = model.owner(p)
        lr = cfg.part_lr.get(owner.name, cfg.lr) if owner is not None else cfg.lr
        groups.setdefault(lr, []).append(p)
    return [{"params": ps, "lr": lr, "base_lr": lr} for lr, ps in sorted(groups.items())]


def build_optimizer(groups: list[dict], cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)
    return torch.optim.Adadelta(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_at(step: int, total_steps: int, steps_per_epoch: int, cfg: TrainConfig, base_lr: float | None = None) -> float:
    """The learning rate of optimisation step ``step`` (0-based) of a run of ``total_steps`` steps.

    ``cfg.schedule_per_epoch`` (the Dassl-based methods): Dassl's ``ConstantWarmupScheduler`` around
    ``CosineAnnealingLR(T_max=E)``, stepped once at the end of every epoch, with E the run's epochs
    (``ceil(total_steps / steps_per_epoch)``) and the cosine counted from the end of the warm-up
    (``WARMUP_RECOUNT``): epochs ``e < warmup_epochs`` run at ``warmup_lr``, epoch ``e >= warmup_epochs`` at
    ``eta_min + (base - eta_min) * (1 + cos(pi * (e - warmup_epochs) / E)) / 2``. With one warm-up epoch the
    last epoch runs at (1 + cos(pi (E - 2) / E)) / 2 of the base rate, not at zero. (APEX's one-epoch *linear*
    warm-up is the same: Dassl's ``LinearWarmupScheduler`` runs epoch 0 at ``WARMUP_MIN_LR``.)

    Otherwise: constant warm-up over the first ``warmup_epochs`` epochs' steps, but never more than
    ``max_warmup_fraction`` (10%) of the run's own steps, so a step cap cannot leave a run mostly in its warm-up
    (a whole epoch of CoCoOp's batch-1 steps used to eat a 100-step cap), then a per-step cosine from the base rate towards ``eta_min`` over the remaining steps, as
    ``CosineAnnealingLR(T_max=total_steps)`` stepped every iteration (Tip-Adapter-F, CLIP-LoRA).
    """
    base = cfg.lr if base_lr is None else base_lr
    if cfg.schedule_per_epoch:
        epoch = step // max(1, steps_per_epoch)
        if epoch < cfg.warmup_epochs:
            return cfg.warmup_lr
        if cfg.scheduler == "constant":
            return base
        epochs = -(-total_steps // max(1, steps_per_epoch))
        t = epoch - cfg.warmup_epochs
        return cfg.eta_min + 0.5 * (base - cfg.eta_min) * (1.0 + math.cos(math.pi * t / max(1, epochs)))
    warmup = warmup_steps(total_steps, steps_per_epoch, cfg)
    if step < warmup:
        return cfg.warmup_lr
    if cfg.scheduler == "constant":
        return base
    progress = (step - warmup) / max(1, total_steps - warmup)
    return cfg.eta_min + 0.5 * (base - cfg.eta_min) * (1.0 + math.cos(math.pi * progress))


def autocast_for(device: torch.device):
    """bf16 autocast on CUDA, full precision elsewhere (CPU autocast is slower and changes numbers)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def train(model: AdaptedCLIP, epoch_batches: Callable[[int], Iterator[Batch]], cfg: TrainConfig, total_steps: int,
          steps_per_epoch: int, device: torch.device, progress: bool = False, desc: str = "train",
          shots: int | None = None) -> TrainLog:
    """Train ``model`` for ``total_steps`` steps, drawing batches from ``epoch_batches(epoch)`` epoch by epoch.

    Every part hears of the plan before the first step, and of each epoch's end and the training's end
    (``Part.begin_training``, ``end_epoch``, ``end_training``; no-ops unless a part needs them). ``shots``: the
    run's K images per class, for parts whose settings depend on it.
    """
    from tqdm.auto import tqdm

    params = [p for _, p in model.trainable_parameters()]
    log = TrainLog(trainable_parameters=sum(p.numel() for p in params))
    if not params:
        return log
    optimizer = build_optimizer(parameter_groups(model, cfg), cfg)
    total = total_steps
    epochs = -(-total // steps_per_epoch)
    plan = TrainingPlan(total, steps_per_epoch, epochs, shots)
    start = time.perf_counter()
    step = 0
    bar = tqdm(total=total, desc=desc, disable=not progress, leave=False, mininterval=1.0)
    model.train()
    model.clip.eval()  # the frozen backbone keeps eval-mode behaviour (no dropout in CLIP anyway)
    for part in model.parts:
        part.train()
    try:
        for part in model.active_parts:
            part.begin_training(model, plan)
        for epoch in range(epochs):
            losses = []
            for batch in epoch_batches(epoch):
                if step >= total:
                    break
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step, total, steps_per_epoch, cfg, group["base_lr"])
                batch = batch.to(device)
                memory = TrainingMemory(model) if step == 0 else None
                with autocast_for(device), (memory.watch() if memory else nullcontext()):
                    out = model(batch)
                    loss, pieces = model.loss(out)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise NonFiniteLossError(
                        f"training loss became {value} at epoch {epoch + 1}, step {step + 1} ({pieces}); the run "
                        f"is stopped and no result is written. Lower the learning rate (lr={cfg.lr}) or check the "
                        f"inputs.")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                optimizer.step()
                if memory is not None:
                    log.train_memory_bytes = memory.total(params, optimizer)
                losses.append(value)
                log.examples_seen += len(batch)
                step += 1
                bar.update(1)
            if losses:
                log.epoch_loss.append(float(np.mean(losses)))
            log.epochs = epoch + 1
            for part in model.active_parts:
                part.end_epoch(model, epoch, plan)
            if step >= total:
                break
        for part in model.active_parts:
            part.end_training(model, plan)
    finally:
        bar.close()
        model.eval()
    log.steps = step
    log.steps_after_warmup = max(0, step - warmup_steps(total, steps_per_epoch, cfg))
    log.seconds = time.perf_counter() - start
    log.final_loss = log.epoch_loss[-1] if log.epoch_loss else None
    return log
