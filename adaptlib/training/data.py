"""Batches for the training loop, from cached features or from images.

Three paths feed the same loop:
- cached features: each epoch visits every training image once, in a seeded random order, with one of its V
  cached augmented views picked at random (frozen image encoder; fastest);
- images through the frozen encoder: augment and encode every step (what the cached path replaces; kept for
  the side-by-side benchmark);
- images: augmented pixels for models whose image encoder trains or is prompted.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..data.transforms import TensorImages, TransformConfig, image_batches, in_memory
from ..methods.step import Batch


def _steps(n: int, batch_size: int) -> list[slice]:
    """Dassl's train loader: drop the last incomplete batch when there is at least one full batch."""
    if n < batch_size:
        return [slice(0, n)]
    return [slice(i, i + batch_size) for i in range(0, n - batch_size + 1, batch_size)]


class FeatureBatches:
    """Batches of cached views; ``pooled``: the views are features before the tower's last projection."""

    def __init__(self, views: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int, pooled: bool = False):
        self.views, self.labels, self.batch_size, self.pooled = views, labels, batch_size, pooled
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, epoch: int) -> Iterator[Batch]:
        n, v = self.views.shape[:2]
        order = torch.randperm(n, generator=self.generator)
        pick = torch.randint(0, v, (n,), generator=self.generator)
        for sl in _steps(n, self.batch_size):
            idx = order[sl]
            feats = self.views[idx, pick[idx]]
            yield Batch(labels=self.labels[idx], pooled=feats) if self.pooled else \
                Batch(labels=self.labels[idx], features=feats)


class ImageBatches:
    """Augmented image batches; with ``encode_with`` (a frozen CLIP) they arrive as frozen features instead."""

    def __init__(self, task, samples, cfg: TransformConfig, batch_size: int, seed: int, num_workers: int = 0,
                 encode_with=None, device: torch.device | None = None):
        self.task, self.samples, self.cfg = task, list(samples), cfg
        self.batch_size, self.num_workers = batch_size, num_workers
        self.generator = torch.Generator().manual_seed(seed)
        self.encode_with, self.device = encode_with, device or torch.device("cpu")
        self.tensors = TensorImages(task, self.samples, cfg) if in_memory(task) else None

    def __call__(self, epoch: int) -> Iterator[Batch]:
        n = len(self.samples)
        drop_last = n >= self.batch_size
        if self.tensors is not None:
            batches = self.tensors.batches(self.batch_size, train=True, generator=self.generator, shuffle=True,
                                           drop_last=drop_last)
        else:
            batches = image_batches(self.task, self.samples, self.cfg, True, self.batch_size, self.generator,
                                    shuffle=True, drop_last=drop_last, num_workers=self.num_workers,
                                    pin_memory=self.device.type == "cuda")
        for images, labels in batches:
            if self.encode_with is None:
                yield Batch(labels=labels, images=images)
            else:
                with torch.no_grad():
                    feats = self.encode_with.encode_image(images.to(self.device)).float()
                yield Batch(labels=labels, features=feats)
