"""The explicit registry of parts (peft style): a new part is one file in ``parts/`` plus its class in the tuple
below (or ``register_part`` from outside the package)."""

from __future__ import annotations

from typing import Any

from .parts.adapters import ClipAdapter, TextAdapter
from ..utils.names import unknown_name_error
from .parts.base import Part
from .parts.cocoop import ConditionalPrompt
from .parts.coop import CoOpPrompt
from .parts.deep_text_prompt import DeepTextPrompt
from .parts.ensemble import AdaptiveEnsemble
from .parts.gda import GDA
from .parts.linear_head import LinearHead
from .parts.lora import LoRA
from .parts.lp_plus_plus import LPPlusPlus
from .parts.maple import MaPLePrompt
from .parts.prolip import VisualProjection
from .parts.promptsrc import PromptAggregation, SelfConsistency
from .parts.regularisers import TextRegulariser
from .parts.selections import BitFit, ClipFitParameters, LayerNormTuning
from .parts.tip_cache import TipCache
from .parts.visual_prompt import VisualPrompt
from .parts.zs_probe import ClassAdaptiveConstraint, ZSLinearHead

PARTS: dict[str, type[Part]] = {}


def register_part(cls: type[Part]) -> type[Part]:
    """Add a part class under its own ``name`` (usable as a decorator); the name is stated once, on the class."""
    if not cls.name:
        raise ValueError(f"part class {cls.__name__} has no name: set the class attribute `name`")
    if cls.name in PARTS and PARTS[cls.name] is not cls:
        raise ValueError(f"a part named {cls.name!r} is already registered ({PARTS[cls.name].__name__})")
    PARTS[cls.name] = cls
    return cls


for _cls in (CoOpPrompt, ConditionalPrompt, TextRegulariser, ClipAdapter, TextAdapter, TipCache, LayerNormTuning,
             BitFit, ClipFitParameters, VisualPrompt, LoRA, AdaptiveEnsemble, LinearHead):
    register_part(_cls)
for _cls in (ZSLinearHead, ClassAdaptiveConstraint, LPPlusPlus, GDA):  # few-shot probes on frozen features
    register_part(_cls)
# deep vision-language prompts and PromptSRC's self-regulation (MaPLe, PromptSRC); ProLIP's projection tuning
for _cls in (DeepTextPrompt, MaPLePrompt, SelfConsistency, PromptAggregation, VisualProjection):
    register_part(_cls)


def build_part(name: str, options: dict[str, Any] | None = None) -> Part:
    if name not in PARTS:
        raise unknown_name_error("part", name, PARTS)
    cls = PARTS[name]
    return cls(cls.config_class.from_dict(options, name))
