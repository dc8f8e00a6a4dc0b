"""Forward passes of the two CLIP towers that the parts can hook into.

The image pass mirrors open_clip's ``VisionTransformer.forward`` (embeds -> blocks -> pool -> proj) but lets a
visual-prompt part append tokens after the patch tokens before any block (shallow) or replace them before every
block (deep). The text pass runs prompt token embeddings of any length up to the context, and encodes many
classes in chunks under activation checkpointing, so a 1000-class prompt step keeps only one chunk's
activations alive.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.checkpoint import checkpoint

from ..backbones.text import encode_text_embeddings


def encode_image(clip, images: torch.Tensor, visual_tokens: Callable[[int], torch.Tensor | None] | None = None
                 ) -> torch.Tensor:
    """Unnormalised image features [B, E]; ``visual_tokens(layer)`` gives prompt tokens [n, W] or None.

    As in the CLIP prompt-learning code (MaPLe/IVLP, APEX): layer-0 prompts are appended after the patch tokens
    before ``ln_pre`` (they get no positional embedding); a deep prompt for block i >= 1 replaces the previous
    prompt outputs before that block. Without prompts this is exactly ``clip.encode_image``.
    """
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
    for i, block in enumerate(visual.transformer.resblocks):
        deep = prompts(i) if i > 0 else None
        if deep is not None:
            x = torch.cat([x[:, :n_base], deep], dim=1)
        x = block(x)
    x = x[:, :n_base]
    pooled, _ = visual._pool(x)
    if visual.proj is not None:
        pooled = pooled @ visual.proj
    return pooled


def encode_prompts(clip, embeddings: torch.Tensor, eot: torch.Tensor, chunk: int = 128) -> torch.Tensor:
    """Text features [N, E] of prompt embeddings [N, L, W], ``chunk`` prompts at a time.

    With gradients on and more prompts than ``chunk``, each chunk runs under activation checkpointing: its
    activations are recomputed in backward instead of kept, so memory grows with the chunk, not the class count.
    """
    if embeddings.shape[0] <= chunk:
        return encode_text_embeddings(clip, embeddings, eot)
    outs = []
    for start in range(0, embeddings.shape[0], chunk):
        emb, idx = embeddings[start:start + chunk], eot[start:start + chunk]
        if torch.is_grad_enabled():
            outs.append(checkpoint(encode_text_embeddings, clip, emb, idx, use_reentrant=False))
        else:
            outs.append(encode_text_embeddings(clip, emb, idx))
    return torch.cat(outs)


def encode_token_ids(clip, tokens: torch.Tensor, chunk: int = 128) -> torch.Tensor:
    """Text features [N, E] of token ids [N, context], trimmed to the longest prompt and chunked."""
    eot = tokens.argmax(dim=-1)
    length = int(eot.max()) + 1
    emb = clip.token_embedding(tokens[:, :length])
    return encode_prompts(clip, emb, eot, chunk)
