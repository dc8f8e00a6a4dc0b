"""Representation drift: linear CKA per layer (Kornblith et al., ICML 2019) and 1 - cosine of final features."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._arrays import ArrayLike, as_f64, l2_normalise


def linear_cka(x: ArrayLike, y: ArrayLike) -> float:
    """Linear CKA of activations x [N, D1] and y [N, D2] over the same N inputs, in float64.

    CKA = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F) with column-centred Xc, Yc (Kornblith et al. 2019,
    eq. for linear HSIC). It is invariant to orthogonal maps and isotropic scaling of either side, so it compares
    what two layers represent rather than their coordinates. When N is smaller than the widths the same value
    is computed through the N x N Gram matrices. NaN if one side is constant over the inputs.
    """
    a, b = as_f64(x, "x", ndim=2), as_f64(y, "y", ndim=2)
    if len(a) != len(b):
        raise ValueError(f"x and y must hold the same inputs: {len(a)} vs {len(b)} rows")
    if len(a) < 2:
        raise ValueError("CKA needs at least 2 inputs")
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    if len(a) < max(a.shape[1], b.shape[1]):
        k, l_ = a @ a.T, b @ b.T
        hsic, nx, ny = float(np.sum(k * l_)), np.linalg.norm(k), np.linalg.norm(l_)
    else:
        hsic = float(np.linalg.norm(b.T @ a) ** 2)
        nx, ny = np.linalg.norm(a.T @ a), np.linalg.norm(b.T @ b)
    if nx == 0 or ny == 0:
        return float("nan")
    return hsic / float(nx * ny)


def layerwise_cka(acts_a: Sequence[ArrayLike], acts_b: Sequence[ArrayLike]) -> list[float]:
    """Linear CKA between layer i of model a and layer i of model b (e.g. frozen vs adapted), for every i."""
    if len(acts_a) != len(acts_b):
        raise ValueError(f"different numbers of layers: {len(acts_a)} vs {len(acts_b)}")
    return [linear_cka(a, b) for a, b in zip(acts_a, acts_b)]


def representation_drift(frozen: ArrayLike, adapted: ArrayLike) -> float:
    """1 - mean_i cos(frozen_i, adapted_i): how far final features moved, for image features [N, D] of a probe
    set or for class text features [C, D] (rows paired: same image / same class on both sides)."""
    a = l2_normalise(as_f64(frozen, "frozen", ndim=2), "frozen")
    b = l2_normalise(as_f64(adapted, "adapted", ndim=2), "adapted")
    if a.shape != b.shape:
        raise ValueError(f"frozen and adapted features differ in shape: {a.shape} vs {b.shape}")
    return float(1.0 - np.mean(np.sum(a * b, axis=1)))
