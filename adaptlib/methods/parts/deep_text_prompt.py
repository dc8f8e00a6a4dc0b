"""Deep text prompts (IVLP, the independent vision-language prompting baseline of MaPLe; the text side of PromptSRC):
CoOp's context in the token embeddings, plus new learnable tokens that replace the context positions before each of
the next text blocks (Khattak et al., CVPR 2023 and ICCV 2023; muzairkhattak/multimodal-prompt-learning and
muzairkhattak/PromptSRC: clip/model.py ``ResidualAttentionBlock_IVLP``, trainers/independentVL.py, promptsrc.py).

As in that code: with an initial phrase ("a photo of a") the first ``n_ctx`` of its tokens are the learnable
context and the rest of the phrase stays as fixed words ("[a photo] of a {class}." for n_ctx = 2); without one the
context is ``n_ctx`` vectors drawn from N(0, 0.02). Blocks 1 .. depth-1 each get their own ``n_ctx`` tokens from
N(0, 0.02), which replace the previous block's outputs at the context positions (right after the start token);
the blocks after ``depth`` carry the last ones through. The class token sits at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...backbones.family import UnsupportedBackboneError, text_tower
from .base import Part, PartConfig, require_range
from .coop import CoOpConfig, CoOpPrompt


@dataclass
class DeepTextPromptConfig(PartConfig):
    n_ctx: int = 4  # N_CTX_TEXT: learnable context tokens in each prompted block
    init: str | None = "a photo of a"  # CTX_INIT: its first n_ctx tokens initialise the context
    depth: int = 9  # PROMPT_DEPTH_TEXT: blocks 0 .. depth-1 get prompts (1: the shallow context only; at most
    #                 the tower's blocks: a shallower tower gets prompts in every block)
    init_std: float = 0.02

    def check(self) -> None:
        require_range(self, "n_ctx", 1)
        require_range(self, "depth", 1)
        require_range(self, "init_std", 0)


class DeepTextPrompt(Part):
    """The context of the first block is a CoOp prompt learner's (held inside, so the class prompts, their
    buffers and new classes work as CoOp's do); the deeper blocks' tokens are ``deep``, one [n_ctx, W] parameter
    per block 1 .. depth-1 (as the code's ParameterList)."""

    name = "deep_text_prompt"
    config_class = DeepTextPromptConfig
    is_prompt_learner = True

    def attach(self, model) -> None:
        cfg = self.config
        self.prompt = CoOpPrompt(self.coop_config())
        try:
            self.prompt.attach(model)
        except UnsupportedBackboneError:
            raise
        except ValueError as err:  # e.g. more context tokens than the initial phrase has
            raise ValueError(f"part {self.name!r} (n_ctx={cfg.n_ctx}, init={cfg.init!r}): {err}") from None
        self.depth = min(cfg.depth, self.max_depth(model))
        width = self.prompt.ctx.shape[-1]
        self.deep = nn.ParameterList(nn.Parameter(torch.empty(cfg.n_ctx, width).normal_(std=cfg.init_std))
                                     for _ in range(self.depth - 1))

    def max_depth(self, model) -> int:
        """The most blocks that can take prompts: the text transformer's."""
        return len(text_tower(model.clip).module.transformer.resblocks)

    def coop_config(self) -> CoOpConfig:
        """The first block's prompt as CoOp's: the code takes the first ``n_ctx`` tokens of the phrase as context
        and keeps the whole phrase in the prompt, which is CoOp's ``learnable_tokens``."""
        cfg = self.config
        if cfg.init:
            return CoOpConfig(init=cfg.init, learnable_tokens=cfg.n_ctx, init_std=cfg.init_std)
        return CoOpConfig(n_ctx=cfg.n_ctx, init_std=cfg.init_std)

    @property
    def ctx(self) -> torch.Tensor:
        """The first block's learnable context [n_ctx, W]."""
        return self.prompt.ctx

    def set_classes(self, model, classnames: list[str]) -> None:
        self.prompt.set_classes(model, classnames)

    def prompt_embeddings(self, model, image_features):
        return self.prompt.prompt_embeddings(model, image_features)

    def shared_prompt_positions(self) -> int:
        return self.prompt.shared_prompt_positions()

    def text_tokens(self, layer: int) -> torch.Tensor | None:
        return self.deep[layer - 1] if 1 <= layer <= len(self.deep) else None
