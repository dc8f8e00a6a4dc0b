"""The far out-of-domain task: real handwritten digits from scikit-learn's bundled ``load_digits`` (no download).

The 8x8 scans (grey levels 0..16) are upsampled to the embedded image size as white ink on black; each class is
split into train/val/test by a fixed permutation, so the splits never change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from .tasks import TaskSpec


def digits_split(spec: "TaskSpec", split: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    from .tasks import IMAGE_SIZE

    bunch = load_digits()
    images, targets = bunch.images, bunch.target
    n_train, n_val, n_test = spec.per_class
    start = {"train": 0, "val": n_train, "test": n_train + n_val}[split]
    count = {"train": n_train, "val": n_val, "test": n_test}[split]
    rng = np.random.default_rng(spec.seed)
    out_images, out_labels = [], []
    for label in range(len(spec.classes)):
        idx = np.flatnonzero(targets == label)
        if len(idx) < n_train + n_val + n_test:
            raise ValueError(f"digit class {spec.classes[label]!r} has {len(idx)} scans, fewer than the "
                             f"{n_train + n_val + n_test} that per_class={spec.per_class} needs")
        chosen = rng.permutation(idx)[start:start + count]
        for i in chosen:
            grey = Image.fromarray((images[i] * (255.0 / 16.0)).astype(np.uint8))
            big = np.asarray(grey.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR))
            out_images.append(np.repeat(big[..., None], 3, axis=2))
            out_labels.append(label)
    return np.stack(out_images), np.asarray(out_labels)
