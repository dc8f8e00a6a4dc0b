"""The far out-of-domain task: real handwritten digits from scikit-learn's bundled ``load_digits`` (no download).

The 8x8 scans (grey levels 0..16) are upsampled to the embedded image size as white ink on black; each class is
split into train/val/test by a fixed permutation, so the splits never change.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image


def digits_split(classes: Sequence[str], per_class: tuple[int, int, int], seed: int, split: str,
                 image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Images [N, image_size, image_size, 3] uint8 and labels [N] of one split; ``classes`` name digits 0, 1, ...
    in order and ``per_class`` gives the train, val and test images of each."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images, targets = bunch.images, bunch.target
    n_train, n_val, n_test = per_class
    start = {"train": 0, "val": n_train, "test": n_train + n_val}[split]
    count = {"train": n_train, "val": n_val, "test": n_test}[split]
    rng = np.random.default_rng(seed)
    out_images, out_labels = [], []
    for label in range(len(classes)):
        idx = np.flatnonzero(targets == label)
        if len(idx) < n_train + n_val + n_test:
            raise ValueError(f"digit class {classes[label]!r} has {len(idx)} scans, fewer than the "
                             f"{n_train + n_val + n_test} that per_class={per_class} needs")
        chosen = rng.permutation(idx)[start:start + count]
        for i in chosen:
            grey = Image.fromarray((images[i] * (255.0 / 16.0)).astype(np.uint8))
            big = np.asarray(grey.resize((image_size, image_size), Image.BILINEAR))
            out_images.append(np.repeat(big[..., None], 3, axis=2))
            out_labels.append(label)
    return np.stack(out_images), np.asarray(out_labels)
