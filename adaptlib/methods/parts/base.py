"""What a part is: one piece of an adaptation method that changes a CLIP model in one well-defined way.

A part may insert parameters (context vectors, visual tokens, adapters, LoRA factors), choose which existing
parameters train (LayerNorms, biases), change the forward pass, add a loss term, adjust the logits, or ensemble
with the frozen model at inference. It does so through the hooks below, each a no-op by default, so a part only
writes the hooks it needs and any list of parts composes into a method.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    from ..model import AdaptedCLIP, StepOutput


@dataclass
class TrainFeatures:
    """Frozen, unnormalised image features of a few-shot split.

    ``views`` [N, V, E] are augmented views (train transform); ``plain`` [N, E] uses the test transform.
    """

    views: torch.Tensor | None
    plain: torch.Tensor
    labels: torch.Tensor


@dataclass
class PartConfig:
    """Base of every part's config dataclass (peft style): the defaults are those of the original paper."""

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None, part: str) -> "PartConfig":
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            from ...utils.names import nearest

            hints = [f"{u!r} (did you mean {nearest(u, known)!r}?)" if nearest(u, known) else repr(u)
                     for u in unknown]
            raise ValueError(f"part {part!r} has no option {', '.join(hints)}; its options are {sorted(known)}")
        return cls(**values)


class Part(nn.Module):
    """Base class of all parts. Subclasses set the class attributes and override the hooks they need."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type[PartConfig]] = PartConfig
    # What the part touches decides which shortcuts the training core may take.
    modifies_image_encoder: ClassVar[bool] = False  # False: frozen image features can be cached
    modifies_text_encoder: ClassVar[bool] = False  # False: class text features can be computed once
    is_prompt_learner: ClassVar[bool] = False  # builds the class prompts' token embeddings
    is_visual_prompt: ClassVar[bool] = False  # inserts tokens into the image transformer
    class_specific: ClassVar[bool] = False  # holds parameters tied to the training classes
    needs_training_features: ClassVar[bool] = False  # reads frozen features of the training set (Tip cache)

    def __init__(self, config: PartConfig | None = None):
        super().__init__()
        self.config = config or self.config_class()

    # ------------------------------------------------------------------ set-up
    def attach(self, model: "AdaptedCLIP") -> None:
        """Called once when the model is built: create parameters, unfreeze or wrap modules of ``model.clip``."""

    def fit(self, model: "AdaptedCLIP", train: "TrainFeatures", val: "TrainFeatures") -> dict[str, float]:
        """Closed-form fitting before gradient training, from frozen features of the few-shot train and val sets
        (parts that declare ``needs_training_features``: Tip-Adapter's cache, the linear probe). Returns what
        it chose, for the result file."""
        return {}

    def set_classes(self, model: "AdaptedCLIP", classnames: list[str]) -> None:
        """The evaluated classes changed (base-to-new, cross-dataset). Class-specific parts must raise
        ``ClassesNotSupported`` or fall back to a class-agnostic behaviour."""

    # ------------------------------------------------------------------ forward hooks
    def visual_tokens(self, layer: int) -> torch.Tensor | None:
        """Visual prompt tokens [n, W] for transformer layer ``layer`` (0-based), or None (visual prompts only)."""
        return None

    def prompt_embeddings(self, model: "AdaptedCLIP", image_features: torch.Tensor | None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """(token embeddings [C, L, W] or [B, C, L, W], EOT index [C]) of the class prompts (prompt learners)."""
        raise NotImplementedError

    def image_features(self, features: torch.Tensor) -> torch.Tensor:
        """Transform unnormalised image features [B, E] (feature adapters)."""
        return features

    def text_features(self, features: torch.Tensor) -> torch.Tensor:
        """Transform unnormalised class text features [C, E] or [B, C, E] (feature adapters)."""
        return features

    def logits(self, logits: torch.Tensor, out: "StepOutput") -> torch.Tensor:
        """Adjust logits [B, C] given the step's normalised features (cache models)."""
        return logits

    def loss(self, out: "StepOutput") -> torch.Tensor | None:
        """An extra loss term for this step (regularisers), or None."""
        return None

    # ------------------------------------------------------------------ inference
    def ensemble(self, model: "AdaptedCLIP", out: "StepOutput", frozen_image: torch.Tensor) -> torch.Tensor | None:
        """Inference-time logits that ensemble with the frozen model, or None (ensembles only)."""
        return None

    def tune_on_validation(self, model: "AdaptedCLIP", evaluate, forward_val=None) -> dict[str, float]:
        """Choose hyper-parameters on the few-shot validation set after training. ``evaluate()`` returns the
        validation accuracy of the model as it is configured now; ``forward_val()`` returns the forward pass
        (StepOutput) over the whole validation set and its labels, for parts that can search in closed form.
        Returns the chosen values."""
        return {}

    # ------------------------------------------------------------------ bookkeeping
    def extra_repr(self) -> str:
        return ", ".join(f"{f.name}={getattr(self.config, f.name)!r}" for f in fields(self.config))


class ClassesNotSupported(RuntimeError):
    """A class-specific part cannot score classes it was not trained on (e.g. a linear probe on new classes)."""
