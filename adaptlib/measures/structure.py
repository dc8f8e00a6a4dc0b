"""Measures of tasks through the frozen backbone: class counts, class structure (image and text side, the NTU
study's inter/intra-class variance and APEX's separability) and APEX's class distance of new to base classes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..analysis import class_structure


def num_classes(dataset: str, data_root: str | None = None) -> int:
    from ..data.registry import get_dataset

    return get_dataset(dataset, data_root).num_classes


@torch.no_grad()
def structure_of(backbone, task, samples, device="cpu") -> dict:
    """Class-structure measures of the frozen backbone on ``samples`` of ``task`` (image features) and of its
    class names (text features averaged over the task's templates), plus the zero-shot accuracy on them.
    ``device``: where the images are encoded (the backbone's device)."""
    from ..backbones.text import class_text_features
    from ..data.transforms import TransformConfig
    from ..training.features import encode_samples

    device = torch.device(device)
    cfg = TransformConfig.for_backbone(backbone)
    feats = F.normalize(encode_samples(backbone.model, task, samples, cfg, False, device).float(), dim=-1).cpu()
    labels = np.array([s.label for s in samples])
    text = class_text_features(backbone.model, backbone.tokenizer, task.classnames, task.templates).cpu()
    out = class_structure(feats.numpy(), labels, text.numpy())
    out["zero_shot_accuracy"] = float(((feats @ text.T).argmax(1).numpy() == labels).mean())
    return {k: v for k, v in out.items() if np.isscalar(v)}


def task_structure(backbone, dataset: str, split: str = "train", shots: int = 16, seed: int = 1,
                   data_root: str | None = None, device="cpu") -> dict:
    """:func:`structure_of` one task on its few-shot training split (``split='train'``: what a practitioner can
    measure before choosing a method) or on its full test split (``split='test'``)."""
    from ..data.protocol import sample_few_shot
    from ..data.registry import get_dataset

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    # the test split needs no few-shot sample (a class may have fewer training images than ``shots``)
    task = sample_few_shot(get_dataset(dataset, data_root), shots if split == "train" else 0, seed)
    return structure_of(backbone, task, task.train if split == "train" else task.test, device)


def task_structures(backbone, datasets: list[str], split: str = "train", shots: int = 16, seed: int = 1,
                    data_root: str | None = None, device="cpu") -> pd.DataFrame:
    """Per task (rows, in the order given), the measures of :func:`task_structure`."""
    rows = {name: task_structure(backbone, name, split, shots, seed, data_root, device) for name in datasets}
    return pd.DataFrame(rows).T


@torch.no_grad()
def class_distance(backbone, dataset, template: str = "a photo of a {}.") -> float:
    """Mean over new classes of APEX's dbar: 1 - mean cosine to the base classes' frozen text features (one
    template's normalised prompt features, as APEX has them: no average over templates)."""
    from ..backbones.text import prompt_features
    from ..data.protocol import base_new_classes

    base, new = base_new_classes(dataset.num_classes)
    tokens = backbone.tokenizer([template.format(c) for c in dataset.classnames])
    feats = prompt_features(backbone.model, tokens.to(backbone.model.logit_scale.device)).cpu()
    cos = feats[new] @ feats[base].T
    return float((1 - cos.mean(dim=1)).mean())


def example_images(dataset: str, data_root: str | None = None, max_classes: int = 8, size: int = 32) -> list[dict]:
    """The first test image of each of the first ``max_classes`` classes, as rows (dataset, label, classname,
    height, width, pixels: the hex of its uint8 RGB bytes, at most ``size`` pixels a side), so that a notebook can
    show what a task is without loading it."""
    import numpy as np

    from ..data.registry import get_dataset

    ds = get_dataset(dataset, data_root)
    first: dict[int, object] = {}
    for sample in ds.split("test"):
        if sample.label < max_classes and sample.label not in first:
            first[sample.label] = sample
    rows = []
    for label in sorted(first):
        image = ds.load_image(first[label]).convert("RGB")
        image.thumbnail((size, size))
        pixels = np.asarray(image, dtype=np.uint8)
        rows.append({"dataset": dataset, "label": label, "classname": ds.classnames[label],
                     "height": pixels.shape[0], "width": pixels.shape[1], "pixels": pixels.tobytes().hex()})
    return rows
