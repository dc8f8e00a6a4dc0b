"""Feature adapters: small networks on the encoders' output features.

CLIP-Adapter (Gao et al., IJCV 2023): x' = r * A(x) + (1 - r) * x on image features, with the bottleneck
A = Linear(E, E/4, no bias) -> ReLU -> Linear(E/4, E, no bias) -> ReLU. Ratio r = 0.2 for generic datasets,
about 0.6 for fine-grained ones.
Text adapter (APEX): t' = t W + b with W initialised to the identity and b to zero, so training starts at CLIP.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...backbones.family import embed_dim
from .base import Part, PartConfig, require_range


@dataclass
class ClipAdapterConfig(PartConfig):
    ratio: float = 0.2
    reduction: int = 4

    def check(self) -> None:
        require_range(self, "ratio", 0, 1)
        require_range(self, "reduction", 1)


class ClipAdapter(Part):
    name = "clip_adapter"
    config_class = ClipAdapterConfig

    def attach(self, model) -> None:
        dim = embed_dim(model.clip)
        hidden = dim // self.config.reduction
        self.adapter = nn.Sequential(nn.Linear(dim, hidden, bias=False), nn.ReLU(inplace=True),
                                     nn.Linear(hidden, dim, bias=False), nn.ReLU(inplace=True))

    def image_features(self, features: torch.Tensor) -> torch.Tensor:
        r = self.config.ratio
        return r * self.adapter(features.to(self.adapter[0].weight.dtype)) + (1 - r) * features


@dataclass
class TextAdapterConfig(PartConfig):
    pass


class TextAdapter(Part):
    name = "text_adapter"
    config_class = TextAdapterConfig

    def attach(self, model) -> None:
        dim = embed_dim(model.clip)
        self.linear = nn.Linear(dim, dim)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(dim))
            self.linear.bias.zero_()

    def text_features(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features.to(self.linear.weight.dtype))
