import copy

import pytest
import torch

from adaptlib.analysis.activations import image_layer_activations, text_layer_activations
from adaptlib.analysis.cka import layerwise_cka
from adaptlib.backbones import load_backbone


@pytest.fixture(scope="module")
def backbone():
    return load_backbone("adaptlib-test")


@pytest.fixture(scope="module")
def images(backbone):
    return torch.randn(6, 3, backbone.image_size, backbone.image_size, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def tokens(backbone):
    return backbone.tokenizer(["a photo of a dog.", "a cat", "a centered satellite photo of a river.", "x"])


def hooks(transformer) -> int:
    return sum(len(blk._forward_hooks) for blk in transformer.resblocks)


def test_image_activations_shape_batching_and_self_cka(backbone, images):
    model = backbone.model
    acts = image_layer_activations(model, images, batch_size=4)
    width = model.visual.transformer.width
    assert len(acts) == len(model.visual.transformer.resblocks) == 2
    assert all(a.shape == (6, width) and a.dtype == torch.float32 for a in acts)
    again = image_layer_activations(model, images, batch_size=1)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(acts, again))
    assert layerwise_cka(acts, again) == pytest.approx([1.0, 1.0])
    assert hooks(model.visual.transformer) == 0


def test_last_image_layer_is_what_the_model_pools(backbone, images):
    model = backbone.model
    cls = image_layer_activations(model, images)[-1]
    with torch.no_grad():
        assert torch.allclose(model.visual.ln_post(cls) @ model.visual.proj, model.encode_image(images), atol=1e-5)


def test_text_activations_take_the_eot_token(backbone, tokens):
    model = backbone.model
    acts = text_layer_activations(model, tokens, batch_size=3)
    assert len(acts) == len(model.transformer.resblocks) == 2
    assert all(a.shape == (len(tokens), model.transformer.width) for a in acts)
    with torch.no_grad():
        pooled = model.ln_final(acts[-1]) @ model.text_projection
        assert torch.allclose(pooled, model.encode_text(tokens), atol=1e-5)
    assert layerwise_cka(acts, text_layer_activations(model, tokens)) == pytest.approx([1.0, 1.0])
    assert hooks(model.transformer) == 0


def test_adapted_copy_differs_only_from_the_changed_layer_on(backbone, images):
    frozen = backbone.model
    adapted = copy.deepcopy(frozen)
    with torch.no_grad():
        for p in adapted.visual.transformer.resblocks[1].mlp.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    cka = layerwise_cka(image_layer_activations(frozen, images), image_layer_activations(adapted, images))
    assert cka[0] == pytest.approx(1.0)
    assert cka[1] < 0.999


def test_hooks_removed_and_modes_restored_on_error(backbone, images):
    model = backbone.model
    model.train()
    model.visual.ln_post.eval()
    try:
        with pytest.raises(RuntimeError):
            image_layer_activations(model, images[:, :, :-8, :])  # too few patches for the position embedding
        assert hooks(model.visual.transformer) == 0
        assert model.training and model.visual.transformer.training and not model.visual.ln_post.training
    finally:
        model.eval()


@pytest.mark.parametrize("batch_size,n,message", [(0, 2, "batch_size"), (4, 0, "no inputs")])
def test_bad_arguments(backbone, images, tokens, batch_size, n, message):
    with pytest.raises(ValueError, match=message):
        image_layer_activations(backbone.model, images[:n], batch_size=batch_size)
    with pytest.raises(ValueError, match=message):
        text_layer_activations(backbone.model, tokens[:n], batch_size=batch_size)
