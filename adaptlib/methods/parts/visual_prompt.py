"""Visual prompt tuning (VPT, Jia et al., ECCV 2022) in CLIP's image transformer, as the CLIP prompt-learning
code does it (MaPLe/IVLP, APEX): learnable tokens appended after the patch tokens, before ``ln_pre`` and without
positional embedding; shallow prompts are inserted once and carried through, deep prompts replace the previous
layer's prompt outputs before every block. The CLS token is pooled as usual, so prompts act only through
attention. Initialised N(0, 0.02) as in that code (the original VPT on plain ViTs puts the tokens right after CLS
and initialises them xavier-uniform).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...backbones.family import OPENCLIP_VIT, TIMM_VIT, family_of, image_blocks, image_width, unsupported
from .base import Part, PartConfig, require_range


@dataclass
class VisualPromptConfig(PartConfig):
    n_tokens: int = 8
    deep: bool = True
    layers: int | None = None  # deep prompts in the first `layers` blocks (default: all; at most the tower's)
    init_std: float = 0.02

    def check(self) -> None:
        require_range(self, "n_tokens", 1)
        require_range(self, "layers", 1, optional=True)
        require_range(self, "init_std", 0)


class VisualPrompt(Part):
    name = "visual_prompt"
    config_class = VisualPromptConfig
    is_visual_prompt = True
    modifies_image_encoder = True

    def attach(self, model) -> None:
        family = family_of(model.clip)
        if family not in (OPENCLIP_VIT, TIMM_VIT):
            raise unsupported(self.name, model.clip, "visual prompts are appended to a plain ViT's token sequence; "
                                                     "this image tower's blocks (EVA-02's rotary position "
                                                     "embedding, or no transformer) take no extra tokens")
        width = image_width(model.clip)
        n_layers = len(image_blocks(model.clip))
        # a depth set for a deeper tower (PromptSRC's 9 of ViT-B/16's 12) prompts every block of a shallower one
        depth = min(self.config.layers or n_layers, n_layers) if self.config.deep else 1
        self.tokens = nn.Parameter(torch.empty(depth, self.config.n_tokens, width).normal_(std=self.config.init_std))

    def visual_tokens(self, layer: int) -> torch.Tensor | None:
        if layer >= self.tokens.shape[0]:
            return None
        return self.tokens[layer]
