"""The zero-shot-initialised linear probe (ZS-LP) and CLAP's class-adaptive constraint (Silva-Rodriguez et al.,
CVPR 2024, "A Closer Look at the Few-Shot Adaptation of Large Vision-Language Models"; jusiro/CLAP,
trainers/adapters.py).

ZS-LP: one prototype w_c per class, initialised at the class text embedding t_c and trained by gradient on frozen
image features; logits = logit scale x cos(f, w_c), CLIP's own temperature (the reference's ``forward_lp``). As
in the reference code, t_c is the mean of the *unnormalised* text-encoder outputs over the templates
(``_get_base_text_features``): the prototypes live at the text features' own scale, which sets the effective step
size of SGD on a cosine classifier and the scale of CLAP's distance. The prototypes replace the class text
features, so the backbone's logit form (scale, SigLIP's bias) is kept.

CLAP adds to the cross-entropy the penalty  sum_c lambda_c ||w_c - t_c||^2 / C  (``zero_shot_constraint``, "l2"),
with each class's multiplier lambda_c the zero-shot model's mean softmax probability of class c on that class's
augmented support features (``init_lagrangian_multipliers``). The reference code's default run ("l2") keeps the
multipliers fixed; its augmented-Lagrangian outer step (``outer_step``, only with an "adaptative" constraint, once
per epoch) is not part of the published runs and is not implemented here. The constraint acts on the adapted class
text features before normalisation, so it also constrains other text-side parts (a text adapter, a prompt).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...backbones.text import encode_token_ids
from .base import ClassesNotSupported, Part, PartConfig, require_choice


@torch.no_grad()
def raw_zero_shot_text(model) -> torch.Tensor:
    """[C, E] the frozen model's class text features as CLAP's code builds its base: the mean over the model's
    templates of the unnormalised text-encoder outputs, not renormalised."""
    with model.frozen_view():
        feats = encode_token_ids(model.clip, model.template_tokens, model.text_chunk).float()
    return feats.view(len(model.classnames), -1, feats.shape[-1]).mean(dim=1)


def class_rows(trained: list[str], classnames: list[str], what: str) -> torch.Tensor | None:
    """Row indices of ``classnames`` among the ``trained`` classes (None: the same list). A subset is scored with
    the trained rows (CLAP's code indexes its prototypes for ImageNet-A and -R); an unseen class is refused."""
    if list(classnames) == list(trained):
        return None
    unseen = [c for c in classnames if c not in trained]
    if unseen:
        raise ClassesNotSupported(f"{what} has no weights for classes it was not trained on (e.g. {unseen[0]!r})")
    index = {c: i for i, c in enumerate(trained)}
    return torch.tensor([index[c] for c in classnames], dtype=torch.long)


@dataclass
class ZSLinearHeadConfig(PartConfig):
    """No options: the prototypes start at the zero-shot classifier and train with the recipe's optimiser."""


class ZSLinearHead(Part):
    name = "zs_linear_head"
    config_class = ZSLinearHeadConfig
    class_specific = True

    def attach(self, model) -> None:
        base = raw_zero_shot_text(model)
        self.prototypes = nn.Parameter(base.clone())  # zero-shot initialisation: training starts at zero-shot
        self._trained_classes = list(model.classnames)
        self._rows: torch.Tensor | None = None

    def set_classes(self, model, classnames: list[str]) -> None:
        self._rows = class_rows(self._trained_classes, classnames, "a zero-shot-initialised linear probe")

    def text_features(self, features: torch.Tensor) -> torch.Tensor:
        """The class prototypes replace the class text features (cosine classifier at CLIP's temperature)."""
        weights = self.prototypes if self._rows is None else self.prototypes[self._rows.to(self.prototypes.device)]
        if features.dim() == 3:  # per-image class features: the same prototypes for every image
            return weights.unsqueeze(0).expand(features.shape[0], -1, -1)
        return weights


MULTIPLIERS = ("zero_shot", "balanced", "corrected", "constant")
DISTANCES = ("l2", "cosine")


@dataclass
class ClassAdaptiveConstraintConfig(PartConfig):
    # CLAP's variants of init_lagrangian_multipliers: the zero-shot per-class performance (its default "l2"), all
    # ones ("balanced"), rescaled to sum to C ("corrected"), or their mean for every class ("constant")
    multipliers: str = "zero_shot"
    distance: str = "l2"  # squared Euclidean distance (default) or 1 - cosine

    def check(self) -> None:
        require_choice(self, "multipliers", MULTIPLIERS)
        require_choice(self, "distance", DISTANCES)


def zero_shot_multipliers(zero_shot_logits: torch.Tensor, labels: torch.Tensor, n_classes: int,
                          kind: str = "zero_shot") -> torch.Tensor:
    """lambda_c = mean over the support samples of class c of the zero-shot softmax probability of class c
    (CLAP's ``init_lagrangian_multipliers``); a class without samples gets 0."""
    if kind == "balanced":
        return torch.ones(n_classes, device=zero_shot_logits.device)
    probs = zero_shot_logits.float().softmax(dim=-1)
    onehot = F.one_hot(labels.long(), n_classes).to(probs.dtype)
    performance = (probs * onehot).sum(0) / onehot.sum(0).clamp_min(1)
    if kind == "corrected":
        performance = performance * (n_classes / performance.sum())
    elif kind == "constant":
        performance = torch.full_like(performance, float(performance.mean()))
    return performance


class ClassAdaptiveConstraint(Part):
    name = "class_adaptive_constraint"
    config_class = ClassAdaptiveConstraintConfig
    class_specific = True  # one multiplier per training class
    needs_training_features = True  # the multipliers come from the zero-shot model on the support set

    def attach(self, model) -> None:
        self.register_buffer("base", raw_zero_shot_text(model))
        self.register_buffer("multipliers", torch.zeros(len(model.classnames)))  # set in fit(): no penalty before
        self._trained_classes = list(model.classnames)
        self.active = True

    @torch.no_grad()
    def fit(self, model, train, val) -> dict[str, float]:
        feats = train.views if train.views is not None else train.plain.unsqueeze(1)
        n, v = feats.shape[:2]
        image = F.normalize(feats.float().reshape(n * v, -1), dim=-1)
        labels = train.labels.long().to(image.device).repeat_interleave(v)
        text = F.normalize(self.base.to(image.device), dim=-1)
        logits = model.logit_scale.to(image.device).float() * image @ text.t()
        lam = zero_shot_multipliers(logits, labels, len(self._trained_classes), self.config.multipliers)
        self.multipliers = lam.to(self.base.device)
        return {"multiplier_mean": float(lam.mean()), "multiplier_min": float(lam.min()),
                "multiplier_max": float(lam.max())}

    def set_classes(self, model, classnames: list[str]) -> None:
        # the penalty only acts in training, on the training classes; on other classes it has nothing to say
        self.active = list(classnames) == self._trained_classes

    def penalty(self, text: torch.Tensor) -> torch.Tensor:
        """mean_c lambda_c d(text_c, base_c) for unnormalised class features ``text`` [C, E] or [B, C, E]."""
        base = self.base.to(text.dtype)
        if self.config.distance == "l2":
            distance = (text - base).pow(2).sum(-1)
        else:
            distance = 1.0 - F.cosine_similarity(text, base.expand_as(text), dim=-1)
        return (self.multipliers.to(distance.dtype) * distance).mean(-1).mean()

    def loss(self, out) -> torch.Tensor | None:
        if not self.active or out.text_adapted is None:
            return None
        return self.penalty(out.text_adapted.float())
