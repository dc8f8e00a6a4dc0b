"""Trainable-parameter counts of a method on any open_clip backbone, from random weights (same shapes)."""

from __future__ import annotations

import torch

from ..backbones import load_backbone
from ..backbones.family import embed_dim
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
        dim = embed_dim(backbone.model)
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


# The backbone families of open_clip that adaptlib runs on, by the architecture their weights share: one row of
# the README's backbone table each (OpenAI and LAION weights share ViT-B-16; MetaCLIP and DFN ViT-B-16-quickgelu).
FAMILY_ARCHITECTURES = {
    "OpenAI, LAION (open_clip ViT)": "ViT-B-16",
    "MetaCLIP, DFN (open_clip ViT, QuickGELU)": "ViT-B-16-quickgelu",
    "SigLIP (timm ViT, sigmoid logits)": "ViT-B-16-SigLIP",
    "SigLIP 2 (timm ViT, sigmoid logits)": "ViT-B-16-SigLIP2",
    "EVA-02 (timm EVA, rotary positions)": "EVA02-B-16",
}


def family_table(methods: list[str], architectures: dict[str, str] | None = None, classes: int = 10,
                 shots: int = 16, progress: bool = True, tokenizers: dict | None = None):
    """Rows (family, backbone, then one column per method): each method's trainable parameters on the family's
    ViT-B/16 (random weights, real shapes), or why the method does not run there. A backbone whose tokenizer is a
    download (SigLIP's) gets a stand-in with its context length and vocabulary: the counts do not depend on it."""
    import open_clip
    import pandas as pd
    from tqdm.auto import tqdm

    from ..backbones.family import UnsupportedBackboneError
    from ..backbones.tokenizers import TokenizerUnavailableError, open_tokenizer, siglip_stand_in

    architectures = architectures or FAMILY_ARCHITECTURES
    rows = []
    tokenizers = dict(tokenizers or {})  # by backbone name: given ones (tests) are used as they are
    for label, name in tqdm(architectures.items(), desc="backbone families", disable=not progress):
        if name not in tokenizers:
            try:
                tokenizers[name] = open_tokenizer(name)
            except TokenizerUnavailableError:
                text = open_clip.get_model_config(name)["text_cfg"]
                tokenizers[name] = siglip_stand_in(text.get("context_length", 64), text.get("vocab_size", 32000))
        row = {"family": label, "backbone": name}
        for method in methods:
            try:
                backbone = load_backbone(name, None, tokenizer=tokenizers[name])
                counts = count_parameters(method, name, classes=classes, shots=shots, backbone=backbone)
                row[method] = f"{counts['trainable']:,}"
            except UnsupportedBackboneError as err:
                row[method] = "no (" + str(err).split(": ", 1)[-1].split(";")[0] + ")"
        rows.append(row)
    return pd.DataFrame(rows)
