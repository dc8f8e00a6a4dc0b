"""Trainable parameters on ViT-B/16 equal the reference implementations' (random weights: the same shapes)."""

from __future__ import annotations

import copy

import pytest
import torch

from adaptlib.cli import main
from adaptlib.methods.params import count_parameters

# method: trainable parameters of the reference code on ViT-B/16 (study brief; 10 classes, 16 shots where it matters)
REFERENCE = {
    "zeroshot": 0,
    "coop": 8_192,  # 16 context vectors x 512
    "cocoop": 35_360,  # 4 x 512 + meta-net 512-32-512
    "kgcoop": 2_048,  # 4 x 512
    "clip_adapter": 131_072,  # 512 -> 128 -> 512, no biases
    "tip_adapter": 0,
    "tip_adapter_f": 81_920,  # cache keys: 10 classes x 16 shots x 512
    "layernorm_image": 39_936,
    "layernorm_text": 25_600,
    "bitfit_image": 82_944,
    "bitfit_text": 55_296,
    "clipfit": 46_080,  # 12 text c_proj biases x 512 + 39,936 image LayerNorm parameters
    "vpt_deep": 73_728,  # 8 tokens x 12 layers x 768
    "text_adapter": 262_656,  # 512 x 512 + 512
    "apex": 282_112,
    "clip_lora": 184_320,  # r=2 on q, k, v of 24 layers
    "linear_probe": 5_130,  # 10 x (512 + 1)
    # deep vision-language prompts and the projection (MaPLe's published 3.55M; PromptSRC's 46K from its config)
    "maple": 3_555_072,  # context 2 x 512 + deep text 8 x 2 x 512 + 9 couplings 512 -> 768 with bias
    "promptsrc": 46_080,  # text 4 x 512 + deep text 8 x 4 x 512 + vision 9 x 4 x 768 (GPA and losses: none)
    "prolip": 393_216,  # visual.proj 768 x 512
    # the few-shot probes, each the reference code's own count for 10 classes
    "zs_lp": 5_120,  # prototypes 10 x 512 (jusiro/CLAP trainers/adapters.py AdapterMethod.prototypes)
    "clap": 5_120,  # the same prototypes; the multipliers are fixed, not trained (alpha_constraint, a plain tensor)
    "lp_plus_plus": 5_140,  # nn.Linear(512, 10) with bias + alpha_vec [1, 10] (methods/linear_probe_p2.py)
    "gda": 5_130,  # W 512 x 10 + b 10, in closed form (mrflogs/ICLR24 main_few_shots.py), counted as the probe's
}


@pytest.fixture(scope="module")
def vit_b16():
    from adaptlib.backbones import load_backbone

    return load_backbone("ViT-B-16", None)


@pytest.mark.parametrize("method, expected", REFERENCE.items())
def test_vit_b16_counts_match_the_reference_code(vit_b16, method, expected):
    assert count_parameters(method, backbone=copy.deepcopy(vit_b16))["trainable"] == expected


def test_maple_couples_512_to_768_with_clones_of_one_layer(vit_b16):
    """MaPLe's couplings on ViT-B/16: text width 512 to image width 768 for the first block's context and each of
    the 8 deeper blocks' text tokens; the deeper ones start as clones of one layer (the code's _get_clones)."""
    from adaptlib.methods import build_model, get_recipe

    model = build_model(copy.deepcopy(vit_b16), [f"class {i}" for i in range(3)], ["a photo of a {}."],
                        get_recipe("maple"))
    part = model.parts[0]
    assert (part.couple.in_features, part.couple.out_features, len(part.couplings)) == (512, 768, 8)
    assert [tuple(d.shape) for d in part.deep] == [(2, 512)] * 8 and tuple(part.visual_tokens(8).shape) == (2, 768)
    assert part.visual_tokens(9) is None and part.text_tokens(9) is None
    assert all(torch.equal(c.weight, part.couplings[0].weight) and torch.equal(c.bias, part.couplings[0].bias)
               for c in part.couplings)
    assert not torch.equal(part.couple.weight, part.couplings[0].weight)


def test_a_hybrid_counts_the_sum_of_its_parts(vit_b16):
    counts = count_parameters("hybrid", parts=[("coop_prompt", {}), ("clip_adapter", {}), ("layernorm", {})],
                              backbone=copy.deepcopy(vit_b16))
    assert counts["per_part"] == {"coop_prompt": 8_192, "clip_adapter": 131_072, "layernorm": 65_536}
    assert counts["trainable"] == 8_192 + 131_072 + 65_536


def test_params_command_prints_the_count(capsys):
    assert main(["params", "--method", "apex", "--backbone", "ViT-B-16"]) == 0
    assert "282,112 trainable parameters" in capsys.readouterr().out
