"""Image features of the frozen encoder, computed once and cached on disk (safetensors, never pickle).

A cache entry is keyed by everything that changes its numbers: backbone and weights, dataset content, split,
the exact samples, the transform (and, for augmented views, the view's seed). Methods whose image encoder is
frozen then train on these features instead of running the encoder every step, as Tip-Adapter does. Methods that
tune only the tower's last projection train on the pooled features before it (``pooled``), as ProLIP's code does.
"""

from __future__ import annotations

import errno
import hashlib
import json
from pathlib import Path

import torch

from ..backbones.family import embed_dim
from ..data.dataset import Sample
from ..data.transforms import TransformConfig, image_batches
from ..utils.atomic import remove_damaged, save_cache
from ..utils.paths import cache_dir


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


class FeatureCache:
    """Folder of ``<key>.safetensors`` files; ``root=None`` disables caching (everything is recomputed)."""

    def __init__(self, root: str | Path | None = "default"):
        self.root = cache_dir("features") if root == "default" else (Path(root) if root else None)

    def path(self, key: dict) -> Path | None:
        if self.root is None:
            return None
        safe = str(key.get("backbone", "model")).replace("/", "_")
        return self.root / safe / f"{key.get('dataset', 'data').replace('/', '_')[:60]}" / f"{_digest(key)}.safetensors"

    def load(self, key: dict) -> torch.Tensor | None:
        path = self.path(key)
        if path is None or not path.is_file():
            return None
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            tensors = load_file(str(path))
            # a fresh allocation: loaded tensors sit at the file's byte offsets, and CPU reductions over
            # misaligned memory round differently, so a cache hit would change a run's last digits
            return tensors["features"].clone()
        except (SafetensorError, OSError, KeyError, RuntimeError):
            remove_damaged(path)  # a damaged entry is recomputed, never used
            return None

    def save(self, key: dict, features: torch.Tensor) -> None:
        path = self.path(key)
        if path is None:
            return
        from safetensors import SafetensorError
        from safetensors.torch import save_file

        meta = {k: str(v) for k, v in key.items()}

        def save(tmp: Path) -> None:
            try:
                save_file({"features": features.contiguous().cpu()}, str(tmp), metadata=meta)
            except SafetensorError as err:  # its I/O errors (disk full) are not OSErrors
                raise OSError(errno.EIO, str(err)) from None

        save_cache(path, save, "feature cache")  # a cache that cannot be written is a warning; the run goes on


@torch.no_grad()
def encode_samples(clip, task, samples: list[Sample], cfg: TransformConfig, train: bool, device: torch.device,
                   batch_size: int = 256, num_workers: int = 0, generator: torch.Generator | None = None,
                   progress: bool = False, desc: str = "features", pooled: bool = False) -> torch.Tensor:
    """Unnormalised frozen image features [N, E] of ``samples`` in order (train transform if ``train``); with
    ``pooled`` the features [N, W] before the tower's last projection."""
    from tqdm.auto import tqdm

    from ..methods.encoders import encode_image
    from .loop import autocast_for

    encode = (lambda x: encode_image(clip, x, project=False)) if pooled else clip.encode_image

    out = []
    batches = image_batches(task, samples, cfg, train, batch_size, generator=generator, num_workers=num_workers,
                            pin_memory=device.type == "cuda")
    total = -(-len(samples) // batch_size)
    for images, _ in tqdm(batches, total=total, desc=desc, disable=not progress, leave=False, mininterval=1.0):
        with autocast_for(device):
            out.append(encode(images.to(device, non_blocking=True)).float().cpu())
    if not out:
        return torch.empty(0, clip.visual.proj.shape[0] if pooled else embed_dim(clip))
    return torch.cat(out)


def frozen_features(backbone, task, samples: list[Sample], split: str, transform_cfg: TransformConfig,
                    device: torch.device, cache: FeatureCache, views: int = 0, seed: int = 0,
                    batch_size: int = 256, num_workers: int = 0, progress: bool = False,
                    pooled: bool = False) -> torch.Tensor:
    """[N, E] features with the test transform (``views=0``), or [N, V, E] over V augmented views; ``pooled``:
    the features before the tower's last projection ([N, W], [N, V, W]), cached apart."""
    base_key = {
        "backbone": backbone.key,
        "dataset": task.dataset.name,
        "fingerprint": task.dataset.fingerprint,
        "split": split,
        "samples": _digest([s.key for s in samples]),
        "n": len(samples),
    }
    if pooled:  # a key of its own; the projected features' keys stay as they were
        base_key["stage"] = "pooled"
    if views <= 0:
        key = {**base_key, "transform": transform_cfg.describe(train=False)}
        cached = cache.load(key)
        if cached is not None and cached.shape[0] == len(samples):
            return cached
        feats = encode_samples(backbone.model, task, samples, transform_cfg, False, device, batch_size, num_workers,
                               progress=progress, desc=f"encode {split}", pooled=pooled)
        cache.save(key, feats)
        return feats
    from tqdm.auto import tqdm

    per_view = []
    # one bar for all the views (not one per view)
    bar = tqdm(total=views, desc=f"encode {split} ({views} views)", unit="view", disable=not progress, leave=False,
               mininterval=1.0)
    for v in range(views):
        key = {**base_key, "transform": transform_cfg.describe(train=True), "view": v, "seed": seed}
        cached = cache.load(key)
        if cached is not None and cached.shape[0] == len(samples):
            per_view.append(cached)
            bar.update(1)
            continue
        view_seed = int(_digest([seed, v, base_key["samples"]])[:8], 16)
        # Augmentations draw from the global generator (main process) or from worker seeds derived from `gen`.
        # Fork the global state so a cache hit or miss never changes what the run draws afterwards.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(view_seed)
            gen = torch.Generator().manual_seed(view_seed)
            feats = encode_samples(backbone.model, task, samples, transform_cfg, True, device, batch_size,
                                   num_workers, generator=gen, pooled=pooled)
        cache.save(key, feats)
        per_view.append(feats)
        bar.update(1)
    bar.close()
    return torch.stack(per_view, dim=1)
