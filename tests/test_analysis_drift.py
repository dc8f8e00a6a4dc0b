import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from adaptlib.analysis.drift import (
    ParamName,
    count_layers,
    drift_by_layer,
    parameter_drift,
    parse_param_name,
    prompt_drift,
)

L12 = {"image": 12, "text": 12}


@pytest.mark.parametrize("name,expected", [
    ("visual.transformer.resblocks.3.ln_1.weight", ("image", 3, "ln_1", "weight")),
    ("visual.transformer.resblocks.0.attn.in_proj_weight", ("image", 0, "attn.in_proj", "weight")),
    ("visual.transformer.resblocks.0.attn.in_proj_bias", ("image", 0, "attn.in_proj", "bias")),
    ("transformer.resblocks.5.attn.out_proj.bias", ("text", 5, "attn.out_proj", "bias")),
    ("transformer.resblocks.11.mlp.c_proj.bias", ("text", 11, "mlp.c_proj", "bias")),
    ("transformer.resblocks.0.mlp.c_fc.weight", ("text", 0, "mlp.c_fc", "weight")),
    ("transformer.resblocks.7.ln_2.bias", ("text", 7, "ln_2", "bias")),
    ("visual.conv1.weight", ("image", -1, "conv1", "weight")),
    ("visual.class_embedding", ("image", -1, "class_embedding", "weight")),
    ("visual.positional_embedding", ("image", -1, "positional_embedding", "weight")),
    ("visual.ln_pre.bias", ("image", -1, "ln_pre", "bias")),
    ("visual.ln_post.weight", ("image", 12, "ln_post", "weight")),
    ("visual.proj", ("image", 12, "proj", "weight")),
    ("token_embedding.weight", ("text", -1, "token_embedding", "weight")),
    ("positional_embedding", ("text", -1, "positional_embedding", "weight")),
    ("ln_final.bias", ("text", 12, "ln_final", "bias")),
    ("text_projection", ("text", 12, "text_projection", "weight")),
    ("logit_scale", ("shared", -1, "logit_scale", "weight")),
    ("model.visual.transformer.resblocks.2.ln_2.bias", ("image", 2, "ln_2", "bias")),
    ("clip.transformer.resblocks.1.mlp.c_fc.weight", ("text", 1, "mlp.c_fc", "weight")),
    ("clip_model.visual.ln_post.bias", ("image", 12, "ln_post", "bias")),
    ("prompt_learner.ctx", ("other", -1, "prompt_learner.ctx", "weight")),
])
def test_parse_param_name(name, expected):
    assert parse_param_name(name, L12) == ParamName(*expected)


def test_count_layers():
    names = ["visual.transformer.resblocks.0.ln_1.weight", "visual.transformer.resblocks.3.ln_1.weight",
             "transformer.resblocks.1.ln_1.weight", "ln_final.weight"]
    assert count_layers(names) == {"image": 4, "text": 2}


def state():
    return {
        "visual.ln_pre.weight": torch.ones(4),
        "visual.transformer.resblocks.0.ln_1.weight": torch.ones(4),
        "visual.transformer.resblocks.0.ln_1.bias": torch.zeros(4),
        "visual.transformer.resblocks.0.mlp.c_fc.weight": torch.full((2, 8), 0.5),
        "transformer.resblocks.0.mlp.c_proj.bias": torch.ones(16),
        "ln_final.weight": torch.ones(4),
        "position_ids": torch.arange(4),
    }


def adapted():
    s = copy.deepcopy(state())
    s["visual.ln_pre.weight"] += 0.5  # ||d||^2 = 4 * 0.25 = 1, ||theta0|| = 2
    s["visual.transformer.resblocks.0.ln_1.bias"] += torch.tensor([3.0, 4.0, 0, 0])  # from zero: rel inf
    s["visual.transformer.resblocks.0.ln_1.weight"][0] += 1.0
    s["transformer.resblocks.0.mlp.c_proj.bias"][:4] += 0.001
    s["position_ids"] += 1  # integer buffer: never reported
    return s


def test_parameter_drift_values():
    df = parameter_drift(state(), adapted()).set_index("name")
    assert set(df.index) == {"visual.ln_pre.weight", "visual.transformer.resblocks.0.ln_1.weight",
                             "visual.transformer.resblocks.0.ln_1.bias", "transformer.resblocks.0.mlp.c_proj.bias"}
    pre = df.loc["visual.ln_pre.weight"]
    assert (pre.tower, pre.layer, pre.module, pre.param) == ("image", -1, "ln_pre", "weight")
    assert pre.sq_l2 == pytest.approx(1.0) and pre.l2 == pytest.approx(1.0)
    assert pre.rel_l2 == pytest.approx(0.5) and pre.rms == pytest.approx(0.5)
    bias = df.loc["visual.transformer.resblocks.0.ln_1.bias"]
    assert bias.sq_l2 == pytest.approx(25.0) and bias.rms == pytest.approx(2.5) and bias.rel_l2 == math.inf
    text = df.loc["transformer.resblocks.0.mlp.c_proj.bias"]
    assert (text.tower, text.layer) == ("text", 0)
    step = float(np.float32(1.001)) - 1.0  # differences are taken in float64 of the stored float32 values
    assert text.sq_l2 == pytest.approx(4 * step**2, rel=1e-12)
    assert df["changed"].all() and not df["trainable"].any()


def test_trainable_rows_kept_and_atol_hides_tiny_changes():
    df = parameter_drift(state(), adapted(), trainable=["ln_final.weight"], atol=0.01).set_index("name")
    assert "transformer.resblocks.0.mlp.c_proj.bias" not in df.index  # 1e-3 < atol
    row = df.loc["ln_final.weight"]
    assert bool(row.trainable) and not bool(row.changed)
    assert row.sq_l2 == 0.0 and row.rel_l2 == 0.0 and (row.tower, row.layer) == ("text", 1)


def test_modules_are_accepted():
    frozen = nn.Linear(3, 2)
    tuned = copy.deepcopy(frozen)
    with torch.no_grad():
        tuned.bias += 1.0
    df = parameter_drift(frozen, tuned)
    assert df["name"].tolist() == ["bias"] and df["sq_l2"].iloc[0] == pytest.approx(2.0)


@pytest.mark.parametrize("frozen,tuned,kwargs,message", [
    ({"a": torch.ones(2)}, {"model.a": torch.ones(2)}, {}, "share no parameter names"),
    ({"a": torch.ones(2)}, {"a": torch.ones(3)}, {}, "a: shapes differ"),
    ({"a": torch.ones(2)}, {"a": torch.ones(2)}, {"trainable": ["b"]}, "trainable names"),
])
def test_parameter_drift_errors(frozen, tuned, kwargs, message):
    with pytest.raises(ValueError, match=message):
        parameter_drift(frozen, tuned, **kwargs)


def test_drift_by_layer_treats_a_layer_as_one_vector():
    df = parameter_drift(state(), adapted())
    by_layer = drift_by_layer(df).set_index(["tower", "layer"])
    assert list(by_layer.index) == [("image", -1), ("image", 0), ("text", 0)]
    layer0 = by_layer.loc[("image", 0)]
    assert layer0.n_tensors == 2 and layer0.numel == 8
    assert layer0.sq_l2 == pytest.approx(26.0) and layer0.l2 == pytest.approx(math.sqrt(26))
    assert layer0.rel_l2 == pytest.approx(math.sqrt(26) / 2)  # ||theta0|| = sqrt(4 + 0)
    assert layer0.rms == pytest.approx(math.sqrt(26 / 8))
    fine = drift_by_layer(df, by=("tower", "layer", "param"))
    assert len(fine) == 4


def test_prompt_drift_shared_context():
    init = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    learned = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0]])
    df = prompt_drift(torch.tensor(init), torch.tensor(learned))
    assert df["class"].tolist() == [-1, -1, -1] and df["token"].tolist() == [0, 1, 2]
    assert df["l2"].tolist() == pytest.approx([0.0, 1.0, 2.0])
    assert df["rel_l2"].tolist() == pytest.approx([0.0, 1.0, math.sqrt(2)])
    assert df["init_norm"].tolist() == pytest.approx([1.0, 1.0, math.sqrt(2)])
    assert df["cosine"].tolist() == pytest.approx([1.0, 1.0, 0.0])


def test_prompt_drift_class_specific_from_one_init():
    init = np.array([[1.0, 0.0], [0.0, 1.0]])  # [M=2, W=2], shared by both classes
    learned = np.stack([init, -init])  # class 1 flipped
    df = prompt_drift(init, learned)
    assert df["class"].tolist() == [0, 0, 1, 1] and df["token"].tolist() == [0, 1, 0, 1]
    assert df["cosine"].tolist() == pytest.approx([1.0, 1.0, -1.0, -1.0])
    assert df["l2"].tolist() == pytest.approx([0.0, 0.0, 2.0, 2.0])


@pytest.mark.parametrize("init_shape,learned_shape", [((2, 3), (2, 4)), ((3, 2, 3), (2, 2, 3)), ((4,), (4,))])
def test_prompt_drift_shape_errors(init_shape, learned_shape):
    with pytest.raises(ValueError):
        prompt_drift(np.ones(init_shape), np.ones(learned_shape))
