"""The explicit registry of parts (peft style): a new part is one file in ``parts/`` plus one line here."""

from __future__ import annotations

from typing import Any

from .parts.adapters import ClipAdapter, TextAdapter
from .parts.base import Part
from .parts.cocoop import ConditionalPrompt
from .parts.coop import CoOpPrompt
from .parts.ensemble import AdaptiveEnsemble
from .parts.linear_head import LinearHead
from .parts.lora import LoRA
from .parts.regularisers import TextRegulariser
from .parts.selections import BitFit, ClipFitParameters, LayerNormTuning
from .parts.tip_cache import TipCache
from .parts.visual_prompt import VisualPrompt

PARTS: dict[str, type[Part]] = {
    "coop_prompt": CoOpPrompt,
    "cocoop_prompt": ConditionalPrompt,
    "text_regulariser": TextRegulariser,
    "clip_adapter": ClipAdapter,
    "text_adapter": TextAdapter,
    "tip_cache": TipCache,
    "layernorm": LayerNormTuning,
    "bitfit": BitFit,
    "clipfit_params": ClipFitParameters,
    "visual_prompt": VisualPrompt,
    "lora": LoRA,
    "adaptive_ensemble": AdaptiveEnsemble,
    "linear_head": LinearHead,
}


def build_part(name: str, options: dict[str, Any] | None = None) -> Part:
    if name not in PARTS:
        from ..utils.names import unknown_name_error

        raise unknown_name_error("part", name, PARTS)
    cls = PARTS[name]
    return cls(cls.config_class.from_dict(options, name))
