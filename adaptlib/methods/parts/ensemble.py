"""APEX's difficulty-adaptive ensemble with the frozen model (Yang et al., EMNLP 2024), for any method.

With frozen text features t0 of the training classes b and of each evaluated class c:
  d_nn(c) = max(0, 1 - max_b cos(t0_b, t0_c)),   dbar(c) = 1 - mean_b cos(t0_b, t0_c)
  alpha_c = exp(-beta * dbar(c) * 1[d_nn(c) > eps])            (beta = 4, eps = 0.05)
Text: alpha_c * adapted_c + (1 - alpha_c) * reference_c, where the reference is the class feature without the
text-side feature adapters (APEX: the prompted feature without its text adapter). Image: abar * adapted +
(1 - abar) * frozen, abar = mean_c alpha_c. Both mixes act on unnormalised features, as in APEX's code. APEX's
released code takes its "frozen" image features from a second CLIP that carries untrained random visual prompt
tokens (a side effect of building it with the same prompt design); here the frozen model is plain CLIP. A class seen in training has d_nn = 0 and so alpha = 1: on the
training classes the adapted model is used unchanged. ``alpha`` may also be fixed to one number for every class,
which is the fixed-alpha ensemble APEX compares against.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...backbones.text import prompt_features
from ...utils.typed import OptionTypeError
from .base import Part, PartConfig, require_range


@dataclass
class EnsembleConfig(PartConfig):
    alpha: str | float = "adaptive"  # "adaptive" or a fixed weight of the adapted model in [0, 1]
    beta: float = 4.0
    epsilon: float = 0.05
    template: str = "a photo of a {}."  # the frozen class features t0 that measure class distance

    def check(self) -> None:
        if self.alpha != "adaptive":
            try:
                alpha = float(self.alpha)
            except (TypeError, ValueError):
                alpha = None
            if alpha is None or not 0.0 <= alpha <= 1.0:
                raise OptionTypeError(f"option 'alpha' = {self.alpha!r} is out of range: expected 'adaptive' or "
                                      f"a value in [0, 1]")
        require_range(self, "beta", 0)
        require_range(self, "epsilon", 0)
        if "{}" not in self.template:
            raise OptionTypeError(f"option 'template' = {self.template!r} needs a '{{}}' where the class name goes")


class AdaptiveEnsemble(Part):
    name = "adaptive_ensemble"
    config_class = EnsembleConfig
    inference_options = ("alpha",)  # the ensemble weight acts only at inference: sweeping it needs no retraining

    def attach(self, model) -> None:
        if self.config.alpha != "adaptive" and not 0.0 <= float(self.config.alpha) <= 1.0:
            raise ValueError(f"adaptive_ensemble: alpha must be 'adaptive' or a number in [0, 1], "
                             f"got {self.config.alpha!r}")
        self.register_buffer("train_text", self._frozen_text(model, model.classnames), persistent=False)
        self.register_buffer("class_alpha", self.alphas_for(self.train_text), persistent=False)

    @torch.no_grad()
    def _frozen_text(self, model, classnames: list[str]) -> torch.Tensor:
        tokens = model.tokenizer([self.config.template.format(c) for c in classnames]).to(model.logit_scale.device)
        with model.frozen_view():
            return prompt_features(model.clip, tokens)

    def alphas_for(self, text0: torch.Tensor) -> torch.Tensor:
        """alpha_c for classes with frozen features ``text0`` [C, E], relative to the training classes."""
        if self.config.alpha != "adaptive":
            return torch.full((text0.shape[0],), float(self.config.alpha), device=text0.device)
        cos = text0 @ self.train_text.t()  # [C, B]
        d_nn = (1.0 - cos.max(dim=1).values).clamp_min(0.0)
        d_bar = 1.0 - cos.mean(dim=1)
        gate = (d_nn > self.config.epsilon).float()
        return torch.exp(-self.config.beta * d_bar * gate)

    def set_classes(self, model, classnames: list[str]) -> None:
        self.class_alpha = self.alphas_for(self._frozen_text(model, classnames))

    @torch.no_grad()
    def ensemble(self, model, out, frozen_image):
        """Mix before normalising, as APEX's code does: text per class, image with the mean alpha."""
        if frozen_image is None:
            raise ValueError("the adaptive ensemble needs the frozen model's image features of the batch")
        alpha = self.class_alpha.to(out.image.dtype)
        a = alpha[:, None]
        text = F.normalize(a * out.text_adapted + (1 - a) * out.text_raw.to(out.text_adapted.dtype), dim=-1)
        a_bar = alpha.mean()
        image = F.normalize(a_bar * out.image_adapted + (1 - a_bar) * frozen_image.to(out.image_adapted.dtype),
                            dim=-1)
        if text.dim() == 3:
            return out.scale * torch.einsum("be,bce->bc", image, text)
        return out.scale * image @ text.t()
