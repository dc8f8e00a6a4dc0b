"""Class prompts that begin alike, encoded with their common beginning computed once instead of once per class.

A prompt learner's prompts share their leading positions: "[SOS] [ctx_1 .. ctx_M]" is the same for every class
when the context is one for all (CoOp, KgCoOp, MaPLe, IVLP, APEX; CoCoOp within one image's prompt set). Under a
causal mask a position depends only on the positions before it, so in every block the shared positions have the
same values for every class. The prompts of a set are therefore packed into one sequence, the shared positions
once and then each class's own positions (class name, '.', end-of-text), under a mask that lets each class's
positions see the shared ones and their own earlier ones only: every block runs as it is (its own forward, one
call per block), on ``p + C * s`` positions instead of ``C * (p + s)``: the same features up to float rounding
(CoOp's 16 context tokens are most of its prompts); the last block runs at the pooled rows only
(``blocks.outputs_at_rows``). Causal towers of plain open_clip blocks only (``blocks.computes_at_one_position``):
a part that wraps a block's attention (LoRA, with its dropout drawn per position) gets the prompts whole.
"""

from __future__ import annotations

from functools import lru_cache

import torch


PACKED_POSITIONS = 256  # class positions packed after one shared prefix at most: beyond, the attention over a
#                        packing (quadratic in its length, most of it masked) outgrows what sharing saves


@lru_cache(maxsize=64)
def _packed_mask(p: int, s: int, n: int) -> torch.Tensor:
    """Additive mask [p + n * s, p + n * s] of a packed sequence: the shared positions causal among themselves;
    each of the n suffixes sees the shared positions and its own positions up to itself."""
    total = p + n * s
    position = torch.arange(total)
    suffix = torch.where(position < p, -1, (position - p) // s)  # which suffix a position is in (-1: shared)
    same_or_shared = (suffix[None, :] == -1) | (suffix[None, :] == suffix[:, None])
    allowed = (position[None, :] <= position[:, None]) & same_or_shared
    return torch.zeros(total, total).masked_fill_(~allowed, float("-inf"))


def pack(prefix: torch.Tensor, suffix: torch.Tensor) -> torch.Tensor:
    """[G, p, W] and [G, n, s, W] -> [G, p + n * s, W]: each set's shared positions, then its n suffixes."""
    return torch.cat([prefix, suffix.flatten(1, 2)], dim=1)


def packed_mask(p: int, s: int, n: int, like: torch.Tensor) -> torch.Tensor:
    return _packed_mask(p, s, n).to(device=like.device, dtype=like.dtype)


def pooled_rows(p: int, s: int, pooled: torch.Tensor) -> torch.Tensor:
    """Where each suffix's pooled position (``pooled`` [n], a position in the whole prompt) is in the packing."""
    return p + s * torch.arange(len(pooled), device=pooled.device) + (pooled - p)
