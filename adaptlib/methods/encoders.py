"""The image forward pass that visual-prompt parts hook into (the text side is ``backbones.text``).

It mirrors open_clip's ``VisionTransformer.forward`` (embeds -> blocks -> pool -> proj), and timm's
``VisionTransformer.forward_features``/``forward_head`` for a timm image tower (SigLIP), but lets a visual-prompt
part append tokens after the patch tokens before any block (shallow) or replace them before every block (deep).
Without prompts it is the model's own ``encode_image``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..backbones.blocks import computes_at_one_position, output_at
from ..backbones.family import OPENCLIP_VIT, TIMM_VIT, family_of, unsupported


def pooled_supported(clip) -> bool:
    """Whether ``encode_image(..., project=False)`` gives the features before the tower's last projection: an
    open_clip ViT (``pooled @ visual.proj``); a timm or ResNet tower applies its projection inside its head."""
    return family_of(clip) == OPENCLIP_VIT and isinstance(getattr(clip.visual, "proj", None), torch.Tensor)


def project_pooled(clip, pooled: torch.Tensor) -> torch.Tensor:
    """The tower's last projection applied to pooled features (``pooled_supported`` towers): its output."""
    return pooled @ clip.visual.proj


def encode_image(clip, images: torch.Tensor, visual_tokens: Callable[[int], torch.Tensor | None] | None = None,
                 project: bool = True) -> torch.Tensor:
    """Unnormalised image features [B, E]; ``visual_tokens(layer)`` gives prompt tokens [n, W] or None. With
    ``project=False`` (``pooled_supported`` towers only) the pooled features [B, W] before the last projection.

    As in the CLIP prompt-learning code (MaPLe/IVLP, APEX): layer-0 prompts are appended after the patch tokens
    before ``ln_pre`` (they get no positional embedding); a deep prompt for block i >= 1 replaces the previous
    prompt outputs before that block. Without prompts this is ``clip.encode_image`` up to float rounding: the last
    block computes only the CLS token the tower pools at (``backbones.blocks``).
    """
    family = family_of(clip)
    if not project and not pooled_supported(clip):
        raise ValueError(f"pooled image features (before the last projection) need an open_clip ViT image tower, "
                         f"which applies its projection last; this backbone is a {family_of(clip)}")
    if family != OPENCLIP_VIT:
        if visual_tokens is None:
            return clip.encode_image(images)
        if family == TIMM_VIT:
            return _encode_timm_vit(clip, images, visual_tokens)
        raise unsupported("visual_prompt", clip, "visual prompts are inserted into a plain ViT's token sequence")
    visual = clip.visual
    x = visual.conv1(images)
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    cls = visual.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
    x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
    x = visual.patch_dropout(x)
    n_base = x.shape[1]

    def prompts(layer: int) -> torch.Tensor | None:
        tokens = visual_tokens(layer) if visual_tokens is not None else None
        return None if tokens is None else tokens.to(x.dtype).unsqueeze(0).expand(x.shape[0], -1, -1)

    first = prompts(0)
    if first is not None:
        x = torch.cat([x, first], dim=1)
    x = visual.ln_pre(x)
    blocks = visual.transformer.resblocks
    # pooled at the CLS token: the last block computes that token alone (``blocks.output_at``)
    at_cls = visual.attn_pool is None and visual.pool_type == "tok"
    for i, block in enumerate(blocks):
        deep = prompts(i) if i > 0 else None
        if deep is not None:
            x = torch.cat([x[:, :n_base], deep], dim=1)
        if at_cls and i == len(blocks) - 1 and computes_at_one_position(block):
            x = output_at(block, x, torch.zeros(x.shape[0], dtype=torch.long, device=x.device))
        else:
            x = block(x)
    x = x[:, :n_base]
    pooled, _ = visual._pool(x)
    if project and visual.proj is not None:
        pooled = pooled @ visual.proj
    return pooled


def _encode_timm_vit(clip, images: torch.Tensor, visual_tokens: Callable[[int], torch.Tensor | None]) -> torch.Tensor:
    """A timm ViT tower (SigLIP) with prompts: embed, append after the patch tokens before the first block (or
    replace before each deep block), drop them after the last block, then timm's own pooling head and open_clip's
    projection head. Prompts take no positional embedding, as in the open_clip path."""
    visual = clip.visual
    trunk = visual.trunk
    x = trunk.patch_embed(images)
    x = trunk._pos_embed(x)
    x = trunk.patch_drop(x)
    x = trunk.norm_pre(x)
    n_base = x.shape[1]

    def prompts(layer: int) -> torch.Tensor | None:
        tokens = visual_tokens(layer)
        return None if tokens is None else tokens.to(x.dtype).unsqueeze(0).expand(x.shape[0], -1, -1)

    first = prompts(0)
    if first is not None:
        x = torch.cat([x, first], dim=1)
    for i, block in enumerate(trunk.blocks):
        deep = prompts(i) if i > 0 else None
        if deep is not None:
            x = torch.cat([x[:, :n_base], deep], dim=1)
        x = block(x)
    x = trunk.norm(x[:, :n_base])
    return visual.head(trunk.forward_head(x))
