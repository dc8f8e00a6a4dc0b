"""LP++ (Huang et al., CVPR 2024, "LP++: A Surprisingly Strong Linear Probe for Few-Shot CLIP"): a linear probe
blended with the text embeddings by class-wise multipliers,

    logits_c(f) = w_c . f + b_c + alpha_c (f . t_c),

f the normalised image feature, t_c the normalised zero-shot class embedding; no logit scale. Fitted on frozen
features by full-batch gradient descent with the reference code's data-driven initialisation and step sizes
(FereshteShakeri/FewShot-CLIP-Strong-Baseline, methods/linear_probe_p2.py, methods/utils.py), so no learning rate
is searched:

- w_c starts at the *sum* of class c's support features (``compute_centroids``, the mean is commented out there);
  b keeps nn.Linear's default initialisation;
- every alpha_c starts at one value: 250 x the mean over classes of the mean cosine between class c's support
  features and t_c (``calculate_init_alpha``);
- (w, b) take SGD steps of size 4N / lambda_max(F^T F) with momentum 0.9 every iteration (``calculate_lr_w``);
  alpha takes a plain gradient step of size N / (4 max_c sum_i (f_i . t_c)^2) every 10 iterations
  (``calculate_lr_alpha``), with the gradient as the code has it: accumulated over every iteration so far, since
  it is never zeroed;
- 300 iterations (configs/base.yaml ``train_epoch``), on one augmented view of each support image (the code's
  train loader, random resized crop 0.5-1 and flip).

Not followed: the reference code reports the test accuracy of the iteration that is best on the few-shot
validation set; here the last iterate is kept (the protocol's last-epoch model, no validation search) and the
arithmetic is float32, not CLIP's float16.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...backbones.family import embed_dim
from .base import ClassesNotSupported, Part, PartConfig, require_range


@dataclass
class LPPlusPlusConfig(PartConfig):
    epochs: int = 300  # full-batch iterations (configs/base.yaml train_epoch)
    alpha_every: int = 10  # alpha steps once every this many iterations
    init_scale: float = 250.0  # alpha_0 = init_scale x mean cos(f_i, t_{y_i}) (calculate_init_alpha)
    momentum: float = 0.9  # of the SGD on (w, b)
    accumulate_alpha_grad: bool = True  # the code never zeroes alpha's gradient: each step uses the running sum

    def check(self) -> None:
        require_range(self, "epochs", 0)
        require_range(self, "alpha_every", 1)
        require_range(self, "init_scale", 0)
        require_range(self, "momentum", 0, 1, high_open=True)


def class_sums(features: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """[C, E] the sum of each class's features (LP++'s initial visual weights)."""
    return F.one_hot(labels.long(), n_classes).to(features.dtype).t() @ features


def initial_alpha(features: torch.Tensor, labels: torch.Tensor, text: torch.Tensor, scale: float = 250.0) -> float:
    """scale x the mean over classes of mean_{i in c} f_i . t_c: one starting value for every alpha_c."""
    text_logits = features @ text.t()  # [N, C]
    labels = labels.long()
    present = labels.unique()
    per_class = torch.stack([text_logits[labels == c, c].mean() for c in present])
    return float(scale * per_class.double().mean())


def step_sizes(features: torch.Tensor, text: torch.Tensor) -> tuple[float, float]:
    """(step of w and b, step of alpha) from the Lipschitz bounds of the code: 4N / lambda_max(F^T F) and
    N / (4 max_c sum_i (f_i . t_c)^2)."""
    n = features.shape[0]
    x = features.double()
    lr_w = 4.0 * n / float(torch.linalg.eigvalsh(x.t() @ x).max())
    lr_alpha = n / (4.0 * float((x @ text.double().t()).pow(2).sum(0).max()))
    return lr_w, lr_alpha


class LPPlusPlus(Part):
    name = "lp_plus_plus"
    config_class = LPPlusPlusConfig
    class_specific = True
    needs_training_features = True

    def attach(self, model) -> None:
        n_classes = len(model.classnames)
        self.head = nn.Linear(embed_dim(model.clip), n_classes)  # its bias keeps nn.Linear's initialisation
        self.head.requires_grad_(False)  # fitted in fit() by LP++'s own full-batch descent, not the training loop
        self.alpha = nn.Parameter(torch.zeros(n_classes), requires_grad=False)
        self.register_buffer("text", model.zero_shot_text.detach().float().clone())
        self._initial_bias = self.head.bias.detach().clone()
        self._trained_classes = list(model.classnames)

    def fit(self, model, train, val) -> dict[str, float]:
        feats = train.views[:, 0] if train.views is not None else train.plain  # one augmented pass, as the code
        x = F.normalize(feats.float(), dim=-1)
        y = train.labels.long().to(x.device)
        text = self.text.to(x.device)
        n_classes = len(self._trained_classes)
        cfg = self.config
        lr_w, lr_alpha = step_sizes(x, text)
        alpha0 = initial_alpha(x, y, text, cfg.init_scale)
        weight = class_sums(x, y, n_classes).requires_grad_(True)
        bias = self._initial_bias.to(x.device).clone().requires_grad_(True)
        alpha = torch.full((n_classes,), alpha0, device=x.device, requires_grad=True)
        optimizer = torch.optim.SGD([weight, bias], lr=lr_w, momentum=cfg.momentum)
        text_logits = x @ text.t()
        alpha_grad = torch.zeros_like(alpha)
        loss = torch.tensor(float("nan"))
        with torch.enable_grad():
            for it in range(cfg.epochs):
                logits = x @ weight.t() + bias + alpha * text_logits
                loss = F.cross_entropy(logits, y)
                optimizer.zero_grad()
                alpha.grad = None
                loss.backward()
                optimizer.step()
                alpha_grad = alpha_grad + alpha.grad if cfg.accumulate_alpha_grad else alpha.grad
                if (it + 1) % cfg.alpha_every == 0:
                    with torch.no_grad():
                        alpha -= lr_alpha * alpha_grad
        with torch.no_grad():
            self.head.weight.copy_(weight.detach().to(self.head.weight.device))
            self.head.bias.copy_(bias.detach().to(self.head.bias.device))
            self.alpha.copy_(alpha.detach().to(self.alpha.device))
        return {"alpha_init": alpha0, "alpha_mean": float(alpha.detach().mean()), "lr_w": lr_w,
                "lr_alpha": lr_alpha, "train_loss": float(loss.detach()), "iterations": cfg.epochs}

    def fitted_parameters(self) -> list[torch.Tensor]:
        return [self.head.weight, self.head.bias, self.alpha]

    def set_classes(self, model, classnames: list[str]) -> None:
        if list(classnames) != self._trained_classes:
            raise ClassesNotSupported("LP++ has no weights for classes it was not trained on")

    def blended_logits(self, image: torch.Tensor) -> torch.Tensor:
        """w_c . f + b_c + alpha_c (f . t_c) for normalised image features ``image`` [B, E]."""
        f = image.to(self.head.weight.dtype)
        return self.head(f) + self.alpha * (f @ self.text.t())

    def logits(self, logits: torch.Tensor, out) -> torch.Tensor:
        return self.blended_logits(out.image).to(logits.dtype)
