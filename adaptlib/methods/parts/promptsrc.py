"""PromptSRC's self-regulation (Khattak et al., ICCV 2023), as muzairkhattak/PromptSRC trainers/promptsrc.py has
it; its prompts are IVLP's (the ``deep_text_prompt`` and ``visual_prompt`` parts).

``self_consistency``: the self-consistency losses that keep the prompted model close to the frozen one, each step
  L_text  = text_weight  * mean |t - t0|      over classes and dimensions (L1, ``F.l1_loss``)
  L_image = image_weight * mean |v - v0|      over images and dimensions
  L_logit = logit_weight * sum_b,c p0 (log p0 - log p) / (B C)     (``F.kl_div(..., reduction="sum")`` / numel)
with t, v the prompted model's normalised class text and image features, v0 the frozen model's normalised image
features of the same (augmented) images, t0 the frozen class text features averaged over the 60 ImageNet
templates of the code's ``IMAGENET_TEMPLATES`` (textual diversity: the mean of the unnormalised features over the
templates, then normalised, as the code averages them), p = softmax(logits) and p0 = softmax(scale v0 t0^T).

``prompt_aggregation``: Gaussian prompt aggregation (GPA). After epoch e = 1 .. E the trainable parameters are
added with weight w_e = N(e; mean, std) / sum_e' N(e'; mean, std), and the model ends with their weighted sum
(the code aggregates the whole state dict, whose frozen entries the weights, summing to one, leave as they are).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...backbones.text import encode_token_ids
from ...data.benchmarks.templates import IMAGENET_TEMPLATES
from ..step import StepOutput, TrainingPlan
from .base import Part, PartConfig, require_range

# PromptSRC's trainers/imagenet_templates.py IMAGENET_TEMPLATES: the first 60 of CLIP's 80 ImageNet templates,
# with "a photo of a {}." (CLIP's 40th) moved to the front
PROMPTSRC_TEMPLATES: tuple[str, ...] = (IMAGENET_TEMPLATES[39],) + IMAGENET_TEMPLATES[:39] + IMAGENET_TEMPLATES[40:60]


@dataclass
class SelfConsistencyConfig(PartConfig):
    text_weight: float = 25.0  # TEXT_LOSS_WEIGHT
    image_weight: float = 10.0  # IMAGE_LOSS_WEIGHT
    logit_weight: float = 1.0  # the code's KL term has weight 1 (temperature 1)
    textual_diversity: bool = True  # frozen text targets from the 60 templates (False: the run's own templates)

    def check(self) -> None:
        for option in ("text_weight", "image_weight", "logit_weight"):
            require_range(self, option, 0)


class SelfConsistency(Part):
    """The frozen text targets are encoded when the part attaches and again at the start of training after the
    classes changed (never inside a step); the frozen image features come with each step (``needs_frozen_image``:
    the model encodes the batch's images with every part off, as the code runs its frozen image encoder)."""

    name = "self_consistency"
    config_class = SelfConsistencyConfig
    needs_frozen_image = True

    def attach(self, model) -> None:
        self._stale = False
        self._refresh_targets(model)

    @torch.no_grad()
    def _refresh_targets(self, model) -> None:
        self._target_classes = list(model.classnames)
        if not self.config.textual_diversity:
            self.register_buffer("text_targets", torch.empty(0), persistent=False)
            return
        templates = PROMPTSRC_TEMPLATES
        prompts = [t.format(c) for c in model.classnames for t in templates]  # class-major
        tokens = model.tokenizer(prompts).to(model.logit_scale.device)
        with model.frozen_view():
            raw = encode_token_ids(model.clip, tokens, model.text_chunk).float()
        mean = raw.view(len(model.classnames), len(templates), -1).mean(dim=1)
        self.register_buffer("text_targets", F.normalize(mean, dim=-1), persistent=False)

    def set_classes(self, model, classnames: list[str]) -> None:
        self._stale = list(classnames) != self._target_classes  # re-encoded at the next begin_training

    def begin_training(self, model, plan: TrainingPlan) -> None:
        if self._stale or list(model.classnames) != self._target_classes:
            self._refresh_targets(model)
            self._stale = False

    def targets(self, out: StepOutput) -> torch.Tensor:
        """The frozen class text features t0 [C, E] (normalised) of the step's classes."""
        if not self.config.textual_diversity:
            return out.zero_shot_text
        if self._stale or self.text_targets.shape[0] != out.logits.shape[-1]:
            raise RuntimeError(f"part {self.name!r}: the classes changed after its frozen text targets were "
                               f"encoded; training re-encodes them (Part.begin_training)")
        return self.text_targets

    def terms(self, out: StepOutput) -> dict[str, torch.Tensor]:
        """The three weighted terms (the image and logit terms only when the step has the frozen image features:
        a forward from the encoder's outputs alone, as cost counting runs it, has none)."""
        cfg = self.config
        target = self.targets(out).to(out.text.dtype)
        out_terms = {"text": cfg.text_weight * F.l1_loss(out.text, target.expand_as(out.text))}
        if out.frozen_image is not None:
            frozen = F.normalize(out.frozen_image.to(out.image.dtype), dim=-1)
            out_terms["image"] = cfg.image_weight * F.l1_loss(out.image, frozen)
            zero_shot = out.scale * frozen @ target.to(frozen.dtype).t()
            logits = out.logits.float()
            kl = F.kl_div(F.log_softmax(logits, dim=1), F.log_softmax(zero_shot.float(), dim=1), reduction="sum",
                          log_target=True)
            out_terms["logit"] = cfg.logit_weight * kl / logits.numel()
        return out_terms

    def loss(self, out: StepOutput) -> torch.Tensor | None:
        terms = list(self.terms(out).values())
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total


@dataclass
class PromptAggregationConfig(PartConfig):
    mean: float = 15.0  # GPA_MEAN, in epochs counted from 1 (base-to-new config)
    std: float = 1.0  # GPA_STD

    def check(self) -> None:
        require_range(self, "std", 0, low_open=True)


def gaussian_weights(epochs: int, mean: float, std: float) -> list[float]:
    """GPA's weight of each epoch 1 .. ``epochs``: the normal density at the epoch, normalised to sum to one."""
    density = [math.exp(-0.5 * ((e - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi)) for e in range(1, epochs + 1)]
    total = sum(density)
    if total == 0:  # every epoch far in the tails: the density underflows
        raise ValueError(f"GPA weights underflow: epochs 1..{epochs} lie too far from mean {mean} for std {std}")
    return [d / total for d in density]


class PromptAggregation(Part):
    """Holds no parameters: it aggregates those of the whole model (every part's trainable parameters, including
    backbone parameters trained in place), as the code aggregates its model's state."""

    name = "prompt_aggregation"
    config_class = PromptAggregationConfig

    def __init__(self, config=None):
        super().__init__(config)
        self.weights: list[float] = []
        self._sum: dict[str, torch.Tensor] = {}  # the running weighted sum, by parameter name
        self._epochs_seen: list[int] = []

    def begin_training(self, model, plan: TrainingPlan) -> None:
        self.weights = gaussian_weights(plan.epochs, self.config.mean, self.config.std)
        self._sum, self._epochs_seen = {}, []

    @torch.no_grad()
    def end_epoch(self, model, epoch: int, plan: TrainingPlan) -> None:
        w = self.weights[epoch]
        for name, param in model.trainable_parameters():
            value = param.detach().float() * w
            self._sum[name] = self._sum[name] + value if name in self._sum else value
        self._epochs_seen.append(epoch)

    @torch.no_grad()
    def end_training(self, model, plan: TrainingPlan) -> None:
        """Load the aggregate into the parameters: the weighted sum over every planned epoch (weights summing to
        one), as the code loads it after the last epoch; renormalised over the epochs that ran when the loop
        stopped before its plan's last epoch."""
        if not self._sum:
            return
        seen = sum(self.weights[e] for e in self._epochs_seen)
        scale = None if len(self._epochs_seen) == plan.epochs else 1.0 / seen
        for name, param in model.trainable_parameters():
            value = self._sum[name] if scale is None else self._sum[name] * scale
            param.copy_(value.to(param.dtype))
        self._sum = {}
