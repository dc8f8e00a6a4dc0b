"""Every method on every backbone family (open_clip ViTs, SigLIP, SigLIP 2, EVA-02), on random-weight models built
from open_clip's configs of the real models with their sizes shrunk (tests/backbone_families.py): each method
trains a step and predicts, or fails with an error naming the part and the family. Each cell of the README's
backbone table is one case here."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from adaptlib.backbones.family import UnsupportedBackboneError, family_of, logit_bias, text_tower
from adaptlib.backbones.text import token_frame
from adaptlib.backbones.tokenizers import StandInTokenizer, TokenizerUnavailableError, open_tokenizer
from adaptlib.methods import RECIPES, build_model, build_part, get_recipe
from adaptlib.methods.model import AdaptedCLIP
from adaptlib.methods.params import family_table
from adaptlib.methods.step import Batch, TrainFeatures
from adaptlib.methods.train_config import TrainConfig
from adaptlib.runs.profile import load_profile
from adaptlib.training.loop import train

from backbone_families import FAMILIES, Family, build, register

CLASSES = ["cat", "dog", "red circle", "ship"]
TEMPLATES = ["a photo of a {}."]
# (family label, method) -> the part that refuses, by design
UNSUPPORTED = {("EVA-02", m): "visual_prompt" for m in ("vpt_shallow", "vpt_deep", "apex", "promptsrc")}
UNSUPPORTED[("EVA-02", "maple")] = "maple_prompt"  # vision prompts coupled to the text prompts: a plain ViT's
UNSUPPORTED.update({(f, "prolip"): "visual_projection" for f in ("SigLIP", "SigLIP 2")})  # no image projection


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("family-configs")


def fitted_and_trained(model: AdaptedCLIP, steps: int = 1) -> tuple[torch.Tensor, torch.Tensor, object]:
    g = torch.Generator().manual_seed(0)
    images = torch.randn(8, 3, 32, 32, generator=g)
    labels = torch.arange(len(CLASSES)).repeat(2)
    with torch.no_grad():
        frozen = model.clip.encode_image(images)
    for part in model.parts:
        if part.needs_training_features:
            part.fit(model, TrainFeatures(frozen[:, None], frozen, labels), TrainFeatures(None, frozen, labels))
    log = None
    if model.num_trainable():
        batch = Batch(labels=labels, images=images, features=frozen)
        cfg = TrainConfig(optimizer="sgd", lr=0.5, warmup_epochs=0, batch_size=8)
        log = train(model, lambda epoch: iter([batch]), cfg, total_steps=steps, steps_per_epoch=1,
                    device=torch.device("cpu"), shots=2)
    model.eval()
    return images, frozen, log


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.label)
def test_the_family_is_recognised(config_dir, family: Family):
    assert family_of(build(family, config_dir).model) == family.family


@pytest.mark.parametrize("method", sorted(RECIPES))
@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.label)
def test_every_method_trains_a_step_and_predicts_or_names_part_and_family(config_dir, family: Family, method: str):
    backbone = build(family, config_dir)
    refusing = UNSUPPORTED.get((family.label, method))
    if refusing:
        with pytest.raises(UnsupportedBackboneError, match=rf"part '{refusing}'.*{family.family} backbone family"):
            build_model(backbone, CLASSES, TEMPLATES, get_recipe(method))
        return
    model = build_model(backbone, CLASSES, TEMPLATES, get_recipe(method))
    before = {n: p.detach().clone() for n, p in model.trainable_parameters()}
    images, frozen, log = fitted_and_trained(model)
    if before:
        assert log is not None and log.steps == 1 and torch.isfinite(torch.tensor(log.final_loss))
        moved = [n for n, p in model.trainable_parameters() if not torch.equal(p, before[n])]
        assert moved, f"{method} on {family.label}: no trainable parameter moved in a step"
    batch = Batch(labels=torch.arange(4).repeat(2), images=images, features=frozen)
    logits = model.predict(batch)
    assert logits.shape == (8, len(CLASSES)) and torch.isfinite(logits).all()


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.label)
def test_a_prompt_learner_initialised_from_the_template_reproduces_zero_shot(config_dir, family: Family):
    """CoOp's context initialised from "a photo of a" and spliced after the tokenizer's prefix is the template
    itself: the class features equal the zero-shot ones on every family (causal or bidirectional tower, a start
    token or none, end-of-text or last-position pooling)."""
    model = AdaptedCLIP(build(family, config_dir), CLASSES, TEMPLATES, [build_part("coop_prompt",
                                                                                  {"init": "a photo of a"})])
    with torch.no_grad():
        learned = F.normalize(model.text_features_raw(), dim=-1)
    assert torch.allclose(learned, model.zero_shot_text, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.label)
def test_logits_and_loss_follow_the_model(config_dir, family: Family):
    model = AdaptedCLIP(build(family, config_dir), CLASSES, TEMPLATES, [])
    g = torch.Generator().manual_seed(1)
    images, labels = torch.randn(4, 3, 32, 32, generator=g), torch.arange(4)
    out = model(Batch(labels=labels, images=images))
    cos = out.image @ out.text.t()
    bias = logit_bias(model.clip)
    expected = model.logit_scale * cos + (bias if bias is not None else 0)
    assert torch.allclose(out.logits, expected, atol=1e-5)
    loss, terms = model.loss(out)
    if family.label.startswith("SigLIP"):  # sigmoid scores with a learned bias, and SigLIP's sigmoid loss
        assert model.sigmoid_logits and list(terms) == ["sigmoid"]
        targets = F.one_hot(labels, 4).float()
        ref = F.binary_cross_entropy_with_logits(out.logits, targets, reduction="sum") / 4
        assert float(loss) == pytest.approx(float(ref), rel=1e-5)
        assert torch.allclose(model.probabilities(out.logits), torch.sigmoid(out.logits))
    else:
        assert not model.sigmoid_logits and list(terms) == ["ce"]
        assert float(loss) == pytest.approx(float(F.cross_entropy(out.logits, labels)), rel=1e-6)
        assert torch.allclose(model.probabilities(out.logits).sum(-1), torch.ones(4))


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.label)
def test_lora_merged_into_the_weights_gives_the_adapted_features(config_dir, family: Family):
    """LoRA's update merged into each adapted projection (a fused qkv layer, separate q/k/v layers or
    nn.MultiheadAttention's in-projection) computes what the adapted model computes."""
    model = build_model(build(family, config_dir), CLASSES, TEMPLATES, get_recipe("clip_lora"))
    images, _, _ = fitted_and_trained(model, steps=2)
    with torch.no_grad():
        adapted = model.image_features_raw(Batch(images=images))
        merged = build(family, config_dir).model
        state = merged.state_dict()
        state.update({n: w for n, w in model.adapted_backbone_weights().items()})
        merged.load_state_dict(state)
        assert torch.allclose(merged.encode_image(images), adapted, atol=1e-4)


def test_the_tokenizer_framing_is_read_from_the_tokenizer(config_dir):
    clip_like = token_frame(build(FAMILIES[0], config_dir).tokenizer)
    assert (clip_like.prefix, clip_like.suffix, clip_like.pad) == (1, 1, 0)
    siglip_like = token_frame(StandInTokenizer(16, 100, prefix=(), suffix=(1,), pad=0))
    assert (siglip_like.prefix, siglip_like.suffix) == (0, 1)
    tower = text_tower(build(FAMILIES[2], config_dir).model)
    assert not tower.causal and tower.pool == "last" and not tower.trimmable()


def test_a_prompt_too_long_for_the_context_is_refused(config_dir):
    backbone = build(FAMILIES[2], config_dir)
    with pytest.raises(ValueError, match="do not fit the text context of 32 tokens"):
        AdaptedCLIP(backbone, CLASSES, TEMPLATES, [build_part("coop_prompt", {"n_ctx": 31})])


def test_a_tokenizer_that_needs_a_download_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TokenizerUnavailableError, match=r"ViT-B-16-SigLIP.*timm/ViT-B-16-SigLIP.*HF_HOME"):
        open_tokenizer("ViT-B-16-SigLIP")


@pytest.mark.parametrize("profile, backbone, tag", [("paper-siglip2", "ViT-B-16-SigLIP2", "webli"),
                                                    ("paper-dfn", "ViT-B-16-quickgelu", "dfn2b")])
def test_the_paper_profile_variants_name_real_weights(profile, backbone, tag):
    import open_clip

    p, paper = load_profile(f"profiles/{profile}.yaml"), load_profile("profiles/paper.yaml")
    assert [(b.name, b.pretrained) for b in p.backbones] == [(backbone, tag)]
    assert tag in open_clip.list_pretrained_tags_by_model(backbone)
    runs, paper_runs = p.expand(), paper.expand()  # the paper grid, on the other backbone
    assert len(runs) == len(paper_runs) and {r.backbone for r in runs} == {backbone}
    assert p.name == profile and p.results.endswith(profile)


def test_the_family_table_counts_each_method_or_says_why_not(config_dir):
    names = {f.label: register(f, config_dir) for f in FAMILIES}
    table = family_table(["coop", "vpt_deep"], names, classes=4, shots=2, progress=False,
                         tokenizers={register(f, config_dir): f.tokenizer() for f in FAMILIES if f.stand_in})
    cells = table.set_index("family")
    assert cells.loc["EVA-02", "vpt_deep"].startswith("no (") and "visual prompts" in cells.loc["EVA-02", "vpt_deep"]
    assert cells.loc["SigLIP", "coop"] == f"{16 * 64:,}" and cells.loc["OpenAI / LAION CLIP", "coop"] == f"{16 * 64:,}"
    assert cells.loc["SigLIP 2", "vpt_deep"] == f"{2 * 8 * 64:,}"
