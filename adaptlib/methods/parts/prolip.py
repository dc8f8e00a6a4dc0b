"""ProLIP: fine-tune only the image tower's last projection matrix, regularised towards its frozen value (Fahes et
al., "CLIP's Visual Embedding Projector is a Few-shot Cornucopia", arXiv 2410.05270; astra-vision/ProLIP:
methods/ProLIP.py, configs/base.yaml, configs/experiments/few_shot_no_val_*_lambda_1_N.yaml).

  loss = CE + lambda * ||W - W0||_F^2      (the code's ``nn.MSELoss(reduction="sum")`` over the flattened matrix)

W is open_clip ViT's ``visual.proj`` (768 x 512 on ViT-B/16), trained in place; on other towers the last linear
map into the joint space (``family.image_projection``: EVA-02's trunk head; a ResNet's attention-pool output
projection, whose bias stays frozen as in the code's ResNet branch). The validation-free rule of the paper and
the code's default (``lambda_funct_1_N: True``) sets lambda = 1/N for N shots (``rule="1/N^2"``: the code's other
rule, 1/N^2); a number for ``weight`` fixes lambda instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...backbones.family import image_projection, unsupported
from ...utils.typed import OptionTypeError
from ..step import StepOutput, TrainingPlan
from .base import Part, PartConfig, require_choice, require_range

RULES = ("1/N", "1/N^2")


@dataclass
class VisualProjectionConfig(PartConfig):
    weight: float | None = None  # lambda; None: the validation-free rule below, from the run's shots N
    rule: str = "1/N"  # lambda_funct_1_N (the code's default) or lambda_funct_1_N2

    def check(self) -> None:
        require_range(self, "weight", 0, optional=True)
        require_choice(self, "rule", RULES)


def validation_free_weight(shots: int, rule: str = "1/N") -> float:
    """ProLIP's lambda without a validation set: 1/N (or 1/N^2) for N shots per class."""
    if shots < 1:
        raise ValueError(f"the number of shots must be >= 1, got {shots}")
    if rule not in RULES:
        raise OptionTypeError(f"rule {rule!r} is not one of {list(RULES)}")
    return 1.0 / shots if rule == "1/N" else 1.0 / shots ** 2


class VisualProjection(Part):
    name = "visual_projection"
    config_class = VisualProjectionConfig
    modifies_image_encoder = True
    modifies_only_image_projection = True  # the code's cache: pre-projection features of augmented views

    def __init__(self, config=None):
        super().__init__(config)
        self._proj: list[nn.Parameter] = []  # not registered: it stays the backbone's parameter
        self.strength: float | None = self.config.weight  # lambda: set from the shots when training starts

    def attach(self, model) -> None:
        proj = image_projection(model.clip)
        if proj is None:
            raise unsupported(self.name, model.clip, "its image tower has no linear projection after the pooled "
                                                     "feature; SigLIP's attention-pool head is its output")
        proj.requires_grad_(True)
        self._proj = [proj]
        self.register_buffer("initial", proj.detach().clone(), persistent=False)  # W0: rebuilt from the backbone

    def backbone_parameters(self, model) -> list[nn.Parameter]:
        return list(self._proj)

    def begin_training(self, model, plan: TrainingPlan) -> None:
        if self.config.weight is not None:
            self.strength = self.config.weight
            return
        if plan.shots is None:
            raise ValueError(f"part {self.name!r}: lambda = {self.config.rule} needs the run's shots per class (the "
                             f"training loop's `shots`); give it, or fix lambda with the option `weight`")
        self.strength = validation_free_weight(plan.shots, self.config.rule)

    def regulariser(self) -> torch.Tensor:
        """||W - W0||_F^2, unweighted."""
        (proj,) = self._proj
        return (proj - self.initial.to(proj.dtype)).float().square().sum()

    def loss(self, out: StepOutput) -> torch.Tensor | None:
        (proj,) = self._proj
        if proj.is_meta:  # cost counting without values (the estimate's image tower on meta tensors)
            return None
        if self.strength is None:
            raise ValueError(f"part {self.name!r}: lambda is not set (rule {self.config.rule} needs the shots); "
                             f"train through the loop, which calls begin_training")
        if self.strength == 0:
            return None
        return self.strength * self.regulariser()
