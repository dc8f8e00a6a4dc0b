"""Pretraining the embedded backbone: deterministic to the byte for a seed, with its model card, loadable."""

from __future__ import annotations

import hashlib
import json

from adaptlib.backbones import embedded_checkpoint, load_backbone
from adaptlib.backbones.pretrain import PretrainConfig, pretrain, released_sha256
from adaptlib.utils.paths import REPO_ROOT

RELEASED = REPO_ROOT / "data" / "backbones" / "adaptlib-tiny-seed0" / "model.safetensors"
TINY = PretrainConfig(model="adaptlib-test", corpus_size=256, steps=4, clean_steps=2, batch_size=32, warmup_steps=1,
                      threads=1)


def test_pretraining_is_deterministic_and_writes_a_model_card(tmp_path):
    a, b = tmp_path / "a" / "model.safetensors", tmp_path / "b" / "model.safetensors"
    card = pretrain(TINY, a, progress=False)
    pretrain(TINY, b, progress=False)
    assert a.read_bytes() == b.read_bytes()
    for name in ("model_card.json", "model_card.md", "loss_curve.png"):
        assert (a.parent / name).is_file()
    saved = json.loads((a.parent / "model_card.json").read_text())
    assert saved["seed"] == 0 and saved["steps"] == 4 and len(saved["loss_curve"]) >= 1
    assert saved["sha256"] == hashlib.sha256(a.read_bytes()).hexdigest() == released_sha256(a.parent)
    assert saved["sha256"] in (a.parent / "model_card.md").read_text()
    assert [row["task"] for row in card["zero_shot"]][:2] == ["shape", "colour"] and len(card["zero_shot"]) == 9
    assert "| digits | 10 |" in (a.parent / "model_card.md").read_text()


def test_the_pretrained_checkpoint_loads_as_the_embedded_backbone():
    pretrain(TINY, progress=False)  # to its default place under the data folder
    assert embedded_checkpoint("adaptlib-test", 0).is_file()
    backbone = load_backbone("adaptlib-test", "embedded")
    assert backbone.weights_id.startswith("embedded-")


def test_the_released_checkpoint_is_the_one_its_model_card_names():
    """The committed embedded backbone (the weights of the committed figures and calibration) is intact."""
    path = RELEASED
    assert path.is_file(), f"{path}: the released checkpoint is committed; git checkout data/backbones"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == released_sha256(path.parent)
