"""Random-weight models of every backbone family, built from open_clip's own configs of the real models with the
sizes shrunk (no download): the same classes, towers, pooling, masks and logit rules, small enough for a test.

A timm image tower is shrunk by registering a small timm model of the same class with the real model's
structural arguments (SigLIP: no class token, attention-pool head; EVA-02: separate q/k/v projections, SwiGLU,
rotary position embeddings) and swapping its name into the config. SigLIP's tokenizers come from the Hugging
Face hub, so their models get a stand-in tokenizer with SigLIP's framing.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import open_clip
import timm
from timm.models import register_model
from timm.models.eva import Eva
from timm.models.vision_transformer import VisionTransformer

from adaptlib.backbones import load_backbone
from adaptlib.backbones.tokenizers import StandInTokenizer, siglip_stand_in

_TIMM_ONLY = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir", "pretrained")


def _clean(kwargs: dict) -> dict:
    return {k: v for k, v in kwargs.items() if k not in _TIMM_ONLY}


if "adaptlib_test_siglip_vit" not in timm.list_models():
    @register_model
    def adaptlib_test_siglip_vit(pretrained: bool = False, **kwargs) -> VisionTransformer:
        """vit_base_patch16_siglip_224's arguments at 32 pixels, width 64, two blocks."""
        return VisionTransformer(**{**dict(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=2,
                                           class_token=False, global_pool="map"), **_clean(kwargs)})

    @register_model
    def adaptlib_test_eva02(pretrained: bool = False, **kwargs) -> Eva:
        """eva02_base_patch16_clip_224's arguments at 32 pixels, width 64, two blocks."""
        return Eva(**{**dict(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=2, qkv_fused=False,
                             mlp_ratio=4 * 2 / 3, swiglu_mlp=True, scale_mlp=True, scale_attn_inner=True,
                             use_rot_pos_emb=True, ref_feat_shape=(4, 4), global_pool="token"), **_clean(kwargs)})


SMALL_TEXT = dict(width=64, heads=2, layers=2)


@dataclass(frozen=True)
class Family:
    """A family's test model: the real model it mirrors and how it is shrunk."""

    label: str  # the family as the README's table names it
    real: str  # open_clip's model name
    family: str  # adaptlib.backbones.family's name for it
    timm_model: str | None = None
    stand_in: bool = False  # the real tokenizer is a download: SigLIP framing instead
    bos: bool = False  # the stand-in starts every text with a begin token (SigLIP 2's Gemma tokenizer: <bos> = 2)

    @property
    def test_name(self) -> str:
        return "adaptlib-test-" + self.real.lower()

    def config(self) -> dict:
        cfg = copy.deepcopy(open_clip.get_model_config(self.real))
        text = cfg["text_cfg"]
        text.update(SMALL_TEXT, context_length=32)
        if self.stand_in:
            text.pop("hf_tokenizer_name", None)
            text["vocab_size"] = 1000
        vision = cfg["vision_cfg"]
        if self.timm_model:
            vision.update(timm_model_name=self.timm_model, image_size=32)
        else:
            vision.update(image_size=32, patch_size=8, width=64, layers=2)
        cfg["embed_dim"] = 64  # SigLIP's tower has no projection: the joint space is the trunk's width
        return cfg

    def tokenizer(self):
        if not self.stand_in:
            return None
        return StandInTokenizer(32, 1000, prefix=(2,), suffix=(1,), pad=0) if self.bos else siglip_stand_in(32, 1000)


FAMILIES = [
    Family("OpenAI / LAION CLIP", "ViT-B-16", "open_clip ViT"),
    Family("MetaCLIP / DFN (QuickGELU)", "ViT-B-16-quickgelu", "open_clip ViT"),
    Family("SigLIP", "ViT-B-16-SigLIP", "timm ViT", "adaptlib_test_siglip_vit", stand_in=True),
    Family("SigLIP 2", "ViT-B-16-SigLIP2", "timm ViT", "adaptlib_test_siglip_vit", stand_in=True, bos=True),
    Family("EVA-02", "EVA02-B-16", "timm EVA", "adaptlib_test_eva02"),
]
_REGISTERED: set[str] = set()


def register(family: Family, folder: Path) -> str:
    """Write the family's shrunk config where open_clip finds it; its model name."""
    if family.test_name not in _REGISTERED:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{family.test_name}.json").write_text(json.dumps(family.config()))
        open_clip.add_model_config(folder / f"{family.test_name}.json")
        _REGISTERED.add(family.test_name)
    return family.test_name


def build(family: Family, folder: Path, seed: int = 0):
    """A fresh random-weight Backbone of the family's test model."""
    return load_backbone(register(family, folder), None, seed=seed, tokenizer=family.tokenizer())
