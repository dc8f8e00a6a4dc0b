"""The last block at the pooled position only (backbones.blocks): the same outputs as the whole block there, on
both towers, with and without a causal mask; blocks it does not mirror run whole."""

from __future__ import annotations

import pytest
import torch

from adaptlib.backbones.blocks import computes_at_one_position, output_at
from adaptlib.backbones.text import encode_token_ids
from adaptlib.methods.encoders import encode_image


@pytest.mark.parametrize("tower, causal", [("text", True), ("text", False), ("image", False)])
def test_the_block_at_one_position_equals_the_whole_block_there(tiny_backbone_factory, tower, causal):
    clip = tiny_backbone_factory().model
    torch.manual_seed(0)
    module = clip.transformer if tower == "text" else clip.visual.transformer
    block = module.resblocks[-1]
    x = torch.randn(5, 9, block.ln_1.normalized_shape[0])
    rows = torch.tensor([8, 3, 0, 5, 8])
    mask = torch.full((9, 9), float("-inf")).triu(1) if causal else None
    whole = block(x, attn_mask=mask)[torch.arange(5), rows]
    blocked = torch.arange(9)[None, :] > rows[:, None] if causal else None
    assert computes_at_one_position(block)
    torch.testing.assert_close(output_at(block, x, rows, blocked)[:, 0], whole, rtol=1e-5, atol=1e-6)


def test_the_towers_give_open_clips_features(tiny_backbone_factory):
    """encode_image and the text path (whose last block runs at the pooled token) against open_clip's own."""
    backbone = tiny_backbone_factory()
    clip = backbone.model.eval()
    images = torch.randn(4, 3, 32, 32)
    tokens = backbone.tokenizer(["a red circle", "x", "a small blue square on a wall"])
    with torch.no_grad():
        torch.testing.assert_close(encode_image(clip, images), clip.encode_image(images), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(encode_token_ids(clip, tokens), clip.encode_text(tokens), rtol=1e-5, atol=1e-5)


def test_a_block_with_wrapped_attention_runs_whole(tiny_backbone_factory):
    """LoRA replaces the attention module: the shortcut does not mirror it, so the block runs whole."""
    from adaptlib.methods.parts.lora import LoRAAttention, LoRAConfig

    block = tiny_backbone_factory().model.visual.transformer.resblocks[-1]
    block.attn = LoRAAttention(block.attn, LoRAConfig())
    assert not computes_at_one_position(block)
