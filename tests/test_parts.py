"""Each part against its paper's formula, on a tiny random CLIP."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from adaptlib.methods import RECIPES, build_model, build_part, get_recipe
from adaptlib.backbones.text import encode_prompts, encode_token_ids
from adaptlib.methods.encoders import encode_image
from adaptlib.methods.model import AdaptedCLIP
from adaptlib.methods.step import Batch, TrainFeatures
from adaptlib.methods.parts.base import ClassesNotSupported
from adaptlib.methods.parts.lora import LoRAAttention

CLASSES = ["cat", "dog", "red circle", "ship"]


def model_with(backbone, parts, templates=("a photo of a {}.",), classes=CLASSES) -> AdaptedCLIP:
    return AdaptedCLIP(backbone, list(classes), list(templates), [build_part(n, o) for n, o in parts])


def text_of(model, prompts):
    with torch.no_grad():
        return F.normalize(encode_token_ids(model.clip, model.tokenizer(prompts)), dim=-1)


def test_coop_initialised_from_template_gives_zero_shot_logits(tiny_backbone_factory):
    m = model_with(tiny_backbone_factory(), [("coop_prompt", {"init": "a photo of a"})])
    assert m.prompt_learner.n_ctx == 4
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        out = m(Batch(images=images))
        zs = m.logit_scale * F.normalize(m.clip.encode_image(images), dim=-1) @ m.zero_shot_text.t()
    torch.testing.assert_close(out.logits, zs, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("position, text", [("end", "a photo of a {}."), ("front", "{} a photo of a."),
                                            ("middle", "a photo {} of a.")])
def test_coop_class_token_position(tiny_backbone_factory, position, text):
    m = model_with(tiny_backbone_factory(), [("coop_prompt", {"init": "a photo of a",
                                                              "class_token_position": position})])
    with torch.no_grad():
        emb, eot = m.prompt_learner.prompt_embeddings(m, None)
        learned = F.normalize(encode_prompts(m.clip, emb, eot), dim=-1)
    torch.testing.assert_close(learned, text_of(m, [text.format(c) for c in CLASSES]), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("options, shape", [({"n_ctx": 16}, (16, 32)), ({"n_ctx": 4, "class_specific": True},
                                                                         (4, 4, 32))])
def test_coop_context_shapes(tiny_backbone_factory, options, shape):
    m = model_with(tiny_backbone_factory(), [("coop_prompt", options)])
    assert tuple(m.prompt_learner.ctx.shape) == shape
    assert abs(float(m.prompt_learner.ctx.detach().std()) - 0.02) < 0.01


def test_class_specific_context_refuses_new_classes(tiny_backbone_factory):
    m = model_with(tiny_backbone_factory(), [("coop_prompt", {"n_ctx": 4, "class_specific": True})])
    with pytest.raises(ClassesNotSupported):
        m.set_classes(["zebra", "yak"])


def test_apex_text_prompt_learns_only_a_photo(tiny_backbone_factory):
    m = model_with(tiny_backbone_factory(), [("coop_prompt", {"init": "a photo of a", "learnable_tokens": 2})])
    assert m.prompt_learner.ctx.shape[0] == 2 and m.prompt_learner.fixed_words == "of a"
    with torch.no_grad():
        emb, eot = m.prompt_learner.prompt_embeddings(m, None)
        learned = F.normalize(encode_prompts(m.clip, emb, eot), dim=-1)
    torch.testing.assert_close(learned, text_of(m, [f"a photo of a {c}." for c in CLASSES]), atol=1e-5, rtol=1e-5)


def test_cocoop_adds_meta_net_bias_per_image(tiny_backbone_factory):
    m = model_with(tiny_backbone_factory(), [("cocoop_prompt", {})])
    net = m.prompt_learner.meta_net
    assert net.linear1.out_features == m.clip.visual.output_dim // 16
    with torch.no_grad():
        net.linear2.weight.zero_()
        net.linear2.bias.zero_()
        out = m(Batch(images=torch.randn(2, 3, 32, 32)))
    assert out.text.shape == (2, len(CLASSES), m.clip.visual.output_dim)
    torch.testing.assert_close(out.text[0], m.zero_shot_text, atol=1e-4, rtol=1e-4)  # zero bias: the template


def test_tip_adapter_logits_formula(tiny_backbone_factory):
    m = model_with(tiny_backbone_factory(), [("tip_cache", {"alpha": 2.0, "beta": 5.0})])
    g = torch.Generator().manual_seed(0)
    views = torch.randn(8, 3, 32, generator=g)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    tip = m.parts[0]
    tip.fit(m, TrainFeatures(views, views[:, 0], labels), TrainFeatures(None, views[:4, 0], labels[:4]))
    keys = F.normalize(views.mean(1), dim=-1)
    f = torch.randn(5, 32, generator=g)
    with torch.no_grad():
        out = m(Batch(features=f))
        fn = F.normalize(f, dim=-1)
        clip_logits = m.logit_scale * fn @ m.zero_shot_text.t()
        cache = torch.exp(-5.0 * (1 - fn @ keys.t())) @ F.one_hot(labels, 4).float()
    torch.testing.assert_close(out.logits, clip_logits + 2.0 * cache, atol=1e-4, rtol=1e-4)
    m.set_classes(["zebra", "yak"])  # unknown classes: the cache steps aside
    with torch.no_grad():
        assert torch.allclose(m(Batch(features=f)).logits, m.logit_scale * fn @ m.zero_shot_text.t(), atol=1e-4)


def test_tip_search_grid_follows_the_reference():
    from adaptlib.methods.parts.tip_cache import search_grid

    grid = search_grid(7.0, 200)
    assert len(grid) == 200 and grid[0] == pytest.approx(0.1) and grid[-1] < 7.0
    assert grid[1] - grid[0] == pytest.approx(6.9 / 200)


def test_tip_search_uses_validation(tiny_backbone_factory):
    m = model_with(tiny_backbone_factory(), [("tip_cache", {"search_scale": (3.1, 2.1), "search_step": (3, 2)})])
    tip = m.parts[0]
    seen = []

    def evaluate():
        seen.append((tip.alpha, tip.beta))
        return -abs(tip.alpha - 1.1) - abs(tip.beta - 2.1)

    chosen = tip.tune_on_validation(m, evaluate)
    assert len(seen) == 6 and (chosen["alpha"], chosen["beta"]) == pytest.approx((1.1, 2.1))


def test_tip_closed_form_search_matches_the_loop(tiny_backbone_factory):
    g = torch.Generator().manual_seed(3)
    views, labels = torch.randn(12, 2, 32, generator=g), torch.arange(4).repeat(3)
    val_x, val_y = views[:, 0] + 0.5 * torch.randn(12, 32, generator=g), labels
    results = []
    for closed in (True, False):
        m = model_with(tiny_backbone_factory(), [("tip_cache", {"search_step": (15, 6)})])
        tip = m.parts[0]
        tip.fit(m, TrainFeatures(views, views[:, 0], labels), TrainFeatures(None, val_x, val_y))

        def evaluate():
            return float((m.predict(Batch(features=val_x)).argmax(1) == val_y).float().mean())

        def forward_val():
            return m(Batch(features=val_x)), val_y

        results.append(tip.tune_on_validation(m, evaluate, forward_val if closed else None))
    assert results[0]["val_accuracy"] == pytest.approx(results[1]["val_accuracy"])
    assert (results[0]["alpha"], results[0]["beta"]) == pytest.approx((results[1]["alpha"], results[1]["beta"]))


def test_clip_adapter_ratio_zero_is_identity(tiny_backbone_factory):
    m = model_with(tiny_backbone_factory(), [("clip_adapter", {"ratio": 0.0})])
    f = torch.randn(4, 32)
    torch.testing.assert_close(m.parts[0].image_features(f), f)
    m2 = model_with(tiny_backbone_factory(), [("clip_adapter", {"ratio": 0.5})])
    a = m2.parts[0]
    torch.testing.assert_close(a.image_features(f), 0.5 * a.adapter(f) + 0.5 * f)
    assert [type(x).__name__ for x in a.adapter] == ["Linear", "ReLU", "Linear", "ReLU"]
    assert a.adapter[0].bias is None and a.adapter[0].out_features == 8


def test_text_adapter_starts_as_identity(tiny_backbone_factory):
    m = model_with(tiny_backbone_factory(), [("text_adapter", {})])
    t = torch.randn(4, 32)
    torch.testing.assert_close(m.parts[0].text_features(t), t)


@pytest.mark.parametrize("tower", ["image", "text", "both"])
def test_lora_with_zero_b_leaves_outputs_unchanged(tiny_backbone_factory, tower):
    frozen = tiny_backbone_factory()
    m = model_with(tiny_backbone_factory(), [("lora", {"tower": tower})])
    m.eval()
    images, tokens = torch.randn(2, 3, 32, 32), frozen.tokenizer(["a red circle.", "a photo of a cat."])
    with torch.no_grad():
        torch.testing.assert_close(m.clip.encode_image(images), frozen.model.encode_image(images), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(m.clip.encode_text(tokens), frozen.model.encode_text(tokens), atol=1e-5, rtol=1e-5)


def test_lora_equals_merged_weight_update(tiny_backbone_factory):
    bb = tiny_backbone_factory()
    attn = bb.model.visual.transformer.resblocks[0].attn
    reference = torch.nn.MultiheadAttention(attn.embed_dim, attn.num_heads, batch_first=True)
    reference.load_state_dict(attn.state_dict())
    from adaptlib.methods.parts.lora import LoRAConfig

    cfg = LoRAConfig(rank=2, alpha=1.0, dropout=0.0, targets=("q", "v"))
    lora = LoRAAttention(attn, cfg).eval()
    g = torch.Generator().manual_seed(1)
    for t in lora.lora_B:
        lora.lora_B[t].data = torch.randn(lora.lora_B[t].shape, generator=g)
    w = attn.embed_dim
    s = 1.0 / math.sqrt(2)
    with torch.no_grad():
        merged = reference.in_proj_weight.clone()
        merged[:w] += s * lora.lora_B["q"] @ lora.lora_A["q"]
        merged[2 * w:] += s * lora.lora_B["v"] @ lora.lora_A["v"]
        reference.in_proj_weight.copy_(merged)
        x = torch.randn(2, 5, w, generator=g)
        torch.testing.assert_close(lora(x, x, x)[0], reference(x, x, x, need_weights=False)[0], atol=1e-5, rtol=1e-5)


def test_lora_scaling_and_init(tiny_backbone_factory):
    m = model_with(tiny_backbone_factory(), [("lora", {"rank": 2, "alpha": 1.0})])
    wrapper = next(iter(m.parts[0].wrapped.values()))
    assert math.isclose(wrapper.scaling, 1 / math.sqrt(2)) and math.isclose(wrapper.dropout.p, 0.25)
    assert all(float(b.detach().abs().sum()) == 0 for b in wrapper.lora_B.values())
    assert all(float(a.detach().abs().sum()) > 0 for a in wrapper.lora_A.values())


@pytest.mark.parametrize("deep, expected_layers", [(False, 1), (True, 2)])
def test_visual_prompt_shapes_and_effect(tiny_backbone_factory, deep, expected_layers):
    frozen = tiny_backbone_factory()
    m = model_with(tiny_backbone_factory(), [("visual_prompt", {"n_tokens": 3, "deep": deep})])
    assert tuple(m.parts[0].tokens.shape) == (expected_layers, 3, 32)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        prompted = encode_image(m.clip, images, m.parts[0].visual_tokens)
        plain = frozen.model.encode_image(images)
        torch.testing.assert_close(encode_image(m.clip, images), plain, atol=1e-5, rtol=1e-5)
        with m.frozen_view():
            torch.testing.assert_close(m.image_features_raw(Batch(images=images)), plain, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(prompted, plain, atol=1e-4)


def test_text_regulariser_formula(tiny_backbone_factory):
    m = model_with(tiny_backbone_factory(), [("coop_prompt", {"n_ctx": 4}), ("text_regulariser", {"weight": 8.0})])
    with torch.no_grad():
        out = m(Batch(features=torch.randn(2, 32), labels=torch.tensor([0, 1])))
        expected = 8.0 * (1 - F.cosine_similarity(out.text, out.zero_shot_text, dim=-1).mean())
        torch.testing.assert_close(m.parts[1].loss(out), expected)
        total, pieces = m.loss(out)
    assert set(pieces) == {"ce", "text_regulariser"}
    torch.testing.assert_close(total, F.cross_entropy(out.logits, out.labels) + expected)


def test_apex_alpha_is_one_for_seen_classes(tiny_backbone_factory):
    m = model_with(tiny_backbone_factory(), [("coop_prompt", {"init": "a photo of a", "learnable_tokens": 2}),
                                            ("text_adapter", {}), ("adaptive_ensemble", {})])
    ens = m.parts[2]
    assert torch.allclose(ens.class_alpha, torch.ones(len(CLASSES)))
    m.set_classes(["dog", "zebra"])
    t0 = ens._frozen_text(m, ["dog", "zebra"])
    cos = t0 @ ens.train_text.t()
    d_nn, d_bar = (1 - cos.max(1).values).clamp_min(0), 1 - cos.mean(1)
    expected = torch.exp(-4.0 * d_bar * (d_nn > 0.05).float())
    torch.testing.assert_close(ens.class_alpha, expected)
    assert float(ens.class_alpha[0]) == pytest.approx(1.0)  # "dog" was a training class


def test_ensemble_with_alpha_one_is_the_adapted_model(tiny_backbone_factory):
    m = model_with(tiny_backbone_factory(), [("visual_prompt", {"n_tokens": 2}), ("text_adapter", {}),
                                            ("adaptive_ensemble", {})])
    images = torch.randn(3, 3, 32, 32)
    frozen = m.clip.encode_image(images).detach()
    with torch.no_grad():
        torch.testing.assert_close(m.predict(Batch(images=images, features=frozen)), m(Batch(images=images)).logits)


def test_fixed_alpha_zero_is_the_frozen_model(tiny_backbone_factory):
    m = model_with(tiny_backbone_factory(), [("visual_prompt", {"n_tokens": 2}), ("adaptive_ensemble", {"alpha": 0.0})])
    m.set_classes(CLASSES)
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        frozen = m.clip.encode_image(images)
        expected = m.logit_scale * F.normalize(frozen, dim=-1) @ m.zero_shot_text.t()
        torch.testing.assert_close(m.predict(Batch(images=images, features=frozen)), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(set(RECIPES) - {"zeroshot", "linear_probe", "tip_adapter"}))
def test_only_trainable_parameters_change(tiny_backbone_factory, name):
    from adaptlib.methods.train_config import TrainConfig
    from adaptlib.training.loop import train

    m = build_model(tiny_backbone_factory(), CLASSES, ["a photo of a {}."], get_recipe(name))
    if any(p.needs_training_features for p in m.parts):
        v = torch.randn(8, 2, 32)
        m.parts[0].fit(m, TrainFeatures(v, v[:, 0], torch.arange(4).repeat(2)), TrainFeatures(None, v[:4, 0],
                                                                                            torch.arange(4)))
    trainable = {n for n, _ in m.trainable_parameters()}
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    batch = Batch(labels=torch.tensor([0, 1, 2, 3]), images=torch.randn(4, 3, 32, 32), features=torch.randn(4, 32))
    cfg = TrainConfig(optimizer="sgd", lr=0.5, warmup_epochs=0, batch_size=4)
    log = train(m, lambda epoch: iter([batch]), cfg, total_steps=1, steps_per_epoch=1, device=torch.device("cpu"))
    assert log.steps == 1 and trainable
    for n, p in m.named_parameters():
        changed = not torch.equal(before[n], p.detach())
        if n not in trainable:
            assert not changed, f"{n} is frozen but changed"
    assert any(not torch.equal(before[n], p.detach()) for n, p in m.named_parameters() if n in trainable)


@pytest.mark.parametrize("part, options, expected", [
    ("layernorm", {"tower": "image"}, lambda c: sum(p.numel() for n, p in c.named_parameters()
                                                   if n.startswith("visual.") and ("ln" in n))),
    ("layernorm", {"tower": "text"}, lambda c: sum(p.numel() for n, p in c.named_parameters()
                                                  if not n.startswith("visual.") and ("ln" in n))),
    ("bitfit", {"tower": "both"}, lambda c: sum(p.numel() for n, p in c.named_parameters()
                                               if n.endswith("bias") and "ln" not in n)),
    ("clipfit_params", {}, lambda c: sum(p.numel() for n, p in c.named_parameters()
                                         if (n.startswith("visual.") and "ln" in n)
                                         or (n.startswith("transformer.") and n.endswith("mlp.c_proj.bias")))),
])
def test_parameter_selections(tiny_backbone_factory, part, options, expected):
    bb = tiny_backbone_factory()
    want = expected(bb.model)
    m = model_with(bb, [(part, options)])
    assert m.num_trainable() == want > 0


def test_chunked_text_encoding_matches_with_gradients(tiny_backbone_factory):
    m = model_with(tiny_backbone_factory(), [("coop_prompt", {"n_ctx": 4})], classes=[f"thing {i}" for i in range(9)])
    emb, eot = m.prompt_learner.prompt_embeddings(m, None)
    whole = encode_prompts(m.clip, emb, eot, chunk=100)
    (g_whole,) = torch.autograd.grad(whole.square().sum(), m.prompt_learner.ctx)
    emb, eot = m.prompt_learner.prompt_embeddings(m, None)
    chunked = encode_prompts(m.clip, emb, eot, chunk=4)
    (g_chunked,) = torch.autograd.grad(chunked.square().sum(), m.prompt_learner.ctx)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g_chunked, g_whole, atol=1e-5, rtol=1e-5)


def test_part_options_are_validated():
    with pytest.raises(ValueError, match="did you mean 'ratio'"):
        build_part("clip_adapter", {"raito": 0.5})
    with pytest.raises(KeyError, match="Did you mean 'clip_adapter'"):
        build_part("clip_adaptor")


def test_two_prompt_learners_are_refused(tiny_backbone_factory):
    with pytest.raises(ValueError, match="at most one text prompt learner"):
        model_with(tiny_backbone_factory(), [("coop_prompt", {}), ("cocoop_prompt", {})])
