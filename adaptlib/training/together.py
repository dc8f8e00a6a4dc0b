"""Runs of one frozen-feature method trained together: one vectorised program instead of one loop per run.

Runs whose encoders stay frozen (prompt learners, feature adapters, cache models) train on cached image features;
runs of one method on one task differ only in their parameters' values (seed), their batches (seed, shots) and
their learning rates. ``train_together`` stacks the runs' trainable parameters, and the buffers in which they
differ, along a new leading dimension; computes every run's loss and gradients in one call (``torch.func.vmap``
over the model's functional forward); and applies each run's optimiser step with its own learning rate, in the
same arithmetic as ``torch.optim``. Each run draws its batches from its own generator, in its own epochs, and
follows its own schedule. Runs of a program have the same batch shapes at every step (the same training-set size
and batch size): the batched kernels then compute each run exactly as a program of that run alone does (bitwise:
tested), so a run's numbers never depend on which runs shared its program. Against ``loop.train`` (torch.optim on
the unbatched model) they agree to the order of floating-point sums (the tests hold logits to 1e-5 on short runs;
long runs at high learning rates amplify that difference, as any change of kernel would).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.func import functional_call, grad_and_value, vmap

from ..methods.model import AdaptedCLIP
from ..methods.parts.base import TRAINING_HOOKS, overrides
from ..methods.step import Batch
from ..methods.train_config import TrainConfig
from .loop import (NonFiniteLossError, TrainingMemory, TrainLog, autocast_for, build_optimizer, lr_at,
                   parameter_groups, warmup_steps)

@dataclass
class Member:
    """One run of a group: its model (parts attached and fitted), batches, training settings and step counts."""

    model: AdaptedCLIP
    batches: object  # FeatureBatches: batches(epoch) -> Iterator[Batch]
    cfg: TrainConfig
    total_steps: int
    steps_per_epoch: int
    examples: int  # training-set size: with the batch size, it fixes the shape of every batch


def alone_reason(member: Member) -> str | None:
    """Why ``member`` cannot train in a program with other runs (None: it can, with runs of its ``group_key``)."""
    model = member.model
    if any(p.modifies_image_encoder or p.modifies_text_encoder for p in model.parts):
        return "a part changes an encoder's weights (the runs cannot share one frozen backbone)"
    if any(isinstance(mod, torch.nn.Dropout) and mod.p > 0 for p in model.parts for mod in p.modules()):
        return "a part draws random numbers in its forward pass (dropout)"
    if any(overrides(p, hook) for p in model.parts for hook in TRAINING_HOOKS):
        return "a part acts at the start or end of training or between epochs (the vectorised program does not " \
               "call it)"
    if not model.trainable_parameters():
        return "nothing to train"
    if model.prompt_learner is not None and len(model.classnames) > model.text_chunk:
        return "more class prompts than one text chunk (its activation checkpointing does not run under vmap)"
    return None


def group_key(member: Member) -> tuple:
    """Runs with equal keys can train as one program: the same parts, parameter and buffer shapes, backbone,
    steps, batch shapes and training settings except the learning rates."""
    settings = {k: v for k, v in member.cfg.to_dict().items() if k not in ("lr", "part_lr")}
    return (_signature(member.model), member.model.backbone_name, member.total_steps, member.examples,
            repr(sorted(settings.items())))


def _signature(model: AdaptedCLIP) -> tuple:
    trainable = tuple((n, tuple(p.shape)) for n, p in model.trainable_parameters())
    buffers = tuple((n, tuple(b.shape)) for n, b in model.parts.named_buffers())
    return trainable, buffers, tuple(type(p).__name__ for p in model.parts)


def _stream(batches) -> Iterator[tuple[int, Batch]]:
    """(epoch, batch) in the order the one-by-one loop draws them: epoch after epoch from the run's generator."""
    epoch = 0
    while True:
        yield from ((epoch, b) for b in batches(epoch))
        epoch += 1


def _stack(batches: list[Batch]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stacked features [R, B, E] and labels [R, B] of the runs' batches (equal shapes: ``group_key``)."""
    return torch.stack([b.features for b in batches]), torch.stack([b.labels for b in batches])


class _StackedOptimizer:
    """``torch.optim``'s SGD (momentum, weight decay), AdamW and Adadelta on stacked parameters [R, ...], with a
    learning rate per run: the same update as each run's own optimiser, run for all runs at once."""

    def __init__(self, cfg: TrainConfig, params: dict[str, torch.Tensor]):
        self.cfg, self.state = cfg, {n: {} for n in params}
        self.step_count = 0

    def step(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor], lrs: dict[str, torch.Tensor]):
        cfg = self.cfg
        self.step_count += 1
        t = self.step_count
        for name, p in params.items():
            g, st = grads[name], self.state[name]
            lr = lrs[name].view(-1, *([1] * (p.dim() - 1)))
            if cfg.optimizer == "sgd":
                d = g.add(p, alpha=cfg.weight_decay) if cfg.weight_decay else g
                if cfg.momentum:
                    buf = st.get("momentum_buffer")
                    buf = d.clone() if buf is None else buf.mul_(cfg.momentum).add_(d)
                    st["momentum_buffer"] = buf
                    d = buf
                p.sub_(lr * d)
            elif cfg.optimizer == "adamw":
                b1, b2 = cfg.betas
                p.mul_(1 - lr * cfg.weight_decay)
                m = st.setdefault("exp_avg", torch.zeros_like(p))
                v = st.setdefault("exp_avg_sq", torch.zeros_like(p))
                m.lerp_(g, 1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (v.sqrt() / math.sqrt(1 - b2 ** t)).add_(cfg.eps)
                p.sub_((lr / (1 - b1 ** t)) * m / denom)
            else:  # adadelta, torch's defaults rho 0.9 and eps 1e-6 (build_optimizer passes neither)
                rho, eps = 0.9, 1e-6
                g = g.add(p, alpha=cfg.weight_decay) if cfg.weight_decay else g
                sq = st.setdefault("square_avg", torch.zeros_like(p))
                acc = st.setdefault("acc_delta", torch.zeros_like(p))
                sq.mul_(rho).addcmul_(g, g, value=1 - rho)
                delta = acc.add(eps).sqrt_().div_(sq.add(eps).sqrt_()).mul_(g)
                acc.mul_(rho).addcmul_(delta, delta, value=1 - rho)
                p.sub_(lr * delta)


def _memory_probe(member: Member, batch: Batch, device: torch.device) -> int:
    """What the run's first step adds over the frozen model (``TrainingMemory``), measured as the one-by-one loop
    measures it: a forward and backward of the run alone on its first batch, and the state of its own optimiser
    after one step (taken on copies, so the run's parameters do not move)."""
    model = member.model
    params = [p for _, p in model.trainable_parameters()]
    saved = [p.detach().clone() for p in params]
    optimizer = build_optimizer(parameter_groups(model, member.cfg), member.cfg)
    memory = TrainingMemory(model)
    try:
        with autocast_for(device), memory.watch():
            loss, _ = model.loss(model(batch.to(device)))
        loss.backward()
        optimizer.step()
        return memory.total(params, optimizer)
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)
                p.grad = None


def train_together(members: list[Member], device: torch.device) -> list[TrainLog | NonFiniteLossError]:
    """Train every member as one program; returns each member's log (or the error that stopped it). The trained
    values are written back into each member's model. The members have no ``alone_reason`` and one ``group_key``."""
    template = members[0].model
    names = [n for n, _ in template.trainable_parameters()]
    models = [m.model for m in members]
    for model in models:  # the modes of the one-by-one loop
        model.train()
        model.clip.eval()
        for part in model.parts:
            part.train()
    params = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in models]).to(device) for n in names}
    buffers_each = [dict(m.named_buffers()) for m in models]
    varying = {n for n, b in buffers_each[0].items()
               if any(not torch.equal(b, other[n]) for other in buffers_each[1:])}
    stacked_buffers = {n: torch.stack([bs[n] for bs in buffers_each]).to(device) for n in varying}
    shared_buffers = {n: b for n, b in buffers_each[0].items() if n not in varying}

    def loss_of(p: dict, bufs: dict, feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        out = functional_call(template, {**p, **bufs, **shared_buffers}, (Batch(labels=labels, features=feats),))
        return template.objective(out)

    step_fn = vmap(grad_and_value(loss_of), in_dims=(0, 0, 0, 0))
    streams = [_stream(m.batches) for m in members]
    logs = [TrainLog(trainable_parameters=sum(p[0].numel() for p in params.values())) for _ in members]
    errors: list[NonFiniteLossError | None] = [None] * len(members)
    epoch_losses: list[list[float]] = [[] for _ in members]
    current_epoch = [0] * len(members)
    groups = [parameter_groups(m.model, m.cfg) for m in members]
    group_of = [{n: next(g["base_lr"] for g in gs if any(p is q for q in g["params"]))
                 for n, p in m.model.trainable_parameters()} for m, gs in zip(members, groups)]
    optimizer = _StackedOptimizer(members[0].cfg, params)
    total = members[0].total_steps
    alive = torch.ones(len(members), dtype=torch.bool)
    start = time.perf_counter()
    try:
        for step in range(total):
            drawn = [next(s) for s in streams]
            batches = [b for _, b in drawn]
            if step == 0:
                for log, member, batch in zip(logs, members, batches):
                    log.train_memory_bytes = _memory_probe(member, batch, device)
            for r, (epoch, _) in enumerate(drawn):
                if epoch != current_epoch[r]:
                    logs[r].epoch_loss.append(float(np.mean(epoch_losses[r])))
                    epoch_losses[r], current_epoch[r] = [], epoch
            feats, labels = _stack(batches)
            with autocast_for(device):
                grads, losses = step_fn(params, stacked_buffers, feats.to(device), labels.to(device))
            values = losses.detach().cpu()
            for r, value in enumerate(values.tolist()):
                if alive[r] and not math.isfinite(value):
                    alive[r] = False
                    errors[r] = NonFiniteLossError(
                        f"training loss became {value} at epoch {current_epoch[r] + 1}, step {step + 1}; the run is "
                        f"stopped and no result is written. Lower the learning rate (lr={members[r].cfg.lr}) or "
                        f"check the inputs.")
            keep = alive.to(device)
            grads = {n: torch.where(keep.view(-1, *([1] * (g.dim() - 1))), g, torch.zeros_like(g))
                     for n, g in grads.items()}
            if members[0].cfg.grad_clip:
                norms = torch.sqrt(sum((g.flatten(1) ** 2).sum(1) for g in grads.values()))
                coef = torch.clamp(members[0].cfg.grad_clip / (norms + 1e-6), max=1.0)
                grads = {n: g * coef.view(-1, *([1] * (g.dim() - 1))) for n, g in grads.items()}
            lrs = {n: torch.tensor([lr_at(step, m.total_steps, m.steps_per_epoch, m.cfg, group_of[r][n])
                                    if alive[r] else 0.0 for r, m in enumerate(members)], device=device)
                   for n in names}
            with torch.no_grad():
                optimizer.step(params, grads, lrs)
            for r, (value, batch) in enumerate(zip(values.tolist(), batches)):
                if alive[r]:
                    epoch_losses[r].append(value)
                    logs[r].examples_seen += len(batch)
                    logs[r].steps += 1
            if not alive.any():
                break
    finally:
        seconds = time.perf_counter() - start
        with torch.no_grad():
            for r, model in enumerate(models):
                own = dict(model.named_parameters())
                for n in names:
                    own[n].copy_(params[n][r].to(own[n].device))
                model.eval()
    out: list[TrainLog | NonFiniteLossError] = []
    for r, (log, member) in enumerate(zip(logs, members)):
        if errors[r] is not None:
            out.append(errors[r])
            continue
        if epoch_losses[r]:
            log.epoch_loss.append(float(np.mean(epoch_losses[r])))
        log.epochs = current_epoch[r] + 1
        log.steps_after_warmup = max(0, log.steps - warmup_steps(member.total_steps, member.steps_per_epoch,
                                                                 member.cfg))
        log.seconds = seconds / len(members)  # the program's time, shared equally
        log.final_loss = log.epoch_loss[-1] if log.epoch_loss else None
        log.together = len(members)
        out.append(log)
    return out

