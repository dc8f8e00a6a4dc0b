"""Image transforms of the protocol, with their settings written down so caches can key on them.

Train: RandomResizedCrop(size, scale) with bicubic interpolation, then a horizontal flip. Test: resize the
shorter side to ``size`` (bicubic), centre crop. Both normalise with the backbone's mean and std (CLIP's).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torchvision import transforms as T

from .dataset import ArrayImageLoader

_INTERP = {"bicubic": T.InterpolationMode.BICUBIC, "bilinear": T.InterpolationMode.BILINEAR}


@dataclass(frozen=True)
class TransformConfig:
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    crop_scale: tuple[float, float] = (0.08, 1.0)  # protocol's random resized crop
    flip: bool = True

    def describe(self, train: bool) -> str:
        """A stable text of everything that changes the pixels, for cache keys."""
        d = asdict(self)
        if not train:
            d.pop("crop_scale")
            d.pop("flip")
        return ("train:" if train else "test:") + ",".join(f"{k}={v}" for k, v in sorted(d.items()))

    @classmethod
    def for_backbone(cls, backbone, crop_scale: tuple[float, float] = (0.08, 1.0), flip: bool = True):
        return cls(size=backbone.image_size, mean=tuple(backbone.mean), std=tuple(backbone.std),
                   interpolation=backbone.interpolation if backbone.interpolation in _INTERP else "bicubic",
                   crop_scale=tuple(crop_scale), flip=flip)


def build_transform(cfg: TransformConfig, train: bool) -> T.Compose:
    interp = _INTERP[cfg.interpolation]
    if train:
        steps = [T.RandomResizedCrop(cfg.size, scale=cfg.crop_scale, interpolation=interp)]
        if cfg.flip:
            steps.append(T.RandomHorizontalFlip())
    else:
        steps = [T.Resize(cfg.size, interpolation=interp), T.CenterCrop(cfg.size)]
    steps += [T.ToTensor(), T.Normalize(cfg.mean, cfg.std)]
    return T.Compose(steps)


class ImageSamples(torch.utils.data.Dataset):
    """Samples of a task as (image tensor, label), opened through the dataset's loader."""

    def __init__(self, task, samples, transform):
        self.task, self.samples, self.transform = task, list(samples), transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        s = self.samples[i]
        return self.transform(self.task.load_image(s)), s.label


# ------------------------------------------------------------------------------------------------ in-memory path
class TensorImages:
    """Fast path for datasets held in memory (the embedded world): the whole split as one normalised tensor,
    with the same transforms applied to tensors in batches instead of image by image through PIL."""

    def __init__(self, task, samples, cfg: TransformConfig):
        arrays = task.dataset.loader.arrays
        order = [arrays[s.key.split("/")[0]][int(s.key.split("/")[1])] for s in samples]
        x = torch.from_numpy(np.stack(order)).permute(0, 3, 1, 2).float().div_(255.0) if order else \
            torch.empty(0, 3, cfg.size, cfg.size)
        if x.shape[-1] != cfg.size or x.shape[-2] != cfg.size:  # resize shorter side, centre crop (test transform)
            h, w = x.shape[-2:]
            scale = cfg.size / min(h, w)
            x = F.interpolate(x, size=(round(h * scale), round(w * scale)), mode=cfg.interpolation,
                              align_corners=False, antialias=True)
            top, left = (x.shape[-2] - cfg.size) // 2, (x.shape[-1] - cfg.size) // 2
            x = x[..., top:top + cfg.size, left:left + cfg.size]
        self.pixels = x.clamp_(0, 1)
        self.labels = torch.tensor([s.label for s in samples], dtype=torch.long)
        self.cfg = cfg
        self.mean = torch.tensor(cfg.mean).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg.std).view(1, 3, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """RandomResizedCrop(scale, ratio 3/4..4/3) + horizontal flip, drawn from ``generator``."""
        n, _, h, w = x.shape
        lo, hi = self.cfg.crop_scale
        if (lo, hi) != (1.0, 1.0):
            out = torch.empty_like(x)
            area = h * w
            log_ratio = (math.log(3 / 4), math.log(4 / 3))
            for i in range(n):
                box = (0, 0, h, w)
                for _ in range(10):  # torchvision's sampling, fed by our generator
                    target = area * (lo + (hi - lo) * float(torch.rand(1, generator=generator)))
                    ratio = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) *
                                     float(torch.rand(1, generator=generator)))
                    cw, ch = int(round(math.sqrt(target * ratio))), int(round(math.sqrt(target / ratio)))
                    if 0 < cw <= w and 0 < ch <= h:
                        top = int(torch.randint(0, h - ch + 1, (1,), generator=generator))
                        left = int(torch.randint(0, w - cw + 1, (1,), generator=generator))
                        box = (top, left, ch, cw)
                        break
                t, l_, ch, cw = box
                crop = x[i:i + 1, :, t:t + ch, l_:l_ + cw]
                out[i] = F.interpolate(crop, size=(h, w), mode=self.cfg.interpolation, align_corners=False,
                                       antialias=True)[0] if (ch, cw) != (h, w) else crop[0]
            x = out.clamp_(0, 1)
        if self.cfg.flip:
            flip = torch.rand(n, generator=generator) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        return x

    def batches(self, batch_size: int, train: bool = False, generator: torch.Generator | None = None,
                shuffle: bool = False, drop_last: bool = False):
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        stop = n - (n % batch_size) if drop_last and n >= batch_size else n
        for start in range(0, stop, batch_size):
            idx = order[start:start + batch_size]
            x = self.pixels[idx]
            if train:
                x = self.augment(x, generator)
            yield self.normalise(x), self.labels[idx]


def in_memory(task) -> bool:
    return isinstance(getattr(task.dataset, "loader", None), ArrayImageLoader)


def image_batches(task, samples, cfg: TransformConfig, train: bool, batch_size: int,
                  generator: torch.Generator | None = None, shuffle: bool = False, drop_last: bool = False,
                  num_workers: int = 0, pin_memory: bool = False):
    """(images, labels) batches of ``samples`` with the train or test transform: tensors in batches for
    in-memory datasets, a DataLoader over PIL images for folders of files."""
    if in_memory(task):
        yield from TensorImages(task, samples, cfg).batches(batch_size, train, generator, shuffle, drop_last)
        return
    data = ImageSamples(task, samples, build_transform(cfg, train))
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator,
                                         num_workers=num_workers, drop_last=drop_last, pin_memory=pin_memory)
    yield from loader
