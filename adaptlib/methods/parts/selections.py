"""Parts that add no parameters but choose which existing ones train: LayerNorm tuning, BitFit, CLIPFit.

open_clip names (ViT): image tower under ``visual.`` (``ln_pre``, ``transformer.resblocks.{i}.{ln_1, attn,
ln_2, mlp.c_fc, mlp.c_proj}``, ``ln_post``), text tower ``transformer.resblocks.{i}...`` and ``ln_final`` (under
``text.`` in a ``CustomTextCLIP``: SigLIP, EVA-02; their timm image towers are under ``visual.trunk.``). Text-tower
patterns are matched against names relative to the text tower, so one pattern serves every family.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

from ...utils.typed import OptionTypeError
from ...backbones.family import text_tower
from .base import Part, PartConfig, require_choice

TOWERS = ("image", "text", "both")


def _in_tower(name: str, tower: str) -> bool:
    is_image = name.startswith("visual.")
    return tower == "both" or (tower == "image") == is_image


def _check_tower(tower: str, part: str) -> None:
    if tower not in TOWERS:
        raise ValueError(f"part {part!r}: tower must be one of {TOWERS}, not {tower!r}")


class ParameterSelection(Part):
    """Unfreezes the backbone parameters matched by ``selected(name, module, param_name)`` and owns them."""

    def __init__(self, config=None):
        super().__init__(config)
        self._selected: list[nn.Parameter] = []  # not registered: they stay the backbone's parameters
        self._towers: set[str] = set()

    def selected(self, module_name: str, module: nn.Module, param_name: str) -> bool:
        raise NotImplementedError

    def attach(self, model) -> None:
        self._text_prefix = text_tower(model.clip).prefix
        for module_name, module in model.clip.named_modules():
            for param_name, param in module.named_parameters(recurse=False):
                if self.selected(module_name, module, param_name):
                    param.requires_grad_(True)
                    self._selected.append(param)
                    self._towers.add("image" if module_name.startswith("visual.") else "text")
        if not self._selected:
            raise ValueError(f"part {self.name!r} found no parameters to train in this backbone")

    def backbone_parameters(self, model) -> list[nn.Parameter]:
        return list(self._selected)

    @property
    def modifies_image_encoder(self) -> bool:  # type: ignore[override]
        return "image" in self._towers

    @property
    def modifies_text_encoder(self) -> bool:  # type: ignore[override]
        return "text" in self._towers


@dataclass
class LayerNormConfig(PartConfig):
    tower: str = "both"  # image | text | both

    def check(self) -> None:
        require_choice(self, "tower", TOWERS)


class LayerNormTuning(ParameterSelection):
    """Every LayerNorm's weight and bias in the chosen tower(s)."""

    name = "layernorm"
    config_class = LayerNormConfig

    def selected(self, module_name, module, param_name) -> bool:
        _check_tower(self.config.tower, self.name)
        return isinstance(module, nn.LayerNorm) and _in_tower(module_name + ".", self.config.tower)


@dataclass
class BitFitConfig(PartConfig):
    tower: str = "both"

    def check(self) -> None:
        require_choice(self, "tower", TOWERS)


class BitFit(ParameterSelection):
    """Every bias of the linear and attention layers (LayerNorm biases excluded) in the chosen tower(s)."""

    name = "bitfit"
    config_class = BitFitConfig

    def selected(self, module_name, module, param_name) -> bool:
        _check_tower(self.config.tower, self.name)
        is_bias = param_name.endswith("bias") and module_name != ""  # not SigLIP's logit_bias: no layer's bias
        return is_bias and not isinstance(module, nn.LayerNorm) and _in_tower(module_name + ".", self.config.tower)


@dataclass
class ClipFitConfig(PartConfig):
    text_bias: str = r"^transformer\.resblocks\.\d+\.mlp\.c_proj$"  # FFN output-projection biases
    image_layernorms: bool = True

    def check(self) -> None:
        try:
            re.compile(self.text_bias)
        except re.error as err:
            raise OptionTypeError(f"option 'text_bias' = {self.text_bias!r} is not a valid regular expression "
                                  f"({err})") from None


class ClipFitParameters(ParameterSelection):
    """CLIPFit (Li et al., EMNLP 2024): the text FFNs' ``c_proj`` biases and every image LayerNorm."""

    name = "clipfit_params"
    config_class = ClipFitConfig

    def selected(self, module_name, module, param_name) -> bool:
        prefix = getattr(self, "_text_prefix", "")
        text_name = module_name[len(prefix):] if module_name.startswith(prefix) and \
            not module_name.startswith("visual.") else None
        if text_name is not None and re.match(self.config.text_bias, text_name) and param_name == "bias":
            return True
        return (self.config.image_layernorms and module_name.startswith("visual.")
                and isinstance(module, nn.LayerNorm))
