"""Backbone families: where the parts find a model's pieces, so that no part knows a model's layout.

open_clip builds two kinds of CLIP. ``CLIP`` has open_clip's own ViT image tower (``visual.transformer.resblocks``,
``conv1``, ``ln_pre``) and a causal text tower whose pieces hang on the model itself (OpenAI, LAION, MetaCLIP and
DFN weights). ``CustomTextCLIP`` keeps its text tower under ``text.`` (SigLIP and SigLIP 2: bidirectional, pooled
at the last position, a projection with a bias, a sigmoid logit with a learned bias; EVA-02: causal, pooled at the
end-of-text token) and may take its image tower from timm (``visual.trunk``: a timm ``VisionTransformer`` for
SigLIP, an ``Eva`` with rotary position embeddings for EVA-02). :func:`family_of` names the family and the helpers
below give each part what it needs; a part that cannot run on a family raises :class:`UnsupportedBackboneError`
naming the part, the family and why.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

OPENCLIP_VIT = "open_clip ViT"
TIMM_VIT = "timm ViT"
TIMM_EVA = "timm EVA"
OPENCLIP_RESNET = "open_clip ResNet"
FAMILIES = (OPENCLIP_VIT, TIMM_VIT, TIMM_EVA, OPENCLIP_RESNET)


class UnsupportedBackboneError(ValueError):
    """A part asked for a piece of a backbone family that the family does not have."""


def unsupported(part: str, clip: nn.Module, why: str) -> UnsupportedBackboneError:
    """The error a part raises when it cannot run on ``clip``'s family."""
    return UnsupportedBackboneError(f"part {part!r} does not run on the {family_of(clip)} backbone family: {why}")


def family_of(clip: nn.Module) -> str:
    """The family of an open_clip model, from its image tower's type."""
    visual = clip.visual
    trunk = getattr(visual, "trunk", None)
    if trunk is not None:
        kind = type(trunk).__name__
        if kind == "Eva":
            return TIMM_EVA
        if kind == "VisionTransformer":
            return TIMM_VIT
        return f"timm {kind}"
    if hasattr(visual, "transformer") and hasattr(visual, "conv1"):
        return OPENCLIP_VIT
    if type(visual).__name__ == "ModifiedResNet":
        return OPENCLIP_RESNET
    return type(visual).__name__


# ---------------------------------------------------------------------------------------------------- text tower

@dataclass(frozen=True)
class TextTower:
    """The text encoder's pieces: ``module`` holds ``token_embedding``, ``positional_embedding``, ``transformer``,
    ``ln_final``, ``text_projection`` and ``attn_mask``; ``prefix`` is its parameters' name prefix in the model."""

    module: nn.Module
    prefix: str
    causal: bool
    pool: str  # argmax | last | first | eos
    eos_id: int | None = None

    @property
    def width(self) -> int:
        return int(self.module.token_embedding.weight.shape[1])

    @property
    def context_length(self) -> int:
        return int(self.module.positional_embedding.shape[0])

    def pool_positions(self, tokens: torch.Tensor) -> torch.Tensor:
        """The position each prompt of ``tokens`` [N, L] is pooled at (its feature is read there)."""
        n, length = tokens.shape
        if self.pool == "argmax":  # CLIP's end-of-text token has the highest id
            return tokens.argmax(dim=-1)
        if self.pool == "last":
            return torch.full((n,), length - 1, dtype=torch.long, device=tokens.device)
        if self.pool == "first":
            return torch.zeros(n, dtype=torch.long, device=tokens.device)
        if self.pool == "eos":
            return (tokens == self.eos_id).int().argmax(dim=-1)
        raise ValueError(f"text pooling {self.pool!r} is not supported (argmax, last, first, eos)")

    def trimmable(self) -> bool:
        """Can prompts run at the length they need? Yes with a causal mask and pooling at the end-of-text token
        (positions after it never reach it); a bidirectional tower must see the whole padded context."""
        return self.causal and self.pool in ("argmax", "eos")

    def project(self, x: torch.Tensor) -> torch.Tensor:
        proj = self.module.text_projection
        if proj is None:
            return x
        return proj(x) if isinstance(proj, nn.Linear) else x @ proj


def text_tower(clip: nn.Module) -> TextTower:
    """The text tower of a ``CLIP`` (pieces on the model) or a ``CustomTextCLIP`` (pieces under ``text.``)."""
    if hasattr(clip, "text") and hasattr(clip.text, "transformer"):
        text = clip.text
        if getattr(text, "cls_emb", None) is not None:
            raise UnsupportedBackboneError("text towers with an appended class token (CoCa) are not supported")
        if getattr(text, "use_pad_mask", False):
            raise UnsupportedBackboneError("text towers with a padding mask are not supported")
        return TextTower(text, "text.", text.attn_mask is not None, str(getattr(text, "pool_type", "argmax")),
                         getattr(text, "eos_id", None))
    return TextTower(clip, "", getattr(clip, "attn_mask", None) is not None,
                     str(getattr(clip, "text_pool_type", "argmax")), None)


def text_tower_name(clip: nn.Module, full_name: str) -> str | None:
    """A parameter or module name of ``clip`` relative to its text tower (None: not in the text tower)."""
    if full_name.startswith("visual.") or full_name in ("logit_scale", "logit_bias"):
        return None
    prefix = text_tower(clip).prefix
    return full_name[len(prefix):] if full_name.startswith(prefix) else None


# --------------------------------------------------------------------------------------------------- image tower

def embed_dim(clip: nn.Module) -> int:
    """The joint embedding's size (the image and text features')."""
    out = getattr(clip.visual, "output_dim", None)
    if out is not None:
        return int(out)
    tower = text_tower(clip)
    proj = tower.module.text_projection
    if isinstance(proj, nn.Linear):
        return int(proj.out_features)
    if proj is not None:
        return int(proj.shape[1])
    return tower.width


def image_blocks(clip: nn.Module) -> nn.ModuleList:
    """The image transformer's blocks, in order."""
    visual = clip.visual
    trunk = getattr(visual, "trunk", None)
    if trunk is not None and hasattr(trunk, "blocks"):
        return trunk.blocks
    if hasattr(visual, "transformer"):
        return visual.transformer.resblocks
    raise UnsupportedBackboneError(f"the {family_of(clip)} image tower has no transformer blocks")


def image_width(clip: nn.Module) -> int:
    """The width of the image transformer's tokens."""
    visual = clip.visual
    trunk = getattr(visual, "trunk", None)
    if trunk is not None:
        return int(trunk.embed_dim)
    return int(visual.conv1.out_channels)


def image_projection(clip: nn.Module) -> nn.Parameter | None:
    """The last linear map of the image tower into the joint space, the matrix ProLIP tunes: an open_clip ViT's
    ``visual.proj`` [W, E] (features = pooled token @ proj), a timm tower's projection head ``visual.head.proj``
    or a trunk head into the joint space (EVA-02: ``visual.trunk.head``) and a ResNet's attention-pool output
    projection ``visual.attnpool.c_proj``, each a Linear whose weight [E, W] is returned (its bias, if any, is
    not). None when the tower has none: SigLIP's attention-pool head is its output, with no projection after it."""
    visual = clip.visual
    proj = getattr(visual, "proj", None)
    if isinstance(proj, nn.Parameter):
        return proj
    head = getattr(visual, "head", None)
    if isinstance(getattr(head, "proj", None), nn.Linear):
        return head.proj.weight
    trunk_head = getattr(getattr(visual, "trunk", None), "head", None)
    if isinstance(trunk_head, nn.Linear) and trunk_head.out_features == embed_dim(clip):
        return trunk_head.weight
    pool = getattr(visual, "attnpool", None)
    if isinstance(getattr(pool, "c_proj", None), nn.Linear):
        return pool.c_proj.weight
    return None


def logit_bias(clip: nn.Module) -> torch.Tensor | None:
    """SigLIP's learned logit bias (its logits are sigmoid scores); None for softmax CLIPs."""
    bias = getattr(clip, "logit_bias", None)
    return bias if isinstance(bias, torch.Tensor) else None
