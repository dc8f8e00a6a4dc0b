"""Accuracy of an adapted model on a split: from cached frozen features when the image encoder is untouched,
otherwise by running the adapted encoder over the test-transformed images."""

from __future__ import annotations

import torch

from ..data.transforms import TransformConfig, image_batches
from ..methods.model import AdaptedCLIP
from ..methods.step import Batch
from .loop import autocast_for


@torch.no_grad()
def encode_adapted(model: AdaptedCLIP, task, samples, cfg: TransformConfig, device, batch_size: int = 256,
                   num_workers: int = 0) -> torch.Tensor:
    """The adapted model's own image-encoder output [N, E] (visual prompts, LoRA, tuned norms) for samples,
    with the test transform."""
    out = []
    for images, _ in image_batches(task, samples, cfg, False, batch_size, num_workers=num_workers):
        with autocast_for(device):
            out.append(model.image_features_raw(Batch(images=images.to(device))).float())
    return torch.cat(out) if out else torch.empty(0)


@torch.no_grad()
def predict(model: AdaptedCLIP, labels: torch.Tensor, device, frozen: torch.Tensor | None = None,
            encoded: torch.Tensor | None = None, batch_size: int = 512) -> torch.Tensor:
    """Predicted labels from precomputed features: ``encoded`` (the model's own encoder output) when the image
    encoder is adapted, else ``frozen`` features; ``frozen`` also feeds ensembles."""
    model.eval()
    preds = []
    n = len(labels)
    for i in range(0, n, batch_size):
        sl = slice(i, i + batch_size)
        batch = Batch(labels=labels[sl],
                      features=frozen[sl] if frozen is not None else None,
                      encoded=encoded[sl] if encoded is not None else None).to(device)
        with autocast_for(device):
            logits = model.predict(batch)
        preds.append(logits.float().argmax(dim=1).cpu())
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


def accuracy(preds: torch.Tensor, labels: torch.Tensor) -> float:
    if len(labels) == 0:
        raise ValueError("cannot compute accuracy on an empty split")
    return float((preds == labels).float().mean())
