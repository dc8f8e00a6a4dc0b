"""Loss terms that keep the adapted model close to the frozen one.

Text-feature regulariser (KgCoOp, Yao et al., CVPR 2023; reused by CLIPFit): lambda * (1 - mean_c cos(t_c, t0_c))
between each class's adapted text feature t_c and the frozen model's hand-crafted one t0_c.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import Part, PartConfig, require_range


@dataclass
class TextRegulariserConfig(PartConfig):
    weight: float = 8.0

    def check(self) -> None:
        require_range(self, "weight", 0)


class TextRegulariser(Part):
    name = "text_regulariser"
    config_class = TextRegulariserConfig

    def loss(self, out) -> torch.Tensor | None:
        if self.config.weight == 0:
            return None
        text, target = out.text, out.zero_shot_text.to(out.text.dtype)
        cos = F.cosine_similarity(text, target.expand_as(text), dim=-1, eps=1e-7)
        return self.config.weight * (1.0 - cos.mean())
