"""Input conversion shared by the analysis measures: everything is computed in float64 NumPy."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

ArrayLike = Any  # np.ndarray, torch.Tensor, list, pandas Series: anything np.asarray understands


def as_f64(x: ArrayLike, name: str, ndim: int | None = None) -> np.ndarray:
    """``x`` as a finite float64 array (torch tensors are detached and moved to the CPU first)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    arr = np.asarray(x, dtype=np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def l2_normalise(x: np.ndarray, name: str) -> np.ndarray:
    """Rows of ``x`` scaled to unit L2 norm; a zero row has no direction, so it is an error."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(f"{name} has {int(np.sum(norms == 0))} all-zero row(s): cannot L2-normalise them")
    return x / norms
