"""Tip-Adapter's cache model (Zhang et al., ECCV 2022), training-free or with trainable keys (Tip-Adapter-F).

Keys are the normalised mean over augmented views of each training image's frozen feature; values are one-hot
labels. logits = CLIP logits + alpha * exp(-beta * (1 - f K^T)) L. alpha and beta are searched on the few-shot
validation set after training, never on test (the reference code searches on test for ImageNet).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...backbones.family import embed_dim
from ...utils.typed import OptionTypeError
from .base import Part, PartConfig, require_range


@dataclass
class TipCacheConfig(PartConfig):
    alpha: float = 1.17  # initial residual weight of the cache (Tip-Adapter's ImageNet config)
    beta: float = 1.0  # initial sharpness
    train_keys: bool = False  # Tip-Adapter-F
    search: bool = True  # search alpha and beta on the few-shot validation set
    search_scale: tuple[float, float] = (7.0, 3.0)  # beta, alpha grids run from 0.1 up to (not including) these
    search_step: tuple[int, int] = (200, 20)

    def check(self) -> None:
        require_range(self, "alpha", 0)
        require_range(self, "beta", 0)
        if not all(s > 0.1 for s in self.search_scale):
            raise OptionTypeError(f"option 'search_scale' = {list(self.search_scale)!r} is out of range: expected "
                                  f"two values > 0.1 (the grids run from 0.1 up to them)")
        if not all(s >= 1 for s in self.search_step):
            raise OptionTypeError(f"option 'search_step' = {list(self.search_step)!r} is out of range: expected "
                                  f"two integers >= 1")


def search_grid(scale: float, steps: int) -> np.ndarray:
    """Tip-Adapter's grid: [i * (scale - 0.1) / steps + 0.1 for i in range(steps)]."""
    return np.arange(int(steps)) * (float(scale) - 0.1) / int(steps) + 0.1


class TipCache(Part):
    name = "tip_cache"
    config_class = TipCacheConfig
    class_specific = True
    needs_training_features = True

    def attach(self, model) -> None:
        self.alpha = float(self.config.alpha)
        self.beta = float(self.config.beta)
        self.active = True
        dim = embed_dim(model.clip)
        self.keys = nn.Linear(dim, 1, bias=False)  # replaced in fit(): one row per training image
        self.keys.weight.requires_grad_(self.config.train_keys)
        self.register_buffer("values", torch.zeros(1, len(model.classnames)))
        self._trained_classes = list(model.classnames)

    def fit(self, model, train, val) -> dict[str, float]:
        features = train.views if train.views is not None else train.plain.unsqueeze(1)
        labels = train.labels
        keys = F.normalize(features.float().mean(dim=1), dim=-1)  # mean over views, then normalise
        self.keys = nn.Linear(keys.shape[1], keys.shape[0], bias=False).to(keys.device)
        with torch.no_grad():
            self.keys.weight.copy_(keys)
        self.keys.weight.requires_grad_(self.config.train_keys)
        self.values = F.one_hot(labels.long(), len(model.classnames)).float().to(keys.device)
        return {"cache_size": int(keys.shape[0]), "views": int(features.shape[1])}

    def extra_state(self) -> dict:
        return {"alpha": self.alpha, "beta": self.beta}

    def load_state_tensors(self, model, tensors: dict[str, torch.Tensor]) -> None:
        """The cache's size is the training set's: make room for the saved keys and values, then load them."""
        keys = tensors["keys.weight"]
        self.keys = nn.Linear(keys.shape[1], keys.shape[0], bias=False).to(keys.device)
        self.keys.weight.requires_grad_(self.config.train_keys)
        self.values = torch.zeros_like(tensors["values"])
        super().load_state_tensors(model, tensors)

    def set_classes(self, model, classnames: list[str]) -> None:
        # The cache only knows its training classes: for any other class set it steps aside (zero-shot logits).
        self.active = list(classnames) == self._trained_classes

    def cache_logits(self, image: torch.Tensor) -> torch.Tensor:
        affinity = self.keys(image.to(self.keys.weight.dtype))
        return torch.exp(-self.beta * (1.0 - affinity)) @ self.values

    def logits(self, logits: torch.Tensor, out) -> torch.Tensor:
        if not self.active:
            return logits
        return logits + self.alpha * self.cache_logits(out.image).to(logits.dtype)

    def fixed_choice(self) -> dict[str, float]:
        """Without validation data: the configured alpha and beta (Tip-Adapter's initial values)."""
        return {"alpha": self.alpha, "beta": self.beta}

    def tune_on_validation(self, model, evaluate, forward_val=None) -> dict[str, float]:
        """Exhaustive grid search of (beta, alpha) on the few-shot validation set. When the cache is the only part
        that acts after the logits, the search is done in closed form on one forward pass of the validation set
        (logits = base + alpha * cache(beta)); otherwise every point re-evaluates the model."""
        if not (self.config.search and self.active):
            return {}
        betas = search_grid(self.config.search_scale[0], self.config.search_step[0])
        alphas = search_grid(self.config.search_scale[1], self.config.search_step[1])
        if forward_val is not None and self.only_ensemble(model):
            best = self._closed_form_search(forward_val, betas, alphas)
        else:
            best = (-1.0, self.alpha, self.beta)
            for beta in betas:
                for alpha in alphas:
                    self.alpha, self.beta = float(alpha), float(beta)
                    acc = evaluate()
                    if acc > best[0]:
                        best = (acc, float(alpha), float(beta))
        _, self.alpha, self.beta = best
        return {"alpha": self.alpha, "beta": self.beta, "val_accuracy": best[0],
                "grid": f"{len(betas)}x{len(alphas)}"}

    @torch.no_grad()
    def _closed_form_search(self, forward_val, betas, alphas) -> tuple[float, float, float]:
        out, labels = self.forward_without_self(forward_val)
        base = out.logits.float()
        affinity = self.keys(out.image.to(self.keys.weight.dtype)).float()
        a = torch.as_tensor(alphas, dtype=base.dtype, device=base.device)
        best = (-1.0, self.alpha, self.beta)
        for beta in betas:  # first best in (beta, alpha) order, as the reference loop keeps it
            cache = torch.exp(-float(beta) * (1.0 - affinity)) @ self.values
            acc = ((base[None] + a[:, None, None] * cache[None]).argmax(-1) == labels[None]).float().mean(-1)
            i = int(acc.argmax())
            if float(acc[i]) > best[0]:
                best = (float(acc[i]), float(alphas[i]), float(beta))
        return best
