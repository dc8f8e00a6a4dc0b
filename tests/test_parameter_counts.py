"""Trainable parameters on ViT-B/16 equal the reference implementations' (random weights: the same shapes)."""

from __future__ import annotations

import copy

import pytest

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
}


@pytest.fixture(scope="module")
def vit_b16():
    from adaptlib.backbones import load_backbone

    return load_backbone("ViT-B-16", None)


@pytest.mark.parametrize("method, expected", REFERENCE.items())
def test_vit_b16_counts_match_the_reference_code(vit_b16, method, expected):
    assert count_parameters(method, backbone=copy.deepcopy(vit_b16))["trainable"] == expected


def test_a_hybrid_counts_the_sum_of_its_parts(vit_b16):
    counts = count_parameters("hybrid", parts=[("coop_prompt", {}), ("clip_adapter", {}), ("layernorm", {})],
                              backbone=copy.deepcopy(vit_b16))
    assert counts["per_part"] == {"coop_prompt": 8_192, "clip_adapter": 131_072, "layernorm": 65_536}
    assert counts["trainable"] == 8_192 + 131_072 + 65_536


def test_params_command_prints_the_count(capsys):
    assert main(["params", "--method", "apex", "--backbone", "ViT-B-16"]) == 0
    assert "282,112 trainable parameters" in capsys.readouterr().out
