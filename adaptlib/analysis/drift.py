"""Parameter drift: how far adaptation moved each pre-trained tensor, located in the open_clip CLIP layout.

CLIPFit (arXiv 2409.16718) argues from the squared L2 change ||dtheta||^2 of each tuned tensor (its code sums
(theta - theta0)^2) that low text bias layers and the first LayerNorm change most. That number grows with the
tensor size, so the relative change ||dtheta||/||theta0|| and the RMS change ||dtheta||/sqrt(n) are reported
beside it. Prompt methods (CoOp and kin) learn new vectors instead: :func:`prompt_drift` measures those.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from ._arrays import ArrayLike, as_f64

_BLOCK = re.compile(r"(?:^|\.)(?P<visual>visual\.)?transformer\.resblocks\.(?P<layer>\d+)\.(?P<rest>.+)$")
IMAGE_PRE = ("conv1", "class_embedding", "positional_embedding", "ln_pre")
IMAGE_POST = ("ln_post", "proj")
TEXT_PRE = ("token_embedding", "positional_embedding")
TEXT_POST = ("ln_final", "text_projection")
SHARED = ("logit_scale", "logit_bias")
METRICS = ("sq_l2", "l2", "rel_l2", "rms")


class ParamName(NamedTuple):
    """Where a parameter sits: tower image/text/shared/other; layer -1 before the blocks, L after them (L = number
    of blocks of the tower), -1 also for 'shared' and 'other'; module e.g. ln_1, attn.in_proj, mlp.c_fc; param
    weight or bias (bare tensors such as class_embedding or proj count as weight)."""

    tower: str
    layer: int
    module: str
    param: str


def _split_param(rest: str) -> tuple[str, str]:
    head, _, last = rest.rpartition(".")
    if last in ("weight", "bias") and head:
        return head, last
    for kind in ("weight", "bias"):  # nn.MultiheadAttention: in_proj_weight, in_proj_bias
        if last.endswith("_" + kind):
            module = last[: -len(kind) - 1]
            return (f"{head}.{module}" if head else module), kind
    return rest, "weight"


def count_layers(names: Iterable[str]) -> dict[str, int]:
    """Number of residual blocks per tower found in parameter ``names`` ({'image': L_img, 'text': L_txt})."""
    layers = {"image": 0, "text": 0}
    for name in names:
        m = _BLOCK.search(name)
        if m:
            tower = "image" if m["visual"] else "text"
            layers[tower] = max(layers[tower], int(m["layer"]) + 1)
    return layers


def parse_param_name(name: str, n_layers: Mapping[str, int]) -> ParamName:
    """Locate an open_clip CLIP parameter name (a prefix such as ``model.`` before it is allowed)."""
    m = _BLOCK.search(name)
    if m:
        module, param = _split_param(m["rest"])
        return ParamName("image" if m["visual"] else "text", int(m["layer"]), module, param)
    parts = name.split(".")
    if "visual" in parts:
        local = parts[max(i for i, p in enumerate(parts) if p == "visual") + 1:]
        groups = {"image": (IMAGE_PRE, IMAGE_POST)}
    else:
        known = TEXT_PRE + TEXT_POST + SHARED
        start = next((i for i, p in enumerate(parts) if p in known), None)
        local = parts[start:] if start is not None else []
        groups = {"text": (TEXT_PRE, TEXT_POST), "shared": (SHARED, ())}
    if local:
        module, param = _split_param(".".join(local))
        head = local[0]
        for tower, (pre, post) in groups.items():
            if head in pre:
                return ParamName(tower, -1, module, param)
            if head in post:
                return ParamName(tower, int(n_layers.get(tower, 0)), module, param)
    module, param = _split_param(name)
    return ParamName("other", -1, module, param)


def _state(x) -> Mapping[str, torch.Tensor]:
    return x.state_dict() if hasattr(x, "state_dict") else x


def tensor_drift(theta0: torch.Tensor, theta: torch.Tensor) -> dict[str, float]:
    """||dtheta||^2, ||dtheta||, ||dtheta||/||theta0|| (inf if theta0 = 0 but moved) and ||dtheta||/sqrt(n)."""
    if theta0.shape != theta.shape:
        raise ValueError(f"shapes differ: {tuple(theta0.shape)} vs {tuple(theta.shape)}")
    d = theta.detach().to("cpu", torch.float64) - theta0.detach().to("cpu", torch.float64)
    sq = float(torch.sum(d * d))
    l2 = math.sqrt(sq)
    norm0 = float(torch.linalg.vector_norm(theta0.detach().to("cpu", torch.float64)))
    rel = l2 / norm0 if norm0 > 0 else (math.inf if l2 > 0 else 0.0)
    n = theta0.numel()
    return {"numel": n, "norm0": norm0, "sq_l2": sq, "l2": l2, "rel_l2": rel, "rms": l2 / math.sqrt(max(n, 1)),
            "max_abs": float(d.abs().max()) if n else 0.0}


def parameter_drift(frozen, adapted, trainable: Iterable[str] | None = None, *, atol: float = 0.0) -> pd.DataFrame:
    """One row per tensor that changed (max |dtheta| > ``atol``) or is named in ``trainable``.

    ``frozen`` and ``adapted`` are state dicts (or modules) of the same model; names only in one of them (new
    modules such as adapters or prompts) have no theta0 and are left out. Columns: name, tower, layer, module,
    param, numel, norm0, sq_l2, l2, rel_l2, rms, max_abs, changed, trainable; rows in state-dict order.
    """
    f, a = _state(frozen), _state(adapted)
    common = [k for k in f if k in a]
    if not common:
        raise ValueError("frozen and adapted share no parameter names (a prefix such as 'model.' on one side?)")
    trainable = set(trainable or ())
    unknown = sorted(trainable - set(common))
    if unknown:
        raise ValueError(f"trainable names not in both state dicts: {unknown[:5]}")
    n_layers = count_layers(common)
    rows = []
    for name in common:
        if not (torch.is_tensor(f[name]) and f[name].is_floating_point()):
            continue  # integer buffers (e.g. position ids) do not train
        try:
            stats = tensor_drift(f[name], a[name])
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
        changed = stats["max_abs"] > atol
        if changed or name in trainable:
            rows.append({"name": name, **parse_param_name(name, n_layers)._asdict(), **stats,
                         "changed": changed, "trainable": name in trainable})
    columns = ["name", *ParamName._fields, "numel", "norm0", *METRICS, "max_abs", "changed", "trainable"]
    return pd.DataFrame(rows, columns=columns)


def drift_by_layer(drift: pd.DataFrame, by: Iterable[str] = ("tower", "layer")) -> pd.DataFrame:
    """Aggregate :func:`parameter_drift` rows per group, as if the group's tensors were one vector.

    sq_l2 and numel add up; l2 = sqrt(sum sq_l2), rel_l2 = l2 / sqrt(sum norm0^2), rms = l2 / sqrt(sum numel).
    ``by`` may add 'module' or 'param' for a finer view.
    """
    by = list(by)
    g = drift.assign(norm0_sq=drift["norm0"] ** 2).groupby(by, sort=True)
    out = g.agg(n_tensors=("name", "size"), numel=("numel", "sum"), sq_l2=("sq_l2", "sum"),
                norm0_sq=("norm0_sq", "sum")).reset_index()
    out["l2"] = np.sqrt(out["sq_l2"])
    norm0 = np.sqrt(out.pop("norm0_sq"))
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rel_l2"] = np.where(norm0 > 0, out["l2"] / norm0, np.where(out["l2"] > 0, np.inf, 0.0))
    out["rms"] = out["l2"] / np.sqrt(out["numel"].clip(lower=1))
    return out


def prompt_drift(initial: ArrayLike, learned: ArrayLike) -> pd.DataFrame:
    """Per-token change of prompt context vectors: L2 distance, relative L2 and cosine to the initial vector.

    ``learned`` is [M, W] (shared context, CoOp) or [C, M, W] (class-specific); ``initial`` has the same shape or
    [M, W] for a class-specific context started from one init. One row per (class, token); class is -1 for a
    shared context. Cosine is NaN for a zero vector.
    """
    v = as_f64(learned, "learned")
    v0 = as_f64(initial, "initial")
    if v.ndim not in (2, 3):
        raise ValueError(f"learned must be [M, W] or [C, M, W], got shape {v.shape}")
    shared = v.ndim == 2
    v3 = v[None] if shared else v
    if v0.shape != v.shape and v0.shape != v3.shape[1:]:
        raise ValueError(f"initial shape {v0.shape} fits neither learned {v.shape} nor its [M, W] = {v3.shape[1:]}")
    v03 = np.broadcast_to(v0 if v0.ndim == 3 else v0[None], v3.shape)
    l2 = np.linalg.norm(v3 - v03, axis=-1)
    n0, n1 = np.linalg.norm(v03, axis=-1), np.linalg.norm(v3, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.where((n0 > 0) & (n1 > 0), np.sum(v3 * v03, axis=-1) / (n0 * n1), np.nan)
        rel = np.where(n0 > 0, l2 / n0, np.where(l2 > 0, np.inf, 0.0))
    c, m = l2.shape
    return pd.DataFrame({
        "class": np.repeat(np.arange(c), m) if not shared else np.full(m, -1),
        "token": np.tile(np.arange(m), c),
        "init_norm": n0.ravel(),
        "l2": l2.ravel(),
        "rel_l2": rel.ravel(),
        "cosine": cos.ravel(),
    })
