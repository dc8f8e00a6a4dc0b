"""Classify image files with an exported model (``adaptlib predict``) and write the predictions as CSV.

Images are preprocessed exactly as the run's test evaluation preprocesses a folder dataset: opened with PIL,
converted to RGB, the shorter side resized to the backbone's size (its interpolation), centre-cropped, normalised
with its mean and std (``data.transforms.build_transform(cfg, train=False)``). Probabilities are the model's own
reading of its logits (``AdaptedCLIP.predict``: CLIP's scaled cosines, adjusted by cache models and ensembles, the
quantity the run's accuracy takes its argmax of): their softmax, or the model's ``probabilities`` where it defines
one (a sigmoid per class for a backbone with sigmoid logits). The predicted class is the argmax either way. An
image that cannot be read is a row with its error and no prediction; the others go on. Images embedded in memory
(the embedded world) are transformed by tensors in the run, the same pixels at their native size.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.transforms import build_transform
from ..utils.atomic import atomic_path
from .export import ExportedModel, image_logits

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
LIST_EXTENSIONS = (".txt", ".lst", ".list")


@dataclass
class Prediction:
    """One image's row: its class and probabilities, or the error that kept it from being classified."""

    path: str
    predicted: str = ""
    probabilities: list[float] | None = None
    error: str = ""


def list_images(source: str | os.PathLike) -> list[Path]:
    """The images ``source`` names: an image file, a folder (recursively, common image extensions, sorted) or a
    text file listing image paths (one per line; relative to the list's folder; blank lines and # comments
    skipped)."""
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"--images {path} does not exist: give an image file, a folder of images or a text "
                                f"file listing image paths")
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not found:
            raise ValueError(f"--images {path}: the folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        return found
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return [path]
    if path.suffix.lower() in LIST_EXTENSIONS:
        return _listed(path)
    raise ValueError(f"--images {path} is neither an image ({', '.join(IMAGE_EXTENSIONS)}) nor a list of image "
                     f"paths ({', '.join(LIST_EXTENSIONS)})")


def _listed(path: Path) -> list[Path]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"--images {path}: the list cannot be read as text ({err})") from None
    entries = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not entries:
        raise ValueError(f"--images {path}: the list names no image paths (one per line)")
    return [Path(e) if Path(e).is_absolute() else path.parent / e for e in entries]


def load_image(path: Path, transform) -> torch.Tensor:
    """One preprocessed image [3, H, W]; raises what PIL raises for a file it cannot read."""
    from PIL import Image

    with Image.open(path) as img:
        return transform(img.convert("RGB"))


def _chunks(items: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def predict_images(exported: ExportedModel, paths: list[Path], batch_size: int = 64,
                   progress: bool = True) -> list[Prediction]:
    """A prediction for each path, in order: class probabilities over the export's classes, or an error."""
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    transform = build_transform(exported.transform, train=False)
    classes = exported.model.classnames
    rows: list[Prediction] = []
    with tqdm(total=len(paths), desc="predict", unit="image", disable=not progress) as bar:
        for chunk in _chunks(paths, batch_size):
            loaded: list[tuple[Prediction, torch.Tensor]] = []
            for path in chunk:
                row = Prediction(str(path))
                rows.append(row)
                try:
                    loaded.append((row, load_image(path, transform)))
                except Exception as err:  # noqa: BLE001 - any unreadable image is reported in its row, not fatal
                    row.error = f"{type(err).__name__}: {err}"
            if loaded:
                logits = image_logits(exported.model, torch.stack([x for _, x in loaded]))
                probs = probabilities(exported.model, logits)
                for (row, _), p in zip(loaded, probs):
                    row.probabilities = p.tolist()
                    row.predicted = classes[int(p.argmax())]
            bar.update(len(chunk))
    return rows


def probabilities(model, logits: torch.Tensor) -> torch.Tensor:
    """The model's own reading of its logits (``AdaptedCLIP.probabilities``: a softmax, or a sigmoid per class for
    a backbone with sigmoid logits) where it has one, else the softmax."""
    convert = getattr(model, "probabilities", None)
    return (convert(logits) if callable(convert) else logits.float().softmax(dim=-1)).cpu()


def write_predictions(rows: list[Prediction], classnames: list[str], out: str | os.PathLike) -> Path:
    """CSV (atomically): path, predicted, error, then one probability column ``p:<class>`` per class."""
    out = Path(out)
    with atomic_path(out) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "predicted", "error", *[f"p:{c}" for c in classnames]])
            for row in rows:
                probs = [f"{p:.8g}" for p in row.probabilities] if row.probabilities is not None else \
                    [""] * len(classnames)
                writer.writerow([row.path, row.predicted, row.error, *probs])
    return out
