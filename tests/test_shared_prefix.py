"""Prompts whose leading positions are shared compute them once (backbones.shared_prefix): the same features and the
same gradients as every prompt encoded whole, for each prompt learner's layout; towers and learners that cannot
share run whole."""

from __future__ import annotations

import pytest
import torch

from adaptlib.backbones.text import encode_prompts, shares_prefix
from adaptlib.methods import build_part
from adaptlib.methods.model import AdaptedCLIP
from adaptlib.methods.parts.lora import LoRAAttention, LoRAConfig
from adaptlib.methods.step import Batch

CLASSES = ["cat", "dog", "red circle", "ship", "a small blue square"]

LEARNERS = [  # (prompt learner, its options, shared positions: prefix 1 + context + fixed words)
    ("coop_prompt", {"n_ctx": 16}, 17),
    ("coop_prompt", {"n_ctx": 4, "init": "a photo of a"}, 5),
    ("coop_prompt", {"init": "a photo of a", "learnable_tokens": 2}, 5),
    ("coop_prompt", {"n_ctx": 6, "class_token_position": "middle"}, 4),
    ("coop_prompt", {"n_ctx": 4, "class_token_position": "front"}, 1),
    ("coop_prompt", {"n_ctx": 4, "class_specific": True}, 1),
    ("cocoop_prompt", {}, 5),
    ("deep_text_prompt", {"n_ctx": 2, "init": "a photo of a", "depth": 3}, 5),
    ("maple_prompt", {"n_ctx": 2, "init": "a photo of a", "depth": 3}, 5),
]


def text_features_and_gradients(model: AdaptedCLIP, shared: bool):
    """The learner's class text features and the gradients of a loss on them, with the shared path on or off."""
    learner = model.prompt_learner
    if not shared:
        learner.shared_prompt_positions = lambda: 0
    torch.manual_seed(1)
    image = torch.randn(3, model.zero_shot_text.shape[1])
    params = [p for _, p in model.trainable_parameters()]
    for p in params:
        p.grad = None
    features = model.text_features_raw(image)
    (features * torch.randn(features.shape)).sum().backward()
    return features.detach(), [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in params]


@pytest.mark.parametrize("name, options, positions", LEARNERS)
def test_a_shared_prefix_gives_the_features_and_gradients_of_whole_prompts(tiny_backbone_factory, name, options,
                                                                          positions):
    model = AdaptedCLIP(tiny_backbone_factory(), CLASSES, ["a photo of a {}."], [build_part(name, options)])
    model.train()
    assert model.prompt_learner.shared_prompt_positions() == positions
    emb, eot = model.prompt_learner.prompt_embeddings(model, torch.randn(2, model.zero_shot_text.shape[1]))
    assert shares_prefix(model.clip) and int(eot.min()) > positions
    shared, shared_grads = text_features_and_gradients(model, shared=True)
    whole, whole_grads = text_features_and_gradients(model, shared=False)
    torch.testing.assert_close(shared, whole, rtol=1e-5, atol=1e-5)
    for a, b in zip(shared_grads, whole_grads):  # float32 sums in another order: within 1e-5 of the largest
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))


@pytest.mark.parametrize("chunk, packed_positions", [(None, 256), (2, 256), (3, 256), (None, 8)])
def test_chunked_and_several_packings_give_the_same_features_and_gradients(tiny_backbone_factory, monkeypatch,
                                                                          chunk, packed_positions):
    """Chunks (checkpointed with gradients on) and packings of fewer classes than a chunk change nothing."""
    import adaptlib.backbones.text as text

    monkeypatch.setattr(text, "PACKED_POSITIONS", packed_positions)
    model = AdaptedCLIP(tiny_backbone_factory(), CLASSES, ["a photo of a {}."], [build_part("coop_prompt", {})])
    ctx = model.prompt_learner.ctx
    emb, eot = model.prompt_learner.prompt_embeddings(model, None)
    weights = torch.randn(len(CLASSES), model.zero_shot_text.shape[1])
    whole = encode_prompts(model.clip, emb, eot, chunk=None)
    (whole_grad,) = torch.autograd.grad((whole * weights).sum(), ctx)
    shared = encode_prompts(model.clip, emb, eot, chunk=chunk, shared=17)
    (shared_grad,) = torch.autograd.grad((shared * weights).sum(), ctx)
    torch.testing.assert_close(shared, whole, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(shared_grad, whole_grad, rtol=1e-4, atol=1e-5 * float(whole_grad.abs().max()))


def test_the_model_logits_are_unchanged(tiny_backbone_factory):
    """A CoOp model's logits with its prefix shared, against the prompts encoded whole."""
    model = AdaptedCLIP(tiny_backbone_factory(), CLASSES, ["a photo of a {}."], [build_part("coop_prompt", {})])
    model.eval()
    batch = Batch(features=torch.randn(4, model.zero_shot_text.shape[1]))
    with torch.no_grad():
        shared = model(batch).logits
        model.prompt_learner.shared_prompt_positions = lambda: 0
        whole = model(batch).logits
    torch.testing.assert_close(shared, whole, rtol=1e-5, atol=1e-4)


def test_what_cannot_share_runs_whole(tiny_backbone_factory):
    """A text block whose attention a part wrapped (LoRA) runs the prompts whole; a deep prompt reaching past the
    declared positions is an error that names the contract."""
    model = AdaptedCLIP(tiny_backbone_factory(), CLASSES, ["a photo of a {}."],
                        [build_part("deep_text_prompt", {"n_ctx": 4, "init": "a photo of a", "depth": 3})])
    learner = model.prompt_learner
    emb, eot = learner.prompt_embeddings(model, None)
    assert shares_prefix(model.clip)
    with pytest.raises(ValueError, match="shared_prompt_positions"):
        encode_prompts(model.clip, emb, eot, deep=model.deep_text_prompts(learner), shared=3)
    block = model.clip.transformer.resblocks[0]
    block.attn = LoRAAttention(block.attn, LoRAConfig())
    assert not shares_prefix(model.clip)
