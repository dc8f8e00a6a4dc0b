"""What flows between the training core, the model and its parts: batches, frozen training features, and the
outputs of one forward pass. Plain containers, so parts and the model can share them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Batch:
    """A batch as the training core hands it over: labels plus images, frozen features, or both."""

    labels: torch.Tensor | None = None
    images: torch.Tensor | None = None  # preprocessed pixels [B, 3, H, W]
    features: torch.Tensor | None = None  # frozen, unnormalised image features [B, E] (feature cache)
    encoded: torch.Tensor | None = None  # this model's own image-encoder output [B, E], computed earlier
    pooled: torch.Tensor | None = None  # frozen pooled features before the tower's projection [B, W] (cache)

    def to(self, device) -> "Batch":
        move = (lambda t: t.to(device, non_blocking=True) if t is not None else None)
        return Batch(move(self.labels), move(self.images), move(self.features), move(self.encoded), move(self.pooled))

    def __len__(self) -> int:
        for t in (self.labels, self.features, self.images, self.pooled):
            if t is not None:
                return t.shape[0]
        return 0


@dataclass
class TrainFeatures:
    """Frozen, unnormalised image features of a few-shot split.

    ``views`` [N, V, E] are augmented views (train transform); ``plain`` [N, E] uses the test transform.
    """

    views: torch.Tensor | None
    plain: torch.Tensor
    labels: torch.Tensor


@dataclass
class StepOutput:
    """Everything a part may need to compute its loss or logits for one step."""

    image: torch.Tensor  # normalised image features [B, E]
    text: torch.Tensor  # normalised class text features [C, E] or per image [B, C, E]
    logits: torch.Tensor  # [B, C]
    scale: torch.Tensor
    zero_shot_text: torch.Tensor  # normalised hand-crafted class features [C, E] of the frozen model
    image_raw: torch.Tensor | None = None  # image features before feature adapters (unnormalised)
    text_raw: torch.Tensor | None = None  # class text features before feature adapters (unnormalised)
    image_adapted: torch.Tensor | None = None  # after feature adapters, before normalisation
    text_adapted: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    extras: dict = field(default_factory=dict)
    # the frozen model's unnormalised image features of the batch, in training, when a part asks for them
    # (``Part.needs_frozen_image``: PromptSRC's self-consistency losses); None otherwise
    frozen_image: torch.Tensor | None = None


@dataclass(frozen=True)
class TrainingPlan:
    """What the training loop is about to do, told to every part before the first step
    (``Part.begin_training``) and at each epoch's end (``Part.end_epoch``)."""

    total_steps: int
    steps_per_epoch: int
    epochs: int  # ceil(total_steps / steps_per_epoch): the last one may be cut short by a step cap
    shots: int | None = None  # K training images per class (None: the caller did not say)
