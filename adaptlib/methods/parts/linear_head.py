"""The linear probe of the CLIP paper: L2-regularised logistic regression on frozen image features.

Fitted with scikit-learn's L-BFGS on the few-shot training features (test transform, no augmentation); the
inverse regularisation C is chosen on the few-shot validation set by a log-spaced search over 1e-6..1e6 followed
by a bisection-style refinement around the best value, as Radford et al. (2021) describe. The head then replaces
CLIP's logits. Without validation data (the ``fixed`` selection) C is ``fixed_c``: the CLIP paper and CoOp's
``lpclip/linear_probe.py`` publish only the search, so the fixed value is scikit-learn's default C = 1, the centre
of that search's grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...backbones.family import embed_dim
from ...utils.typed import OptionTypeError
from .base import ClassesNotSupported, Part, PartConfig, require_range


@dataclass
class LinearHeadConfig(PartConfig):
    c_grid: tuple[float, float, int] = (-6.0, 6.0, 7)  # log10 range and points of the first search
    refine_steps: int = 8  # halvings at most (stops at 1/8 decade)
    max_iter: int = 1000
    normalise: bool = True  # fit on L2-normalised features
    fixed_c: float = 1.0  # C without validation data (scikit-learn's default; no published fixed value)

    def check(self) -> None:
        lo, hi, n = self.c_grid
        if not (lo < hi and n >= 2):
            raise OptionTypeError(f"option 'c_grid' = {self.c_grid!r} is out of range: expected [low, high, points] "
                                  f"with low < high and at least 2 points")
        require_range(self, "refine_steps", 0)
        require_range(self, "max_iter", 1)
        if not self.fixed_c > 0:
            raise OptionTypeError(f"option 'fixed_c' = {self.fixed_c!r} is out of range: expected > 0")


def fit_logistic(train_x: np.ndarray, train_y: np.ndarray, c: float, max_iter: int, seed: int = 0):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        # one shot per class looks like regression to scikit-learn, and weak regularisation may not converge
        # within max_iter: both are expected in few-shot probing and are not errors
        warnings.filterwarnings("ignore", message="The number of unique classes", category=UserWarning)
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        clf.fit(train_x, train_y)
    return clf


def search_c(train_x, train_y, val_x, val_y, cfg: LinearHeadConfig) -> tuple[float, float, list]:
    """(best C, its validation accuracy, every (log10 C, accuracy) tried).

    CLIP's parametric binary search: start from C in 1e-6, 1e-4, ..., 1e6, then repeatedly halve the interval
    around the best value until the resolution reaches 8 steps per decade. Ties go to the smaller C (stronger
    regularisation), so the choice is deterministic on tiny validation sets.
    """
    tried: dict[float, float] = {}

    def score(log_c: float) -> float:
        key = round(log_c, 6)
        if key not in tried:
            clf = fit_logistic(train_x, train_y, 10 ** key, cfg.max_iter)
            tried[key] = float((clf.predict(val_x) == val_y).mean())
        return tried[key]

    def best_of(candidates):
        return max(candidates, key=lambda lc: (score(lc), -lc))

    lo, hi, n = cfg.c_grid
    grid = [float(g) for g in np.linspace(lo, hi, int(n))]
    centre = best_of(grid)
    step = grid[1] - grid[0] if len(grid) > 1 else 1.0
    for _ in range(cfg.refine_steps):
        if step <= 1.0 / 8:
            break
        step /= 2
        centre = best_of([c for c in (centre - step, centre, centre + step) if lo <= c <= hi])
    return 10 ** centre, score(centre), sorted(tried.items())


class LinearHead(Part):
    name = "linear_head"
    config_class = LinearHeadConfig
    class_specific = True
    needs_training_features = True

    def attach(self, model) -> None:
        dim = embed_dim(model.clip)
        self.head = nn.Linear(dim, len(model.classnames))
        self.head.requires_grad_(False)  # fitted in closed form by scikit-learn, not by the training loop
        self._trained_classes = list(model.classnames)
        self.chosen: dict[str, float] = {}

    def fit(self, model, train, val) -> dict[str, float]:
        x, y = train.plain.float(), train.labels.long()
        if self.config.normalise:
            x = F.normalize(x, dim=-1)
        tx, ty = x.cpu().numpy().astype(np.float64), y.cpu().numpy()
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):  # BLAS threads make these small L-BFGS fits ~10x slower (measured 8.5 s vs 0.8 s)
            if val is None:  # no validation data: the fixed C
                c, val_acc, tried = self.config.fixed_c, None, []
            else:
                vx = F.normalize(val.plain.float(), dim=-1) if self.config.normalise else val.plain.float()
                vx, vy = vx.cpu().numpy().astype(np.float64), val.labels.long().cpu().numpy()
                c, val_acc, tried = search_c(tx, ty, vx, vy, self.config)
            clf = fit_logistic(tx, ty, c, self.config.max_iter)
        n_classes = len(self._trained_classes)
        weight = torch.zeros(n_classes, tx.shape[1], dtype=torch.float64)
        bias = torch.zeros(n_classes, dtype=torch.float64)
        classes = torch.as_tensor(clf.classes_)
        if len(classes) == 2:  # scikit-learn's binary form: one row that scores class 1 against class 0
            weight[classes[1]] = torch.from_numpy(clf.coef_[0])
            bias[classes[1]] = float(clf.intercept_[0])
        else:
            weight[classes] = torch.from_numpy(clf.coef_)
            bias[classes] = torch.from_numpy(clf.intercept_)
        with torch.no_grad():
            self.head.weight.copy_(weight.float())
            self.head.bias.copy_(bias.float())
        self.chosen = {"C": float(c), "log10_C": math.log10(c), "val_accuracy": val_acc, "C_tried": len(tried)}
        return self.chosen

    def fitted_parameters(self) -> list[torch.Tensor]:
        return [self.head.weight, self.head.bias]

    def set_classes(self, model, classnames: list[str]) -> None:
        if list(classnames) != self._trained_classes:
            raise ClassesNotSupported("a linear probe has no weights for classes it was not trained on")

    def logits(self, logits: torch.Tensor, out) -> torch.Tensor:
        feats = out.image if self.config.normalise else out.image_raw
        return self.head(feats.to(self.head.weight.dtype)).to(logits.dtype)
