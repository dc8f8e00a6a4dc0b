"""The README's promise, proved: a new method is one part class plus one registry line. Two small parts defined
here, outside the package, run end to end through the public registry: a run, its parameter count, a hybrid
with an existing part, and its saved state for drift."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from adaptlib.analysis import parameter_drift
from adaptlib.methods import PARTS, register_part
from adaptlib.methods.params import count_parameters
from adaptlib.methods.parts.base import Part, PartConfig
from adaptlib.methods.parts.selections import ParameterSelection
from adaptlib.methods.state import load_adapted_state, rebuild_model
from adaptlib.runs.run import RunContext, execute
from adaptlib.runs.spec import RunSpec


@dataclass
class TemperatureConfig(PartConfig):
    init: float = 1.0


class LogitTemperature(Part):
    """A learned multiplier of the logits: a new parameter of the part's own."""

    name = "test_logit_temperature"
    config_class = TemperatureConfig

    def attach(self, model) -> None:
        self.temperature = nn.Parameter(torch.tensor(float(self.config.init)))

    def logits(self, logits, out):
        return logits * self.temperature


@dataclass
class PostNormConfig(PartConfig):
    pass


class PostNormTuning(ParameterSelection):
    """The image tower's final LayerNorm only: existing backbone parameters, trained in place."""

    name = "test_post_norm"
    config_class = PostNormConfig

    def selected(self, module_name, module, param_name) -> bool:
        return module_name == "visual.ln_post"


@pytest.fixture(autouse=True, scope="module")
def registered():
    for cls in (LogitTemperature, PostNormTuning):
        register_part(cls)
    yield
    for cls in (LogitTemperature, PostNormTuning):
        PARTS.pop(cls.name)


def test_the_new_parts_count_their_parameters(tiny_backbone_factory):
    counts = count_parameters("hybrid", parts=[("test_logit_temperature", {}), ("test_post_norm", {}),
                                                ("clip_adapter", {})], backbone=tiny_backbone_factory())
    width = tiny_backbone_factory().model.visual.ln_post.weight.numel()
    assert counts["per_part"]["test_logit_temperature"] == 1
    assert counts["per_part"]["test_post_norm"] == 2 * width
    assert counts["trainable"] == sum(counts["per_part"].values())


def test_a_new_method_runs_end_to_end_with_its_state(tmp_path):
    spec = RunSpec("hybrid", dataset="colour", shots=2, seed=1, backbone="adaptlib-test", pretrained=None,
                   crop_scale=(1.0, 1.0), train={"max_steps": 3, "lr": 0.05},
                   hybrid_parts=(("test_logit_temperature", {"init": 1.5}), ("test_post_norm", {})),
                   label="temperature+postnorm", save_state=True)
    result = execute(spec, RunContext(state_dir=str(tmp_path / "states")))
    assert 0.0 <= result["metrics"]["accuracy"] <= 1.0
    assert result["train"]["steps"] == 3
    state = load_adapted_state(result["state_file"])
    assert set(state.final) == {"visual.ln_post.weight", "visual.ln_post.bias"}
    drift = parameter_drift(state.initial, state.final)
    assert len(drift) == 2 and (drift["sq_l2"] > 0).all()
    assert state.part_tensors["test_logit_temperature"]["temperature"].item() != 1.5  # it trained
    model = rebuild_model(state)
    assert [p.name for p in model.parts] == ["test_logit_temperature", "test_post_norm"]
