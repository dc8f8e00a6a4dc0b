"""Trainable-parameter counts of a method on any open_clip backbone, from random weights (same shapes)."""

from __future__ import annotations

import torch

from . import build_model, get_recipe, hybrid_recipe
from .parts.base import TrainFeatures


def count_parameters(method: str, backbone_name: str = "ViT-B-16", parts: list | None = None,
                     part_options: dict | None = None, classes: int = 10, shots: int = 16, backbone=None) -> dict:
    """{'method', 'trainable', 'per_part'}: parameters that train by gradient, plus those fitted in closed
    form (the linear probe's C x (E + 1)); class- and shot-dependent parts are sized for ``classes`` x ``shots``.
    ``backbone``: a random-weight Backbone to use instead of building ``backbone_name`` (it is modified)."""
    from ..backbones import load_backbone

    recipe = hybrid_recipe(parts or []) if method == "hybrid" else get_recipe(method)
    backbone = backbone or load_backbone(backbone_name, None)
    names = [f"class {i}" for i in range(classes)]
    model = build_model(backbone, names, ["a photo of a {}."], recipe, part_overrides=part_options)
    if any(p.needs_training_features for p in model.parts):
        dim = backbone.model.visual.output_dim
        g = torch.Generator().manual_seed(0)
        labels = torch.arange(classes).repeat_interleave(shots)
        feats = torch.randn(len(labels), 2, dim, generator=g)
        val = TrainFeatures(None, torch.randn(classes, dim, generator=g), torch.arange(classes))
        for part in model.parts:
            if part.needs_training_features:
                part.fit(model, TrainFeatures(feats, feats[:, 0], labels), val)
    per_part = {}
    owned = set()
    for part in model.parts:
        n = sum(p.numel() for p in part.parameters() if p.requires_grad)
        if part.name == "linear_head":
            n += part.head.weight.numel() + part.head.bias.numel()
        n += sum(p.numel() for name, p in model.clip.named_parameters()
                 if p.requires_grad and name in _names_touched_by(part, model))
        owned |= _names_touched_by(part, model)
        per_part[part.name] = n
    total = model.num_trainable() + sum(p.head.weight.numel() + p.head.bias.numel()
                                        for p in model.parts if p.name == "linear_head")
    return {"method": recipe.name, "trainable": total, "per_part": per_part}


def _names_touched_by(part, model) -> set[str]:
    """Backbone parameter names a part unfroze (selections) or inserted into the backbone (LoRA)."""
    names = set(getattr(part, "parameter_names", []))
    if part.name == "lora":
        names = {n for n, _ in model.clip.named_parameters() if ".lora_" in n}
    return names
