"""The Part contract, checked for every registered part (table-driven, as peft tests every tuner): a new part
gets every check here by its registry line alone."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from adaptlib.methods import PARTS, RECIPES, build_part
from adaptlib.methods.model import AdaptedCLIP
from adaptlib.methods.params import count_parameters
from adaptlib.methods.parts.base import ClassesNotSupported
from adaptlib.methods.state import load_adapted_state, rebuild_model, save_adapted_state
from adaptlib.methods.step import Batch, TrainFeatures
from adaptlib.methods.train_config import TrainConfig
from adaptlib.training.loop import train

CLASSES = ["cat", "dog", "red circle", "ship"]
NEW_CLASSES = ["blue square", "tree", "car"]
TEMPLATES = ["a photo of a {}.", "a drawing of a {}."]
TINY = {"name": "adaptlib-test", "pretrained": None, "quick_gelu": None}


def trained_model(backbone, name: str, steps: int = 2) -> tuple[AdaptedCLIP, torch.Tensor, torch.Tensor]:
    """(a model of part ``name`` alone, fitted and trained a few steps at a high rate, probe images, their frozen
    features)."""
    g = torch.Generator().manual_seed(0)
    model = AdaptedCLIP(backbone, CLASSES, TEMPLATES, [build_part(name)])
    images = torch.randn(8, 3, 32, 32, generator=g)
    labels = torch.arange(len(CLASSES)).repeat(2)
    with torch.no_grad():
        frozen = model.clip.encode_image(images)
    for part in model.parts:
        if part.needs_training_features:
            views = frozen[:, None] + 0.01 * torch.randn(8, 2, frozen.shape[1], generator=g)
            part.fit(model, TrainFeatures(views, frozen, labels), TrainFeatures(None, frozen, labels))
    if model.num_trainable():
        batch = Batch(labels=labels, images=images, features=frozen)
        cfg = TrainConfig(optimizer="sgd", lr=0.5, warmup_epochs=0, batch_size=8)
        train(model, lambda epoch: iter([batch]), cfg, total_steps=steps, steps_per_epoch=1,
              device=torch.device("cpu"), shots=2)
    model.eval()
    return model, images, frozen


@pytest.fixture(params=sorted(PARTS))
def part_name(request) -> str:
    return request.param


def test_the_registry_key_is_the_parts_name(part_name):
    assert PARTS[part_name].name == part_name


def test_every_trainable_parameter_has_exactly_one_owner(tiny_backbone_factory, part_name):
    model, _, _ = trained_model(tiny_backbone_factory(), part_name)
    trainable = {id(p) for _, p in model.trainable_parameters()}
    owned = [id(p) for part in model.parts for p in model.parameters_of(part)]
    assert len(owned) == len(set(owned)) and set(owned) == trainable


def test_per_part_counts_add_up_to_the_total(tiny_backbone_factory, part_name):
    model, _, _ = trained_model(tiny_backbone_factory(), part_name)
    total = model.num_trainable() + model.num_fitted()
    assert sum(model.parameter_count(p) for p in model.parts) == total


@pytest.mark.parametrize("method", sorted(RECIPES))
def test_params_per_part_add_up_for_every_method(tiny_backbone_factory, method):
    counts = count_parameters(method, backbone=tiny_backbone_factory(), classes=4, shots=2)
    assert sum(counts["per_part"].values()) == counts["trainable"]


def test_a_part_that_leaves_an_encoder_alone_leaves_its_features_unchanged(tiny_backbone_factory, part_name):
    backbone = tiny_backbone_factory()
    reference = AdaptedCLIP(tiny_backbone_factory(), CLASSES, TEMPLATES, [])
    model, images, _ = trained_model(backbone, part_name)
    part = model.parts[0]
    with torch.no_grad():
        if not part.modifies_image_encoder:
            torch.testing.assert_close(model.clip.encode_image(images), reference.clip.encode_image(images),
                                       rtol=0, atol=0)
        if not (part.modifies_text_encoder or part.is_prompt_learner):
            torch.testing.assert_close(model.text_features_raw(), reference.zero_shot_text, rtol=0, atol=0)


def test_switching_every_part_off_gives_back_zero_shot(tiny_backbone_factory, part_name):
    model, images, frozen = trained_model(tiny_backbone_factory(), part_name)
    zero_shot = model.logit_scale * F.normalize(frozen, dim=-1) @ model.zero_shot_text.t()
    with model.frozen_view():
        off = model.predict(Batch(images=images, features=frozen))
    torch.testing.assert_close(off, zero_shot, atol=1e-5, rtol=1e-5)
    assert all(p.enabled for p in model.parts)  # and back on afterwards


def test_set_classes_works_or_raises_the_documented_error(tiny_backbone_factory, part_name):
    model, images, frozen = trained_model(tiny_backbone_factory(), part_name)
    before = model.predict(Batch(images=images, features=frozen))
    try:
        model.set_classes(NEW_CLASSES)
    except ClassesNotSupported:
        assert model.parts[0].class_specific, "only a class-specific part may refuse new classes"
    else:
        assert model.predict(Batch(images=images, features=frozen)).shape == (len(images), len(NEW_CLASSES))
    model.set_classes(CLASSES)
    torch.testing.assert_close(model.predict(Batch(images=images, features=frozen)), before, atol=1e-5, rtol=1e-5)


def test_saved_state_round_trips(tiny_backbone_factory, part_name, tmp_path):
    model, images, frozen = trained_model(tiny_backbone_factory(), part_name)
    path = save_adapted_state(model, tmp_path / "state.safetensors", TINY, metadata={"note": "test"})
    rebuilt = rebuild_model(path)
    batch = Batch(images=images, features=frozen)
    torch.testing.assert_close(rebuilt.predict(batch), model.predict(batch), rtol=0, atol=0)
    state = load_adapted_state(path)
    assert state.metadata == {"note": "test"} and set(state.initial) == set(state.final)
    adapted = model.adapted_backbone_weights()
    assert set(adapted) == set(state.final)
    for name, value in adapted.items():
        torch.testing.assert_close(state.final[name], value, rtol=0, atol=0)
    frozen_backbone = dict(tiny_backbone_factory().model.named_parameters())
    for name, value in state.initial.items():
        torch.testing.assert_close(value, frozen_backbone[name].detach(), rtol=0, atol=0)


def test_a_damaged_state_file_is_refused_with_its_path(tmp_path):
    path = tmp_path / "state.safetensors"
    path.write_bytes(b"not a state file")
    with pytest.raises(ValueError, match="state.safetensors"):
        load_adapted_state(path)


def test_two_parts_training_the_same_backbone_parameter_are_refused(tiny_backbone_factory):
    with pytest.raises(ValueError, match="one owner"):
        AdaptedCLIP(tiny_backbone_factory(), CLASSES, TEMPLATES,
                    [build_part("layernorm"), build_part("clipfit_params")])
