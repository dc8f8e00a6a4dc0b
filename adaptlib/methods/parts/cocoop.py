"""CoCoOp's conditional context (Zhou et al., CVPR 2022): a meta-net turns each image's normalised feature into a
bias added to every context vector, so each image gets its own class prompts.

Meta-net: Linear(E, E // 16) -> ReLU -> Linear(E // 16, W). Defaults: 4 context tokens from "a photo of a".
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from ...backbones.family import embed_dim
from .base import require_range
from .coop import CoOpConfig, CoOpPrompt


@dataclass
class CoCoOpConfig(CoOpConfig):
    n_ctx: int = 4
    init: str | None = "a photo of a"
    meta_reduction: int = 16

    def check(self) -> None:
        super().check()
        require_range(self, "meta_reduction", 1)


class ConditionalPrompt(CoOpPrompt):
    name = "cocoop_prompt"
    config_class = CoCoOpConfig

    def attach(self, model) -> None:
        if self.config.class_specific or self.config.class_token_position != "end":
            raise ValueError("CoCoOp's conditional context is unified, with the class token at the end")
        super().attach(model)
        vis_dim = embed_dim(model.clip)
        width = self.ctx.shape[-1]
        hidden = vis_dim // self.config.meta_reduction
        self.meta_net = nn.Sequential(OrderedDict([
            ("linear1", nn.Linear(vis_dim, hidden)),
            ("relu", nn.ReLU(inplace=True)),
            ("linear2", nn.Linear(hidden, width)),
        ]))

    def prompt_embeddings(self, model, image_features):
        if image_features is None:
            raise ValueError("CoCoOp's prompts depend on the image: pass image features")
        n_classes = self.token_prefix.shape[0]
        bias = self.meta_net(image_features.to(self.ctx.dtype)).unsqueeze(1)  # [B, 1, W]
        shifted = self.ctx.unsqueeze(0) + bias  # [B, M, W]
        prompts = [self.assemble(ctx_i.unsqueeze(0).expand(n_classes, -1, -1)) for ctx_i in shifted]
        return torch.stack(prompts), self.eot_index
