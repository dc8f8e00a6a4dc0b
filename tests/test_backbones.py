"""Loading backbones: project configs, checkpoint files, QuickGELU for OpenAI weights, clear errors."""

from __future__ import annotations

import open_clip
import pytest
import torch

from adaptlib.backbones import BackboneUnavailableError, embedded_checkpoint, load_backbone
from adaptlib.backbones.text import encode_token_ids, zero_shot_classifier


def test_project_configs_are_registered():
    assert {"adaptlib-tiny", "adaptlib-test"} <= set(open_clip.list_models())
    bb = load_backbone("adaptlib-test")
    assert bb.image_size == 32 and bb.weights_id == "random-seed0"
    assert all(p.dtype == torch.float32 for p in bb.model.parameters())


def test_random_init_is_seeded():
    a, b, c = (load_backbone("adaptlib-test", seed=s) for s in (0, 0, 1))
    pa, pb, pc = (next(x.model.visual.parameters()) for x in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_a_backbone_built_again_in_a_process_is_a_copy_that_leaves_the_generator_as_the_build_does():
    import adaptlib.backbones.load as L

    L._BUILT.clear()
    built = load_backbone("adaptlib-test", seed=4)  # built
    after_build = torch.rand(3)
    copied = load_backbone("adaptlib-test", seed=4)  # from the process's copy
    assert torch.equal(torch.rand(3), after_build)  # a part's random init, drawn next, is the same
    for (k, v), (k2, v2) in zip(built.model.state_dict().items(), copied.model.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    with torch.no_grad():  # a run that trains backbone weights in place does not change the next run's
        next(copied.model.parameters()).add_(1.0)
    again = load_backbone("adaptlib-test", seed=4)
    assert torch.equal(next(again.model.parameters()), next(built.model.parameters()))
    other = load_backbone("adaptlib-test", seed=5)  # another seed is another backbone, not the copy
    assert not torch.equal(next(other.model.parameters()), next(again.model.parameters()))


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_checkpoint_file_roundtrip(tmp_path, suffix):
    src = load_backbone("adaptlib-test", seed=3)
    path = tmp_path / f"weights{suffix}"
    state = {k: v.contiguous() for k, v in src.model.state_dict().items()}
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    loaded = load_backbone("adaptlib-test", str(path))
    assert loaded.weights_id.startswith("file-")
    for (k, v), (k2, v2) in zip(src.model.state_dict().items(), loaded.model.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)


def test_checkpoint_of_another_model_is_a_clear_error(tmp_path):
    path = tmp_path / "tiny.pt"
    torch.save(load_backbone("adaptlib-test").model.state_dict(), path)
    with pytest.raises(BackboneUnavailableError, match="does not fit model 'adaptlib-tiny'"):
        load_backbone("adaptlib-tiny", str(path))


def test_missing_embedded_backbone_says_how_to_make_it():
    assert not embedded_checkpoint().exists()
    with pytest.raises(BackboneUnavailableError, match="make pretrain"):
        load_backbone("adaptlib-tiny", "embedded")


@pytest.mark.parametrize("name, pretrained, message", [
    ("ViT-B-16", "not-a-tag", "neither a tag"),
    ("ViT-B-61", None, "Did you mean 'ViT-B-16'"),
])
def test_bad_names(name, pretrained, message):
    with pytest.raises((BackboneUnavailableError, KeyError), match=message):
        load_backbone(name, pretrained)


def test_offline_tag_says_where_to_put_a_checkpoint(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import time
    with pytest.raises(BackboneUnavailableError, match="--pretrained /path/to/ViT-B-16.pt"):
        load_backbone("ViT-B-16", "openai", cache_dir=tmp_path)


def test_openai_weights_get_quickgelu(monkeypatch):
    seen = {}
    real_create_model = open_clip.create_model

    def fake_create_model(name, pretrained=None, **kwargs):
        seen.update(kwargs, name=name, pretrained=pretrained)
        return real_create_model("adaptlib-test", force_quick_gelu=kwargs.get("force_quick_gelu", False))

    monkeypatch.setattr(open_clip, "create_model", fake_create_model)
    bb = load_backbone("ViT-B-16", "openai")
    assert seen["force_quick_gelu"] is True and bb.info["quick_gelu"] is True
    assert isinstance(bb.model.transformer.resblocks[0].mlp.gelu, open_clip.transformer.QuickGELU)
    assert bb.weights_id.endswith("-quickgelu")


def test_trimmed_text_encoding_matches_open_clip():
    bb = load_backbone("adaptlib-test")
    tokens = bb.tokenizer(["a red circle.", "a photo of a large striped blue star on the left."])
    torch.testing.assert_close(encode_token_ids(bb.model, tokens), bb.model.encode_text(tokens), atol=1e-5, rtol=1e-5)


def test_zero_shot_classifier_averages_normalised_templates():
    bb = load_backbone("adaptlib-test")
    templates = ["a photo of a {}.", "a {}."]
    weights = zero_shot_classifier(bb, ["cat", "dog"], templates)
    with torch.no_grad():
        f = bb.model.encode_text(bb.tokenizer(["a photo of a cat.", "a cat."]))
    expected = torch.nn.functional.normalize(torch.nn.functional.normalize(f, dim=-1).mean(0), dim=-1)
    torch.testing.assert_close(weights[0], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights.norm(dim=-1), torch.ones(2))
