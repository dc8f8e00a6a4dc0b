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


NOT_TRAINED = {"zeroshot", "linear_probe", "tip_adapter", "lp_plus_plus", "gda"}  # closed form, no training loop


@pytest.mark.parametrize("name", sorted(set(RECIPES) - NOT_TRAINED))
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
    log = train(m, lambda epoch: iter([batch]), cfg, total_steps=1, steps_per_epoch=1, device=torch.device("cpu"),
                shots=1)
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
    torch.manual_seed(0)
    m = model_with(tiny_backbone_factory(), [("coop_prompt", {"n_ctx": 4})], classes=[f"thing {i}" for i in range(9)])
    emb, eot = m.prompt_learner.prompt_embeddings(m, None)
    whole = encode_prompts(m.clip, emb, eot, chunk=100)
    (g_whole,) = torch.autograd.grad(whole.square().sum(), m.prompt_learner.ctx)
    emb, eot = m.prompt_learner.prompt_embeddings(m, None)
    chunked = encode_prompts(m.clip, emb, eot, chunk=4)
    (g_chunked,) = torch.autograd.grad(chunked.square().sum(), m.prompt_learner.ctx)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-5)
    # float32 sums in another order: within 1e-5 of the largest gradient
    torch.testing.assert_close(g_chunked, g_whole, atol=1e-5 * float(g_whole.abs().max()), rtol=1e-5)


def test_part_options_are_validated():
    with pytest.raises(ValueError, match="did you mean 'ratio'"):
        build_part("clip_adapter", {"raito": 0.5})
    with pytest.raises(KeyError, match="Did you mean 'clip_adapter'"):
        build_part("clip_adaptor")


def test_two_prompt_learners_are_refused(tiny_backbone_factory):
    with pytest.raises(ValueError, match="at most one text prompt learner"):
        model_with(tiny_backbone_factory(), [("coop_prompt", {}), ("cocoop_prompt", {})])


# ------------------------------------------------------------------ few-shot probes on frozen features
def test_zs_linear_head_starts_at_zero_shot(tiny_backbone_factory):
    """ZS-LP's prototypes are the unnormalised mean of the template features (CLAP's base): with one template
    the initial logits are the zero-shot logits, at CLIP's temperature."""
    m = model_with(tiny_backbone_factory(), [("zs_linear_head", {})])
    f = torch.randn(5, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fn = F.normalize(f, dim=-1)
        torch.testing.assert_close(m(Batch(features=f)).logits, m.logit_scale * fn @ m.zero_shot_text.t(),
                                   atol=1e-4, rtol=1e-4)
    templates = ["a photo of a {}.", "a drawing of a {}."]
    m2 = model_with(tiny_backbone_factory(), [("zs_linear_head", {})], templates=templates)
    with torch.no_grad():
        raw = encode_token_ids(m2.clip, m2.tokenizer([t.format(c) for c in CLASSES for t in templates]))
    torch.testing.assert_close(m2.parts[0].prototypes.detach(), raw.view(4, 2, -1).mean(1), atol=1e-5, rtol=1e-5)
    assert m2.num_trainable() == 4 * 32


def test_zs_linear_head_scores_a_subset_of_its_classes(tiny_backbone_factory):
    m = model_with(tiny_backbone_factory(), [("zs_linear_head", {})])
    with torch.no_grad():
        m.parts[0].prototypes.add_(torch.randn(4, 32, generator=torch.Generator().manual_seed(1)))
    f = torch.randn(3, 32)
    with torch.no_grad():
        full = m(Batch(features=f)).logits
        m.set_classes(["ship", "dog"])  # a subset (ImageNet-A and -R in CLAP's code): the trained rows
        torch.testing.assert_close(m(Batch(features=f)).logits, full[:, [3, 1]], atol=1e-5, rtol=1e-5)
    with pytest.raises(ClassesNotSupported):
        m.set_classes(["zebra", "dog"])


def test_clap_multipliers_are_the_zero_shot_support_probabilities():
    from adaptlib.methods.parts.zs_probe import zero_shot_multipliers

    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0], [1.0, 3.0]])
    labels = torch.tensor([0, 0, 1])
    expected = torch.tensor([(math.exp(2) / (math.exp(2) + 1) + 0.5) / 2, math.exp(3) / (math.exp(1) + math.exp(3))])
    torch.testing.assert_close(zero_shot_multipliers(logits, labels, 2), expected)
    torch.testing.assert_close(zero_shot_multipliers(logits, labels, 2, "balanced"), torch.ones(2))
    torch.testing.assert_close(zero_shot_multipliers(logits, labels, 2, "corrected"), 2 * expected / expected.sum())


def test_clap_fit_sets_multipliers_from_the_zero_shot_model(tiny_backbone_factory):
    m = model_with(tiny_backbone_factory(), [("zs_linear_head", {}), ("class_adaptive_constraint", {})])
    views, labels = torch.randn(8, 3, 32, generator=torch.Generator().manual_seed(2)), torch.arange(4).repeat(2)
    constraint = m.parts[1]
    assert float(constraint.multipliers.abs().sum()) == 0  # no penalty before fitting
    constraint.fit(m, TrainFeatures(views, views[:, 0], labels), TrainFeatures(None, views[:4, 0], labels[:4]))
    probs = (m.logit_scale * F.normalize(views, dim=-1) @ m.zero_shot_text.t()).softmax(-1)  # [8, 3, 4]
    expected = torch.stack([probs[labels == c][..., c].mean() for c in range(4)])
    torch.testing.assert_close(constraint.multipliers, expected, atol=1e-5, rtol=1e-4)


def test_clap_penalty_value(tiny_backbone_factory):
    """mean_c lambda_c ||w_c - t_c||^2, on the unnormalised prototypes, added to the cross-entropy."""
    m = model_with(tiny_backbone_factory(), [("zs_linear_head", {}), ("class_adaptive_constraint", {})])
    head, constraint = m.parts
    constraint.multipliers = torch.tensor([0.5, 1.0, 0.0, 0.25])
    with torch.no_grad():
        head.prototypes[0, 0] += 2.0  # squared distance 4
        head.prototypes[1, 3] -= 1.0  # 1
        head.prototypes[3, :4] += 1.0  # 4
        out = m(Batch(features=torch.randn(2, 32), labels=torch.tensor([0, 1])))
        total, pieces = m.loss(out)
    expected = (0.5 * 4 + 1.0 * 1 + 0.25 * 4) / 4
    assert pieces["class_adaptive_constraint"] == pytest.approx(expected, rel=1e-4)
    assert float(total) == pytest.approx(pieces["ce"] + expected, rel=1e-5)


def test_lp_plus_plus_initialisation_and_step_sizes_by_hand():
    """LP++'s data-driven start and Lipschitz step sizes on three 2-d features (eigenvalues of F^T F: 2 and 1)."""
    from adaptlib.methods.parts.lp_plus_plus import class_sums, initial_alpha, step_sizes

    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    y = torch.tensor([0, 1, 1])
    text = torch.eye(2)
    torch.testing.assert_close(class_sums(x, y, 2), torch.tensor([[1.0, 0.0], [0.6, 1.8]]))  # sums, not means
    assert initial_alpha(x, y, text) == pytest.approx(250 * (1.0 + 0.9) / 2)  # class means of cos(f_i, t_c)
    lr_w, lr_alpha = step_sizes(x, text)
    assert lr_w == pytest.approx(4 * 3 / 2.0)  # 4N / lambda_max(F^T F)
    assert lr_alpha == pytest.approx(3 / (4 * 1.64))  # N / (4 max_c sum_i (f_i . t_c)^2)


def test_lp_plus_plus_logits_blend_the_probe_and_the_text(tiny_backbone_factory):
    m = model_with(tiny_backbone_factory(), [("lp_plus_plus", {"epochs": 0})])
    lpp = m.parts[0]
    views, labels = torch.randn(8, 2, 32, generator=torch.Generator().manual_seed(3)), torch.arange(4).repeat(2)
    bias0 = lpp.head.bias.detach().clone()
    chosen = lpp.fit(m, TrainFeatures(views, views[:, 1], labels), TrainFeatures(None, views[:4, 1], labels[:4]))
    x = F.normalize(views[:, 0], dim=-1)  # one augmented pass
    torch.testing.assert_close(lpp.head.weight, F.one_hot(labels, 4).float().t() @ x)
    torch.testing.assert_close(lpp.head.bias, bias0)  # nn.Linear's own initialisation, as the code keeps it
    torch.testing.assert_close(lpp.alpha, torch.full((4,), chosen["alpha_init"]))
    f = torch.randn(5, 32)
    fn = F.normalize(f, dim=-1)
    with torch.no_grad():
        expected = fn @ lpp.head.weight.t() + lpp.head.bias + lpp.alpha * (fn @ m.zero_shot_text.t())
        torch.testing.assert_close(m(Batch(features=f)).logits, expected, atol=1e-5, rtol=1e-5)
    assert m.num_trainable() == 0 and m.num_fitted() == 4 * 32 + 4 + 4


def test_lp_plus_plus_descent_is_the_reference_loop(tiny_backbone_factory):
    """Full-batch SGD with momentum on (w, b), and alpha stepped every 10 iterations by its gradient summed over
    every iteration so far (the reference code never zeroes alpha's gradient)."""
    m = model_with(tiny_backbone_factory(), [("lp_plus_plus", {"epochs": 25})])
    lpp = m.parts[0]
    views, labels = torch.randn(12, 1, 32, generator=torch.Generator().manual_seed(4)), torch.arange(4).repeat(3)
    bias0 = lpp.head.bias.detach().clone()
    lpp.fit(m, TrainFeatures(views, views[:, 0], labels), TrainFeatures(None, views[:4, 0], labels[:4]))
    x, text = F.normalize(views[:, 0], dim=-1), m.zero_shot_text
    classifier = torch.nn.Linear(32, 4)
    with torch.no_grad():
        classifier.weight.copy_(F.one_hot(labels, 4).float().t() @ x)
        classifier.bias.copy_(bias0)
    tl = x @ text.t()
    alpha0 = 250 * torch.stack([tl[labels == c, c].mean() for c in range(4)]).mean()
    alpha = (alpha0 * torch.ones(1, 4)).requires_grad_(True)
    lr_w = 4 * 12 / float(torch.linalg.eigvalsh(x.t() @ x).max())
    lr_alpha = 12 / (4 * float(tl.pow(2).sum(0).max()))
    optimizer = torch.optim.SGD(classifier.parameters(), lr_w, momentum=0.9)
    for epoch in range(25):
        loss = F.cross_entropy(classifier(x) + torch.ones(12, 1) @ alpha * tl, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if (epoch + 1) % 10 == 0:
            alpha.data -= lr_alpha * alpha.grad.data
    torch.testing.assert_close(lpp.head.weight, classifier.weight.detach(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(lpp.head.bias, classifier.bias.detach(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(lpp.alpha, alpha.detach()[0], atol=1e-4, rtol=1e-4)


def test_gda_means_covariance_and_weights_by_direct_computation():
    """Class means, the KS precision d * inv((n - 1) S + tr(S) I) of the class-centred features, w = P mu,
    b = log(1/C) - mu^T P mu / 2, written out with numpy."""
    import numpy as np

    from adaptlib.methods.parts.gda import gda_classifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, 3))
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    mus = np.stack([x[y == c].mean(0) for c in range(3)])
    centred = x - mus[y]
    s = centred.T @ centred / (len(x) - 1)  # the class-centred features have mean 0
    precision = 3 * np.linalg.inv((len(x) - 1) * s + np.trace(s) * np.eye(3))
    weight, bias = gda_classifier(torch.from_numpy(x), torch.from_numpy(y), 3)
    np.testing.assert_allclose(weight.numpy(), mus @ precision, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(bias.numpy(), np.log(1 / 3) - 0.5 * np.einsum("cd,de,ce->c", mus, precision, mus),
                               rtol=1e-9, atol=1e-12)


def test_gda_logits_are_zero_shot_plus_alpha_times_the_discriminant(tiny_backbone_factory):
    m = model_with(tiny_backbone_factory(), [("gda", {"alpha": 0.5})])
    gda = m.parts[0]
    views, labels = torch.randn(8, 3, 32, generator=torch.Generator().manual_seed(5)), torch.arange(4).repeat(2)
    gda.fit(m, TrainFeatures(views, views[:, 0], labels), TrainFeatures(None, views[:4, 0], labels[:4]))
    x = F.normalize(views, dim=-1).reshape(24, 32)  # every augmented view, normalised, pooled
    from adaptlib.methods.parts.gda import gda_classifier

    weight, bias = gda_classifier(x, labels.repeat_interleave(3), 4)
    torch.testing.assert_close(gda.weight, weight.float())
    f = torch.randn(5, 32)
    fn = F.normalize(f, dim=-1)
    with torch.no_grad():
        expected = m.logit_scale * fn @ m.zero_shot_text.t() + 0.5 * (fn @ weight.float().t() + bias.float())
        torch.testing.assert_close(m(Batch(features=f)).logits, expected, atol=1e-4, rtol=1e-4)
    assert m.num_fitted() == 4 * 32 + 4
    with pytest.raises(ClassesNotSupported):
        m.set_classes(["zebra", "yak"])


def test_gda_alpha_is_searched_on_validation_as_the_code_does(tiny_backbone_factory):
    g = torch.Generator().manual_seed(6)
    views, labels = torch.randn(12, 4, 32, generator=g), torch.arange(4).repeat(3)
    val_x = views[:, 0] + 0.3 * torch.randn(12, 32, generator=g)
    results = []
    for closed in (True, False):
        m = model_with(tiny_backbone_factory(), [("gda", {})])
        gda = m.parts[0]
        gda.fit(m, TrainFeatures(views, views[:, 0], labels), TrainFeatures(None, val_x, labels))

        def evaluate():
            return float((m.predict(Batch(features=val_x)).argmax(1) == labels).float().mean())

        def forward_val():
            return m(Batch(features=val_x)), labels

        results.append(gda.tune_on_validation(m, evaluate, forward_val if closed else None))
        assert gda.alpha == results[-1]["alpha"] and gda.extra_state() == {"alpha": gda.alpha}
    assert results[0] == pytest.approx(results[1])
    m = model_with(tiny_backbone_factory(), [("gda", {})])
    seen = []

    def evaluate_at():
        seen.append(m.parts[0].alpha)
        return {1e-4: 0.0, 1e-3: 0.5, 1e-2: 0.75, 0.1: 0.75, 1.0: 0.5}.get(m.parts[0].alpha, 0.25)

    assert m.parts[0].tune_on_validation(m, evaluate_at)["alpha"] == 1e-2  # the first of the best, in grid order
    assert seen == [1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0]
    assert m.parts[0].tune_on_validation(m, lambda: 0.0)["alpha"] == 0.1  # nothing beats 0: the code's fallback


def test_few_shot_probe_recipes_follow_their_reference_code():
    for name in ("zs_lp", "clap"):
        cfg = RECIPES[name].train_config("few_shot", "dtd")
        assert (cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.batch_size) == ("sgd", 0.1, 0.9, 0.0, 256)
        assert [cfg.epochs_for(k) for k in (1, 2, 4, 8, 16)] == [300] * 5 and cfg.views == 20
        assert (cfg.warmup_epochs, cfg.warmup_lr, cfg.schedule_per_epoch) == (1, 1e-5, True)
        assert len(RECIPES[name].templates_for("imagenet", ["a photo of a {}."])) == 8
    assert [p for p, _ in RECIPES["clap"].parts] == ["zs_linear_head", "class_adaptive_constraint"]
    assert RECIPES["lp_plus_plus"].crop_scale == RECIPES["gda"].crop_scale == (0.5, 1.0)
    assert RECIPES["lp_plus_plus"].train.views == 1 and RECIPES["gda"].train.views == 10
    lpp = build_part("lp_plus_plus").config
    assert (lpp.epochs, lpp.alpha_every, lpp.init_scale, lpp.momentum) == (300, 10, 250.0, 0.9)
    assert build_part("gda").config.alphas == (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)


# ---------------------------------------------------------------------------- MaPLe, PromptSRC (IVLP), ProLIP
def _block_outputs(clip, emb: torch.Tensor, eot: torch.Tensor) -> list[torch.Tensor]:
    """Every text block's output for prompt embeddings ``emb``, from a plain (shallow) forward."""
    outs = []
    hooks = [b.register_forward_hook(lambda mod, args, out: outs.append(out.detach().clone()))
             for b in clip.transformer.resblocks]
    try:
        with torch.no_grad():
            encode_prompts(clip, emb, eot)
    finally:
        for h in hooks:
            h.remove()
    return outs


def test_deep_text_hook_without_tokens_is_the_shallow_path_bitwise(tiny_backbone_factory):
    from adaptlib.backbones.text import DeepTextPrompts

    m = model_with(tiny_backbone_factory(), [("coop_prompt", {"init": "a photo of a"})])
    assert m.deep_text_prompts(m.prompt_learner) is None  # a learner without deep prompts: the encoder as before
    with torch.no_grad():
        emb, eot = m.prompt_learner.prompt_embeddings(m, None)
        plain = encode_prompts(m.clip, emb, eot)
        hooked = encode_prompts(m.clip, emb, eot, deep=DeepTextPrompts(lambda layer: None, 1))
    torch.testing.assert_close(hooked, plain, rtol=0, atol=0)


def test_deep_text_tokens_equal_to_the_shallow_outputs_reproduce_the_template(tiny_backbone_factory):
    """IVLP's deep text prompts replace the context positions (after the start token) before block i; set to what
    the shallow prompt's block i-1 gives there, the features are the template's: the splice hits those positions."""
    m = model_with(tiny_backbone_factory(), [("deep_text_prompt", {"n_ctx": 4, "init": "a photo of a", "depth": 9})])
    part = m.parts[0]
    assert part.depth == 2 and [tuple(d.shape) for d in part.deep] == [(4, 32)]  # depth 9, 2 blocks: every block
    assert abs(float(part.deep[0].detach().std()) - 0.02) < 0.015
    emb, eot = part.prompt_embeddings(m, None)
    outs = _block_outputs(m.clip, emb.detach(), eot)
    # causal attention: the context positions of every class prompt see only "<start> a photo of a"
    torch.testing.assert_close(outs[0][0, 1:5], outs[0][-1, 1:5])
    with torch.no_grad():
        part.deep[0].copy_(outs[0][0, 1:5])
        learned = F.normalize(m.text_features_raw(), dim=-1)
        expected = text_of(m, [f"a photo of a {c}." for c in CLASSES])
        torch.testing.assert_close(learned, expected, atol=1e-5, rtol=1e-5)
        part.deep[0].add_(torch.randn_like(part.deep[0]))  # other tokens there change the features
        assert not torch.allclose(F.normalize(m.text_features_raw(), dim=-1), expected, atol=1e-3)


def test_deep_text_prompt_keeps_the_rest_of_the_initial_phrase(tiny_backbone_factory):
    m = model_with(tiny_backbone_factory(), [("deep_text_prompt", {"n_ctx": 2, "init": "a photo of a"})])
    part = m.parts[0]
    assert tuple(part.ctx.shape) == (2, 32) and part.prompt.fixed_words == "of a"  # IVLP: "[a photo] of a {c}."
    with pytest.raises(ValueError, match="n_ctx=5"):
        model_with(tiny_backbone_factory(), [("deep_text_prompt", {"n_ctx": 5, "init": "a photo of a"})])


def test_maple_couples_text_prompts_to_vision_prompts(tiny_backbone_factory):
    m = model_with(tiny_backbone_factory(), [("maple_prompt", {})])
    part = m.parts[0]
    assert m.prompt_learner is part and m.visual_prompt is part
    assert tuple(part.ctx.shape) == (2, 32) and part.prompt.fixed_words == "of a"
    assert part.depth == 2 and len(part.couplings) == 1
    torch.testing.assert_close(part.visual_tokens(0), part.couple(part.ctx))  # block 0: the context, coupled
    torch.testing.assert_close(part.visual_tokens(1), part.couplings[0](part.deep[0]))  # block i: its text tokens
    assert part.visual_tokens(2) is None and part.text_tokens(1) is part.deep[0]
    # the image loss reaches the text context through the coupling
    images = torch.randn(2, 3, 32, 32)
    m.image_features_raw(Batch(images=images)).sum().backward()
    assert part.ctx.grad is not None and float(part.ctx.grad.abs().sum()) > 0
    assert part.deep[0].grad is not None and float(part.deep[0].grad.abs().sum()) > 0
    with torch.no_grad():
        expected = encode_image(m.clip, images, lambda layer: [part.couple(part.ctx),
                                                                part.couplings[0](part.deep[0])][layer])
        torch.testing.assert_close(m.image_features_raw(Batch(images=images)), expected)
        with m.frozen_view():  # off: the frozen encoders
            torch.testing.assert_close(m.image_features_raw(Batch(images=images)), m.clip.encode_image(images),
                                       atol=1e-5, rtol=1e-5)


def test_promptsrc_templates_are_the_codes_sixty():
    from adaptlib.methods.parts.promptsrc import PROMPTSRC_TEMPLATES

    assert len(PROMPTSRC_TEMPLATES) == len(set(PROMPTSRC_TEMPLATES)) == 60
    assert PROMPTSRC_TEMPLATES[:3] == ("a photo of a {}.", "a bad photo of a {}.", "a photo of many {}.")
    assert PROMPTSRC_TEMPLATES[-2:] == ("a pixelated photo of a {}.", "itap of the {}.")


def test_promptsrc_self_consistency_terms_equal_the_direct_computation(tiny_backbone_factory):
    from adaptlib.methods.parts.promptsrc import PROMPTSRC_TEMPLATES

    frozen = tiny_backbone_factory()
    m = build_model(tiny_backbone_factory(), CLASSES, ["a photo of a {}."], get_recipe("promptsrc"))
    scl = next(p for p in m.parts if p.name == "self_consistency")
    with torch.no_grad():  # move the prompts away from their start, so every term is non-zero
        for p in m.parameters():
            if p.requires_grad:
                p.add_(0.3 * torch.randn_like(p))
    images, labels = torch.randn(4, 3, 32, 32), torch.arange(4)
    out = m(Batch(images=images, labels=labels))  # a fresh model is in training mode: the frozen features come
    with torch.no_grad():
        v0 = F.normalize(frozen.model.encode_image(images), dim=-1)
        raw = encode_token_ids(frozen.model, frozen.tokenizer([t.format(c) for c in CLASSES
                                                               for t in PROMPTSRC_TEMPLATES]))
        t0 = F.normalize(raw.view(len(CLASSES), 60, -1).mean(1), dim=-1)  # mean of unnormalised, then normalised
        zs = m.logit_scale * v0 @ t0.t()
        p0, logp = zs.softmax(1), out.logits.log_softmax(1)
        expected = {"text": 25.0 * (out.text - t0).abs().mean(), "image": 10.0 * (out.image - v0).abs().mean(),
                    "logit": (p0 * (p0.log() - logp)).sum() / out.logits.numel()}
        terms = scl.terms(out)
    torch.testing.assert_close(out.frozen_image, frozen.model.encode_image(images), atol=1e-5, rtol=1e-5)
    assert set(terms) == set(expected)
    for name in expected:
        torch.testing.assert_close(terms[name], expected[name], atol=1e-5, rtol=1e-4)
    assert all(float(t) > 0 for t in terms.values())
    _, pieces = m.loss(out)
    assert set(pieces) == {"ce", "self_consistency"}
    assert pieces["self_consistency"] == pytest.approx(float(sum(expected.values())), rel=1e-4)
    m.eval()
    assert m(Batch(images=images)).frozen_image is None  # evaluation does not run the frozen encoder


def test_promptsrc_text_targets_follow_the_training_classes(tiny_backbone_factory):
    from adaptlib.methods.step import TrainingPlan

    m = build_model(tiny_backbone_factory(), CLASSES, ["a photo of a {}."], get_recipe("promptsrc"))
    scl = next(p for p in m.parts if p.name == "self_consistency")
    before = scl.text_targets.clone()
    m.set_classes(["zebra", "yak"])
    with pytest.raises(RuntimeError, match="classes changed"):
        scl.loss(m(Batch(images=torch.randn(2, 3, 32, 32), labels=torch.tensor([0, 1]))))
    scl.begin_training(m, TrainingPlan(1, 1, 1, 2))
    assert scl.text_targets.shape[0] == 2
    m.set_classes(CLASSES)
    scl.begin_training(m, TrainingPlan(1, 1, 1, 2))
    torch.testing.assert_close(scl.text_targets, before, rtol=0, atol=0)


@pytest.mark.parametrize("epochs, mean, std", [(20, 15.0, 1.0), (50, 30.0, 30.0), (50, 45.0, 5.0), (3, 6.0, 10.0)])
def test_gpa_weights_are_the_normalised_gaussian(epochs, mean, std):
    from adaptlib.methods.parts.promptsrc import gaussian_weights

    w = gaussian_weights(epochs, mean, std)
    assert len(w) == epochs and sum(w) == pytest.approx(1.0, abs=1e-12)
    density = [math.exp(-0.5 * ((e - mean) / std) ** 2) for e in range(1, epochs + 1)]
    assert w == pytest.approx([d / sum(density) for d in density], rel=1e-12)
    peak = min(max(round(mean), 1), epochs)
    assert max(w) == pytest.approx(w[peak - 1])


def test_gpa_ends_training_with_the_gaussian_weighted_parameters(tiny_backbone_factory):
    from adaptlib.methods.parts.base import Part
    from adaptlib.methods.parts.promptsrc import gaussian_weights
    from adaptlib.methods.train_config import TrainConfig
    from adaptlib.training.loop import train

    class Recorder(Part):
        name = "recorder"

        def begin_training(self, model, plan):
            self.seen = []

        def end_epoch(self, model, epoch, plan):
            self.seen.append({n: p.detach().clone() for n, p in model.trainable_parameters()})

    recorder = Recorder()
    parts = [recorder] + [build_part(n, o) for n, o in [("deep_text_prompt", {}), ("visual_prompt", {"n_tokens": 2}),
                                                         ("prompt_aggregation", {"mean": 2.0, "std": 1.0})]]
    m = AdaptedCLIP(tiny_backbone_factory(), CLASSES, ["a photo of a {}."], parts)
    batches = [Batch(labels=torch.arange(4), images=torch.randn(4, 3, 32, 32)) for _ in range(2)]
    cfg = TrainConfig(optimizer="sgd", lr=0.5, warmup_epochs=0, batch_size=4)
    log = train(m, lambda epoch: iter(batches), cfg, total_steps=6, steps_per_epoch=2, device=torch.device("cpu"))
    assert log.epochs == 3 and len(recorder.seen) == 3
    w = gaussian_weights(3, 2.0, 1.0)
    for name, param in m.trainable_parameters():
        expected = sum(w[e] * recorder.seen[e][name] for e in range(3))
        torch.testing.assert_close(param.detach(), expected, atol=1e-6, rtol=1e-6)
        assert not torch.equal(param.detach(), recorder.seen[-1][name])  # not the last epoch's


def test_prolip_lambda_is_one_over_the_shots():
    from adaptlib.methods.parts.prolip import validation_free_weight

    assert [validation_free_weight(k) for k in (1, 2, 4, 8, 16)] == [1.0, 0.5, 0.25, 0.125, 0.0625]
    assert validation_free_weight(4, "1/N^2") == 1 / 16
    assert get_recipe("prolip").parts == (("visual_projection", {"rule": "1/N"}),)


def test_prolip_tunes_the_projection_with_its_regulariser(tiny_backbone_factory):
    from adaptlib.methods.step import TrainingPlan

    m = model_with(tiny_backbone_factory(), [("visual_projection", {})])
    part = m.parts[0]
    proj = m.clip.visual.proj
    assert [n for n, _ in m.trainable_parameters()] == ["clip.visual.proj"] and m.num_trainable() == 32 * 32
    out = m(Batch(images=torch.randn(2, 3, 32, 32), labels=torch.tensor([0, 1])))
    with pytest.raises(ValueError, match="needs the run's shots"):
        part.begin_training(m, TrainingPlan(1, 1, 1, None))
    part.begin_training(m, TrainingPlan(1, 1, 1, 4))
    assert part.strength == 0.25
    assert float(part.loss(out).detach()) == 0.0  # W = W0 at the start
    initial = proj.detach().clone()
    with torch.no_grad():
        proj.add_(0.1 * torch.randn_like(proj))
    torch.testing.assert_close(part.loss(out), 0.25 * (proj - initial).square().sum())
    with m.frozen_view():  # switched off: the frozen projection
        torch.testing.assert_close(m.clip.visual.proj, initial, rtol=0, atol=0)
    fixed = model_with(tiny_backbone_factory(), [("visual_projection", {"weight": 0.1})]).parts[0]
    fixed.begin_training(m, TrainingPlan(1, 1, 1, None))
    assert fixed.strength == 0.1


def test_prolip_trains_from_pooled_features_through_its_projection(tiny_backbone_factory):
    """ProLIP's code trains on features saved before the projection: on an open_clip ViT the model takes cached
    pooled features [B, W] and applies the (trained) projection itself, equal to running the encoder; the frozen
    features of such a batch use the frozen projection; a tower without pooled features refuses clearly."""
    from adaptlib.methods.encoders import encode_image, pooled_supported

    m = model_with(tiny_backbone_factory(), [("visual_projection", {})])
    assert m.uses_image_encoder and m.trains_on_pooled and pooled_supported(m.clip)
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        m.clip.visual.proj.add_(0.1 * torch.randn_like(m.clip.visual.proj))  # a trained projection
        pooled = encode_image(m.clip, images, project=False)
        assert pooled.shape == (3, m.clip.visual.proj.shape[0])
        direct = m.image_features_raw(Batch(images=images))
        torch.testing.assert_close(m.image_features_raw(Batch(pooled=pooled)), direct, rtol=1e-5, atol=1e-6)
        with m.frozen_view():
            frozen = m.clip.encode_image(images)
        torch.testing.assert_close(m.frozen_image_features(Batch(pooled=pooled)), frozen, rtol=1e-5, atol=1e-6)
    assert not model_with(tiny_backbone_factory(), [("layernorm", {})]).trains_on_pooled  # changes the encoder
    m.clip.visual.proj = None  # a tower whose output has no projection after the pooled token
    assert not pooled_supported(m.clip)
    with pytest.raises(ValueError, match="open_clip ViT image tower"):
        encode_image(m.clip, images, project=False)


def test_maple_promptsrc_and_prolip_recipes_follow_their_reference_configs():
    from adaptlib.data.benchmarks.templates import TIP_ADAPTER_IMAGENET_TEMPLATES
    from adaptlib.training.loop import lr_at

    maple = get_recipe("maple")
    assert maple.parts == (("maple_prompt", {"n_ctx": 2, "init": "a photo of a", "depth": 9}),)
    cfg = maple.train_config("few_shot", "imagenet")  # vit_b16_c2_ep5_batch4_2ctx.yaml, on every dataset
    assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs_for(16), cfg.warmup_epochs, cfg.warmup_lr) == \
        ("sgd", 0.0035, 4, 5, 1, 1e-5) and cfg.schedule_per_epoch
    xd = maple.train_config("cross_dataset", "imagenet")  # ..._cross_datasets.yaml
    assert (xd.lr, xd.epochs_for(16)) == (0.0026, 2)
    assert dict(maple.part_options("cross_dataset", "imagenet"))["maple_prompt"]["depth"] == 3

    src = get_recipe("promptsrc")
    options = dict(src.part_options("few_shot", "imagenet"))
    assert options["deep_text_prompt"] == {"n_ctx": 4, "init": "a photo of a", "depth": 9}
    assert options["visual_prompt"] == {"n_tokens": 4, "deep": True, "layers": 9}
    assert options["self_consistency"] == {"text_weight": 25.0, "image_weight": 10.0, "logit_weight": 1.0}
    gpa = {(s, d): dict(src.part_options(s, d))["prompt_aggregation"]
           for s in ("few_shot", "base_to_new", "cross_dataset") for d in ("imagenet", "dtd", "eurosat", "caltech101")}
    assert gpa["few_shot", "imagenet"] == gpa["few_shot", "caltech101"] == {"mean": 30.0, "std": 30.0}
    assert gpa["few_shot", "dtd"] == gpa["few_shot", "eurosat"] == {"mean": 45.0, "std": 5.0}
    assert {str(v) for (s, _), v in gpa.items() if s == "base_to_new"} == {str({"mean": 15.0, "std": 1.0})}
    assert {str(v) for (s, _), v in gpa.items() if s == "cross_dataset"} == {str({"mean": 6.0, "std": 10.0})}
    xd = dict(src.part_options("cross_dataset", "imagenet"))
    assert xd["deep_text_prompt"]["depth"] == 3 and xd["visual_prompt"]["layers"] == 3
    for setting, epochs in (("few_shot", 50), ("base_to_new", 20), ("cross_dataset", 20)):
        cfg = src.train_config(setting, "imagenet")
        assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs_for(1), cfg.warmup_epochs) == \
            ("sgd", 0.0025, 4, epochs, 1) and cfg.schedule_per_epoch

    prolip = get_recipe("prolip")
    cfg = prolip.train
    assert (cfg.optimizer, cfg.lr, cfg.eps, cfg.weight_decay, cfg.warmup_epochs, cfg.eta_min) == \
        ("adamw", 1e-5, 1e-4, 0.0, 0, 0.0) and not cfg.schedule_per_epoch  # Adam: AdamW without weight decay
    assert [cfg.total_steps(k, 1000 * k) for k in (1, 16)] == [300, 300]  # one full-batch step a epoch
    assert [lr_at(s, 300, 1, cfg) for s in (0, 150, 299)] == pytest.approx(
        [1e-5 * 0.5 * (1 + math.cos(math.pi * s / 300)) for s in (0, 150, 299)])  # CosineAnnealingLR(T_max=300)
    assert prolip.crop_scale == (0.5, 1.0) and cfg.views == 300  # aug_views: 300 views saved before training
    assert prolip.templates_for("imagenet", ["a photo of a {}."]) == list(TIP_ADAPTER_IMAGENET_TEMPLATES)
    assert prolip.templates_for("dtd", ["{} texture."]) == ["{} texture."]
