"""Parts that add no parameters but choose which existing ones train: LayerNorm tuning, BitFit, CLIPFit.

open_clip names (ViT): image tower under ``visual.`` (``ln_pre``, ``transformer.resblocks.{i}.{ln_1, attn,
ln_2, mlp.c_fc, mlp.c_proj}``, ``ln_post``), text tower ``transformer.resblocks.{i}...`` and ``ln_final``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

from .base import Part, PartConfig

TOWERS = ("image", "text", "both")


def _in_tower(name: str, tower: str) -> bool:
    is_image = name.startswith("visual.")
    return tower == "both" or (tower == "image") == is_image


def _check_tower(tower: str, part: str) -> None:
    if tower not in TOWERS:
        raise ValueError(f"part {part!r}: tower must be one of {TOWERS}, not {tower!r}")


class ParameterSelection(Part):
    """Unfreezes the backbone parameters matched by ``selected(name, module, param_name)``."""

    def selected(self, module_name: str, module: nn.Module, param_name: str) -> bool:
        raise NotImplementedError

    def attach(self, model) -> None:
        chosen = []
        for module_name, module in model.clip.named_modules():
            for param_name, param in module.named_parameters(recurse=False):
                if self.selected(module_name, module, param_name):
                    param.requires_grad_(True)
                    chosen.append(f"{module_name}.{param_name}")
        if not chosen:
            raise ValueError(f"part {self.name!r} found no parameters to train in this backbone")
        self.parameter_names = chosen

    def towers(self) -> set[str]:
        return {"image" if n.startswith("visual.") else "text" for n in getattr(self, "parameter_names", [])}

    @property
    def modifies_image_encoder(self) -> bool:  # type: ignore[override]
        return "image" in self.towers()

    @property
    def modifies_text_encoder(self) -> bool:  # type: ignore[override]
        return "text" in self.towers()


@dataclass
class LayerNormConfig(PartConfig):
    tower: str = "both"  # image | text | both


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


class BitFit(ParameterSelection):
    """Every bias of the linear and attention layers (LayerNorm biases excluded) in the chosen tower(s)."""

    name = "bitfit"
    config_class = BitFitConfig

    def selected(self, module_name, module, param_name) -> bool:
        _check_tower(self.config.tower, self.name)
        is_bias = param_name.endswith("bias")
        return is_bias and not isinstance(module, nn.LayerNorm) and _in_tower(module_name + ".", self.config.tower)


@dataclass
class ClipFitConfig(PartConfig):
    text_bias: str = r"^transformer\.resblocks\.\d+\.mlp\.c_proj$"  # FFN output-projection biases
    image_layernorms: bool = True


class ClipFitParameters(Part):
    """CLIPFit (Li et al., EMNLP 2024): the text FFNs' ``c_proj`` biases and every image LayerNorm."""

    name = "clipfit_params"
    config_class = ClipFitConfig
    modifies_image_encoder = True
    modifies_text_encoder = True

    def attach(self, model) -> None:
        pattern = re.compile(self.config.text_bias)
        chosen = []
        for module_name, module in model.clip.named_modules():
            if pattern.match(module_name) and getattr(module, "bias", None) is not None:
                module.bias.requires_grad_(True)
                chosen.append(f"{module_name}.bias")
            if self.config.image_layernorms and module_name.startswith("visual.") and isinstance(module, nn.LayerNorm):
                for p_name, p in module.named_parameters(recurse=False):
                    p.requires_grad_(True)
                    chosen.append(f"{module_name}.{p_name}")
        self.parameter_names = chosen
