"""The last transformer block computed only where the tower pools: one query per sequence instead of one per token.

A tower's features are read at one position of its last block's output (the CLS token of an open_clip ViT, the
end-of-text token of CLIP's causal text transformer). That position's output needs the block's attention with
itself as the only query (keys and values at every position it may attend to) and the block's MLP at that one
row, so the rest of the last block's work can be skipped: the same numbers up to float rounding, for about a
fifth of the last block's FLOPs. open_clip's plain ``ResidualAttentionBlock`` only; any other block (a part's
wrapped attention, a cross-attention block) runs whole.
"""

from __future__ import annotations

import torch
from torch import nn


def computes_at_one_position(block: nn.Module) -> bool:
    """Whether ``block`` is open_clip's plain batch-first residual attention block, which ``output_at`` mirrors."""
    return type(block).__name__ == "ResidualAttentionBlock" and type(block.attn) is nn.MultiheadAttention \
        and block.attn.batch_first and not hasattr(block, "ln_1_kv")


def output_at(block: nn.Module, x: torch.Tensor, rows: torch.Tensor, blocked: torch.Tensor | None = None
              ) -> torch.Tensor:
    """``block(x)`` at position ``rows[n]`` of each sequence n of ``x`` [N, L, W], as [N, 1, W]. ``blocked``
    [N, L] (True: not attended) is the attention mask's row at each sequence's position (a causal mask: every
    position after it); None where every position is attended."""
    h = block.ln_1(x)
    n = torch.arange(x.shape[0], device=x.device)
    query = h[n, rows].unsqueeze(1)
    attended = block.attn(query, h, h, need_weights=False, key_padding_mask=blocked)[0]
    y = x[n, rows].unsqueeze(1) + block.ls_1(attended)
    return y + block.ls_2(block.mlp(block.ln_2(y)))


def outputs_at_rows(block: nn.Module, x: torch.Tensor, rows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``block(x, attn_mask=mask)`` at positions ``rows`` [R] of every sequence of ``x`` [G, T, W]: [G, R, W]. The
    attention runs with those rows as its only queries (``output_at`` for the same rows of every sequence, under a
    whole mask [T, T])."""
    h = block.ln_1(x)
    attended = block.attn(h[:, rows], h, h, need_weights=False, attn_mask=mask[rows])[0]
    y = x[:, rows] + block.ls_1(attended)
    return y + block.ls_2(block.mlp(block.ln_2(y)))
