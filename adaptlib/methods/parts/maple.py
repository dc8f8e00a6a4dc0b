"""MaPLe: multi-modal prompt learning (Khattak et al., CVPR 2023), as muzairkhattak/multimodal-prompt-learning
has it (trainers/maple.py ``MultiModalPromptLearner``, clip/model.py ``ResidualAttentionBlock_MaPLe``,
``VisionTransformer_MaPLe``; configs/trainers/MaPLe/vit_b16_c2_ep5_batch4_2ctx.yaml).

Text: deep text prompts in the first J blocks (the ``deep_text_prompt`` part: the first block's context is the
first ``n_ctx`` tokens of "a photo of a", the rest of the phrase fixed; blocks 1 .. J-1 get tokens from
N(0, 0.02) that replace the context positions). Vision: no prompts of its own; each block's visual prompts are
its text prompts through a coupling function, a linear layer from the text width to the image width (512 -> 768
on ViT-B/16): block 0's from the first block's context through ``couple``, block i's from the text tokens of block
i through ``couplings[i - 1]``. They are appended after the patch tokens before ``ln_pre`` and replace the previous
block's prompt outputs before the deeper blocks, as IVLP's and VPT's visual prompts are (``encoders.encode_image``);
the CLS token is pooled. As in the code, the deeper couplings start as copies of one initialised layer
(``_get_clones``), the first one is a layer of its own, and the couplings carry biases.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from ...backbones.family import OPENCLIP_VIT, TIMM_VIT, family_of, image_blocks, image_width, unsupported
from .deep_text_prompt import DeepTextPrompt, DeepTextPromptConfig


@dataclass
class MaPLeConfig(DeepTextPromptConfig):
    n_ctx: int = 2  # N_CTX: prompt tokens per prompted block, in both encoders
    init: str | None = "a photo of a"  # CTX_INIT
    depth: int = 9  # PROMPT_DEPTH: prompted blocks of both encoders (at most either encoder's blocks)
    init_std: float = 0.02


class MaPLePrompt(DeepTextPrompt):
    """Text prompts (a deep text prompt learner) and the vision prompts coupled to them: both a prompt learner
    and a visual prompt, so a model takes no other of either."""

    name = "maple_prompt"
    config_class = MaPLeConfig
    is_visual_prompt = True
    modifies_image_encoder = True

    def attach(self, model) -> None:
        family = family_of(model.clip)
        if family not in (OPENCLIP_VIT, TIMM_VIT):
            raise unsupported(self.name, model.clip, "its vision prompts are appended to a plain ViT's token "
                                                     "sequence; this image tower's blocks (EVA-02's rotary position "
                                                     "embedding, or no transformer) take no extra tokens")
        super().attach(model)
        text_width, vision_width = self.ctx.shape[-1], image_width(model.clip)
        self.couple = nn.Linear(text_width, vision_width)  # the code's `proj`: the shallow context to vision
        one = nn.Linear(text_width, vision_width)  # the code's `compound_prompt_projections`: clones of one layer
        self.couplings = nn.ModuleList(copy.deepcopy(one) for _ in range(self.depth - 1))

    def max_depth(self, model) -> int:
        """Both encoders' blocks: the prompts of a block go to both."""
        return min(super().max_depth(model), len(image_blocks(model.clip)))

    def visual_tokens(self, layer: int) -> torch.Tensor | None:
        if layer == 0:
            return self.couple(self.ctx)
        if layer <= len(self.couplings):
            return self.couplings[layer - 1](self.deep[layer - 1])
        return None
