"""The one dataset interface every task implements, real benchmark or embedded world.

A dataset is a list of labelled samples per split plus a way to open a sample's image. Samples are light
(a key and a label), so few-shot subsets and caches can name them without holding pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, UnidentifiedImageError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Sample:
    """One labelled image: ``key`` is a path relative to the image root, or ``"<split>/<index>"`` in memory."""

    key: str
    label: int
    classname: str


def unreadable_reason(path: Path) -> str | None:
    """Why PIL cannot open the image file ``path`` (None when it can). ``verify()`` reads headers and structure
    without decoding every pixel, so checking a whole dataset stays cheap."""
    try:
        with Image.open(path) as img:
            img.verify()
    except Exception as err:  # PIL raises many types (OSError, SyntaxError, struct.error...) for broken files
        return f"{type(err).__name__}: {err}"
    return None


class ImageLoader(Protocol):
    def load(self, sample: Sample) -> Image.Image: ...


@dataclass
class FileImageLoader:
    """Opens images from files under ``root``; a missing or corrupt file is an error that names it."""

    root: Path

    def load(self, sample: Sample) -> Image.Image:
        path = Path(self.root) / sample.key
        try:
            with Image.open(path) as img:
                return img.convert("RGB")
        except FileNotFoundError:
            raise FileNotFoundError(
                f"image file {path} (class {sample.classname!r}) is missing: re-extract the dataset or run "
                f"'adaptlib data check --root ...' to list every problem"
            ) from None
        except (UnidentifiedImageError, OSError) as err:
            raise OSError(
                f"image file {path} (class {sample.classname!r}) cannot be read ({err}): replace the file or "
                f"re-download the dataset"
            ) from None


@dataclass
class ArrayImageLoader:
    """Serves images held in memory as uint8 arrays, one [N, H, W, 3] array per split."""

    arrays: dict[str, np.ndarray]

    def load(self, sample: Sample) -> Image.Image:
        split, index = sample.key.split("/")
        return Image.fromarray(self.arrays[split][int(index)])


@dataclass
class ClassificationDataset:
    """Class names, prompt templates and train/val/test samples of one task.

    ``templates`` are format strings with one ``{}`` for the class name. ``fingerprint`` identifies the exact
    content (images and splits) so caches keyed by it are never reused for different data. A ``target_only``
    dataset (an ImageNet variant) has only a test split and shares its label space with a source dataset.
    """

    name: str
    classnames: list[str]
    templates: list[str]
    splits: dict[str, list[Sample]]
    loader: ImageLoader
    fingerprint: str
    target_only: bool = False
    info: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classnames)

    def split(self, name: str) -> list[Sample]:
        if name not in self.splits:
            raise KeyError(f"dataset {self.name!r} has no {name!r} split (it has: {sorted(self.splits)})")
        return self.splits[name]

    def load_image(self, sample: Sample) -> Image.Image:
        return self.loader.load(sample)

    def prompts(self, classname: str) -> list[str]:
        return [t.format(classname) for t in self.templates]
