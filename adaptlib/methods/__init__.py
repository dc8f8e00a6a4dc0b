"""Adaptation methods as composable parts (``parts/``), named recipes of parts, and the model they build."""

from .model import AdaptedCLIP
from .recipes import RECIPES, Recipe, get_recipe, hybrid_recipe
from .registry import PARTS, build_part, register_part
from .step import Batch, StepOutput, TrainFeatures


def build_model(backbone, classnames, templates, recipe: Recipe, setting: str = "few_shot", dataset: str = "",
                part_overrides: dict | None = None) -> AdaptedCLIP:
    """The AdaptedCLIP of a recipe, with ``part_overrides`` ({part: {option: value}}) applied last."""
    part_overrides = part_overrides or {}
    unknown = set(part_overrides) - {name for name, _ in recipe.parts}
    if unknown:
        raise ValueError(f"options given for parts {sorted(unknown)} that method {recipe.name!r} does not have "
                         f"(its parts: {[name for name, _ in recipe.parts]})")
    parts = [build_part(name, {**options, **part_overrides.get(name, {})})
             for name, options in recipe.part_options(setting, dataset)]
    return AdaptedCLIP(backbone, classnames, templates, parts)


__all__ = ["AdaptedCLIP", "Batch", "StepOutput", "TrainFeatures", "RECIPES", "Recipe", "get_recipe", "hybrid_recipe",
           "PARTS", "build_part", "register_part", "build_model"]
