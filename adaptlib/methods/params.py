"""Trainable-parameter counts of a method on any open_clip backbone, from random weights (same shapes)."""

from __future__ import annotations

import torch

from ..backbones import load_backbone
from . import build_model, get_recipe, hybrid_recipe
from .step import TrainFeatures


def count_parameters(method: str, backbone_name: str = "ViT-B-16", parts: list | None = None,
                     part_options: dict | None = None, classes: int = 10, shots: int = 16, backbone=None) -> dict:
    """{'method', 'trainable', 'per_part'}: parameters that train by gradient, plus those fitted in closed form
    (a linear probe's C x (E + 1)), in total and per part (each parameter counted for its one owner);
    class- and shot-dependent parts are sized for ``classes`` x ``shots``.
    ``backbone``: a random-weight Backbone to use instead of building ``backbone_name`` (it is modified)."""
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
    per_part = {part.name: model.parameter_count(part) for part in model.parts}
    total = model.num_trainable() + model.num_fitted()
    if sum(per_part.values()) != total:  # every parameter has exactly one owner
        raise AssertionError(f"per-part counts {per_part} do not add up to the total {total}")
    return {"method": recipe.name, "trainable": total, "per_part": per_part}
