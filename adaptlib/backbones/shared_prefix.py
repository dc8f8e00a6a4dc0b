"""Class prompts that begin alike, encoded with their common beginning computed once instead of once per class.

A prompt learner's prompts share their leading positions: "[SOS] [ctx_1 .. ctx_M]" is the same for every class
when the context is one for all (CoOp, KgCoOp, MaPLe, IVLP, APEX; CoCoOp within one image's prompt set). Under a
causal mask a position depends only on the positions before it, so in every block the shared positions have the
same values for every class. The prompts of a set are therefore packed into one sequence, the shared positions
once and then each class's own positions (class name, '.', end-of-text), under a mask that lets each class's
positions see the shared ones and their own earlier ones only: every block runs as it is (its own forward, one
call per block), on ``p + C * s`` positions instead of ``C * (p + s)``: the same features up to float rounding
(CoOp's 16 context tokens are most of its prompts). Causal towers of plain open_clip blocks only
(``blocks.computes_at_one_position``): a part that wraps a block's attention (LoRA, with its dropout drawn per
position) gets the prompts whole.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn


PACKED_POSITIONS = 256  # class positions packed after one shared prefix at most: beyond, the attention over a
#                        packing (quadratic in its length, most of it masked) outgrows what sharing saves


@lru_cache(maxsize=64)
def _packed_mask(p: int, s: int, n: int) -> torch.Tensor:
    """Additive mask [p + n * s, p + n * s] of a packed sequence: the shared positions causal among themselves;
    each of the n suffixes sees the shared positions and its own positions up to itself."""
    total = p + n * s
    position = torch.arange(total)
    suffix = torch.where(position < p, -1, (position - p) // s)  # which suffix a position is in (-1: shared)
    allowed = (position[None, :] <= position[:, None]) & ((suffix[None, :] == -1) | (suffix[None, :] == suffix[:, None]))
    return torch.zeros(total, total).masked_fill_(~allowed, float("-inf"))


def pack(prefix: torch.Tensor, suffix: torch.Tensor) -> torch.Tensor:
    """[G, p, W] and [G, n, s, W] -> [G, p + n * s, W]: each set's shared positions, then its n suffixes."""
    return torch.cat([prefix, suffix.flatten(1, 2)], dim=1)


def packed_mask(p: int, s: int, n: int, like: torch.Tensor) -> torch.Tensor:
    return _packed_mask(p, s, n).to(device=like.device, dtype=like.dtype)


def pooled_rows(p: int, s: int, pooled: torch.Tensor) -> torch.Tensor:
    """Where each suffix's pooled position (``pooled`` [n], a position in the whole prompt) is in the packing."""
    return p + s * torch.arange(len(pooled), device=pooled.device) + (pooled - p)


def outputs_at_rows(block: nn.Module, x: torch.Tensor, rows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``block(x, attn_mask=mask)`` at positions ``rows`` [R] of every sequence of ``x`` [G, T, W]: [G, R, W]. The
    attention runs with those rows as its only queries (``blocks.output_at`` for several rows of a sequence)."""
    h = block.ln_1(x)
    attended = block.attn(h[:, rows], h, h, need_weights=False, attn_mask=mask[rows])[0]
    y = x[:, rows] + block.ls_1(attended)
    return y + block.ls_2(block.mlp(block.ln_2(y)))
