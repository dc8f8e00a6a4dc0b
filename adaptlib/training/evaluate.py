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
def predict_logits(model: AdaptedCLIP, labels: torch.Tensor, device, frozen: torch.Tensor | None = None,
                   encoded: torch.Tensor | None = None, batch_size: int = 512) -> torch.Tensor:
    """Inference logits [N, C] (float, CPU) from precomputed features: ``encoded`` (the model's own encoder
    output) when the image encoder is adapted, else ``frozen`` features; ``frozen`` also feeds ensembles."""
    model.eval()
    out = []
    n = len(labels)
    for i in range(0, n, batch_size):
        sl = slice(i, i + batch_size)
        batch = Batch(labels=labels[sl],
                      features=frozen[sl] if frozen is not None else None,
                      encoded=encoded[sl] if encoded is not None else None).to(device)
        with autocast_for(device):
            logits = model.predict(batch)
        out.append(logits.float().cpu())
    return torch.cat(out) if out else torch.empty(0, 0)


@torch.no_grad()
def predict(model: AdaptedCLIP, labels: torch.Tensor, device, frozen: torch.Tensor | None = None,
            encoded: torch.Tensor | None = None, batch_size: int = 512) -> torch.Tensor:
    """Predicted labels (the argmax of :func:`predict_logits`)."""
    logits = predict_logits(model, labels, device, frozen, encoded, batch_size)
    return logits.argmax(dim=1) if len(logits) else torch.empty(0, dtype=torch.long)


CALIBRATION_METRICS = ("ece", "nll", "worst_class_accuracy")


def normalised(probabilities: torch.Tensor) -> torch.Tensor:
    """Class probabilities [N, C] in float64, renormalised over the classes (a sigmoid model's scores too)."""
    p = probabilities.double()
    return p / p.sum(dim=1, keepdim=True).clamp_min(1e-300)


def reliability_bins(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> dict[str, list]:
    """The reliability diagram of class probabilities [N, C] over ``bins`` equal-width confidence bins (the top
    class's probability; a bin is (lo, hi]): per bin its image count, mean confidence and accuracy (None where
    the bin is empty). ECE is the count-weighted mean of |confidence - accuracy| over these bins."""
    confidence, predicted = normalised(probabilities).max(dim=1)
    correct = (predicted == labels).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    count, mean_confidence, mean_accuracy = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (confidence > lo) & (confidence <= hi)
        count.append(int(inside.sum()))
        mean_confidence.append(float(confidence[inside].mean()) if inside.any() else None)
        mean_accuracy.append(float(correct[inside].mean()) if inside.any() else None)
    return {"count": count, "confidence": mean_confidence, "accuracy": mean_accuracy}


def expected_calibration_error(bins: dict[str, list]) -> float:
    """ECE (Guo et al., 2017) of a :func:`reliability_bins` record."""
    total = sum(bins["count"])
    return float(sum(n / total * abs(c - a) for n, c, a in zip(bins["count"], bins["confidence"], bins["accuracy"])
                     if n))


def calibration_metrics(probabilities: torch.Tensor, labels: torch.Tensor, classnames: list[str],
                        bins: int = 15) -> tuple[dict[str, float], dict[str, float], dict[str, list]]:
    """({ece, nll, worst_class_accuracy}, per-class accuracy by class name, reliability bins) of class
    probabilities [N, C].

    ECE: the expected calibration error over ``bins`` equal-width confidence bins (Guo et al., 2017; the
    confidence is the top class's probability), NLL: the mean negative log-probability of the true class, both
    on probabilities normalised over the classes (a sigmoid model's scores are renormalised to compare). Worst
    class: the lowest accuracy of a class with test images."""
    if len(labels) == 0:
        raise ValueError("cannot compute calibration metrics on an empty split")
    p = normalised(probabilities)
    correct = (p.argmax(dim=1) == labels).double()
    reliability = reliability_bins(probabilities, labels, bins)
    nll = float(-p[torch.arange(len(labels)), labels].clamp_min(1e-12).log().mean())
    per_class = {}
    for c, name in enumerate(classnames):
        mask = labels == c
        if mask.any():
            per_class[name] = float(correct[mask].mean())
    values = {"ece": expected_calibration_error(reliability), "nll": nll,
              "worst_class_accuracy": min(per_class.values())}
    return values, per_class, reliability


def accuracy(preds: torch.Tensor, labels: torch.Tensor) -> float:
    if len(labels) == 0:
        raise ValueError("cannot compute accuracy on an empty split")
    return float((preds == labels).float().mean())
