"""GDA (Wang et al., ICLR 2024, "A Hard-to-Beat Baseline for Training-free CLIP-based Adaptation"): Gaussian
discriminant analysis on frozen image features, ensembled with the zero-shot logits.

From the normalised features of 10 augmented views of each support image (mrflogs/ICLR24 main_few_shots.py,
``augment_epoch: 10``, random resized crop 0.5-1 and flip): class means mu_c, and the shared precision of the
code's KS estimator on the class-centred features X (n rows, d columns, S their sample covariance)

    P = d * pinv((n - 1) S + tr(S) I),

then the linear discriminant  w_c = P mu_c,  b_c = log(1/C) - mu_c^T P mu_c / 2  (uniform class prior), and

    logits = CLIP logits + alpha (f w_c + b_c).

alpha is the first of [1e-4, 1e-3, 1e-2, 0.1, 1, 10, 100] with the highest validation accuracy (strictly better
than 0, else 0.1), chosen here on the few-shot validation set after fitting (``tune_on_validation``), never on
test. Not followed: the code searches alpha on the dataset's full validation split (and on the test set for
ImageNet), which the few-shot protocol does not have; the code's base-to-new script synthesises classifiers for
unseen classes from the text embeddings with another estimator, which is not implemented (unseen classes are
refused, as the linear probe refuses them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...backbones.family import embed_dim
from ...utils.typed import OptionTypeError
from .base import ClassesNotSupported, Part, PartConfig, require_range

ALPHAS = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)


@dataclass
class GDAConfig(PartConfig):
    alpha: float = 0.1  # the weight of the GDA logits when nothing is searched (the code's fallback)
    alphas: tuple[float, ...] = ALPHAS  # the code's grid, searched on the few-shot validation set
    search: bool = True

    def check(self) -> None:
        require_range(self, "alpha", 0)
        if not self.alphas or any(a < 0 for a in self.alphas):
            raise OptionTypeError(f"option 'alphas' = {list(self.alphas)!r} is out of range: expected one or more "
                                  f"values >= 0")


@torch.no_grad()
def gda_classifier(features: torch.Tensor, labels: torch.Tensor, n_classes: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight [C, d], bias [C]) of the linear discriminant of normalised ``features`` [n, d]: class means, the KS
    shrinkage precision d * pinv((n - 1) S + tr(S) I) of the class-centred features, a uniform prior. A class
    without samples gets a zero mean. Computed in float64."""
    x = features.double()
    n, d = x.shape
    labels = labels.long().to(x.device)
    onehot = F.one_hot(labels, n_classes).to(x.dtype)
    means = (onehot.t() @ x) / onehot.sum(0).clamp_min(1)[:, None]
    centred = x - means[labels]
    cov = torch.cov(centred.t()) if n > 1 else torch.zeros(d, d, dtype=x.dtype, device=x.device)
    precision = d * torch.linalg.pinv((n - 1) * cov + cov.trace() * torch.eye(d, dtype=x.dtype, device=x.device))
    weight = means @ precision
    bias = math.log(1.0 / n_classes) - 0.5 * (weight * means).sum(-1)
    return weight, bias


class GDA(Part):
    name = "gda"
    config_class = GDAConfig
    class_specific = True
    needs_training_features = True

    def attach(self, model) -> None:
        n_classes = len(model.classnames)
        self.register_buffer("weight", torch.zeros(n_classes, embed_dim(model.clip)))
        self.register_buffer("bias", torch.zeros(n_classes))
        self.alpha = float(self.config.alpha)
        self.active = True
        self._trained_classes = list(model.classnames)

    def fit(self, model, train, val) -> dict[str, float]:
        views = train.views if train.views is not None else train.plain.unsqueeze(1)
        n, v = views.shape[:2]
        x = F.normalize(views.float().reshape(n * v, -1), dim=-1)
        y = train.labels.long().to(x.device).repeat_interleave(v)
        weight, bias = gda_classifier(x, y, len(self._trained_classes))
        self.weight = weight.float().to(self.weight.device)
        self.bias = bias.float().to(self.bias.device)
        return {"features": int(n * v), "views": int(v)}

    def fitted_parameters(self) -> list[torch.Tensor]:
        return [self.weight, self.bias]

    def extra_state(self) -> dict:
        return {"alpha": self.alpha}

    def set_classes(self, model, classnames: list[str]) -> None:
        if list(classnames) != self._trained_classes:
            raise ClassesNotSupported("GDA has class means only for the classes it was fitted on")

    def gda_logits(self, image: torch.Tensor) -> torch.Tensor:
        """f w_c + b_c for normalised image features ``image`` [B, E]."""
        return image.to(self.weight.dtype) @ self.weight.t() + self.bias

    def logits(self, logits: torch.Tensor, out) -> torch.Tensor:
        if not self.active:
            return logits
        return logits + (self.alpha * self.gda_logits(out.image)).to(logits.dtype)

    def fixed_choice(self) -> dict[str, float]:
        """Without validation data: the configured alpha (the code's fallback when its search finds nothing)."""
        return {"alpha": self.alpha}

    def tune_on_validation(self, model, evaluate, forward_val=None) -> dict[str, float]:
        """alpha on the few-shot validation set: in closed form from one forward pass when GDA is the only part
        that acts after the logits, else by evaluating the model at each alpha."""
        if not self.config.search:
            return {}
        alphas = [float(a) for a in self.config.alphas]
        if forward_val is not None and self.only_ensemble(model):
            accuracies = self._closed_form(forward_val, alphas)
        else:
            accuracies = []
            for alpha in alphas:
                self.alpha = alpha
                accuracies.append(float(evaluate()))
        best_acc, best_alpha = 0.0, float(self.config.alpha)
        for alpha, acc in zip(alphas, accuracies):  # first strict improvement on 0, as the reference loop
            if acc > best_acc:
                best_acc, best_alpha = acc, alpha
        self.alpha = best_alpha
        return {"alpha": best_alpha, "val_accuracy": best_acc}

    @torch.no_grad()
    def _closed_form(self, forward_val, alphas: list[float]) -> list[float]:
        out, labels = self.forward_without_self(forward_val)
        base = out.logits.float()
        extra = self.gda_logits(out.image).float()
        return [float(((base + a * extra).argmax(-1) == labels).float().mean()) for a in alphas]
