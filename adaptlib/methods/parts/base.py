"""What a part is: one piece of an adaptation method that changes a CLIP model in one well-defined way.

A part may insert parameters (context vectors, visual tokens, adapters, LoRA factors), choose which existing
parameters train (LayerNorms, biases), change the forward pass, add a loss term, adjust the logits, or ensemble
with the frozen model at inference. It does so through the hooks below, each a no-op by default, so a part only
writes the hooks it needs and any list of parts composes into a method.

Besides the hooks, every part declares its contract (as peft's tuners do), with neutral defaults: which backbone
parameters it owns, which tensors it fits in closed form, the backbone weights it changes in place (merged), how
it is switched off, which options act only at inference, and the state that rebuilds it. The model, the training
core, the parameter counts, drift and export read only this contract; none of them knows a part by name.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

import torch
from torch import nn

from ...utils.names import unknown_keys_error
from ...utils.typed import OptionTypeError, coerce, field_types
from ..step import StepOutput, TrainFeatures, TrainingPlan


@dataclass
class PartConfig:
    """Base of every part's config dataclass (peft style): the defaults are those of the original paper.

    Options are checked before anything runs: their names, their types (the dataclass's annotations; a numeric
    string such as "2e-4" is read as the number a numeric field needs) and their ranges, which each config
    declares in ``check()`` with ``require_range`` and ``require_choice``.
    """

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None, part: str) -> "PartConfig":
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        if set(values) - known:
            raise unknown_keys_error(f"part {part!r}", set(values) - known, known)
        types = field_types(cls)
        try:
            values = {k: coerce(v, types[k], f"option {k!r}") for k, v in values.items()}
            config = cls(**values)
            config.check()
        except OptionTypeError as err:
            raise OptionTypeError(f"part {part!r}: {err}") from None
        return config

    def check(self) -> None:
        """Raise ``OptionTypeError`` (through ``require_range``/``require_choice``) for an option out of its
        range. Subclasses list their ranges here; the default has none."""


def require_range(config: PartConfig, option: str, low: float | None = None, high: float | None = None, *,
                  low_open: bool = False, high_open: bool = False, optional: bool = False) -> None:
    """``option`` of ``config`` must lie in [low, high] (an open end with ``low_open``/``high_open``; None: no
    bound; ``optional``: None is allowed too)."""
    value = getattr(config, option)
    if value is None and optional:
        return
    ok = value is not None and not (isinstance(value, float) and value != value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        expected = _range_text(low, high, low_open, high_open) + (" or null" if optional else "")
        raise OptionTypeError(f"option {option!r} = {value!r} is out of range: expected {expected}")


def require_choice(config: PartConfig, option: str, choices: tuple) -> None:
    value = getattr(config, option)
    if value not in choices:
        raise OptionTypeError(f"option {option!r} = {value!r} is not one of {list(choices)}")


def _range_text(low, high, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"a value in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"a value {'>' if low_open else '>='} {low:g}"
    return f"a value {'<' if high_open else '<='} {high:g}"


class Part(nn.Module):
    """Base class of all parts. Subclasses set the class attributes and override the hooks they need.

    ``model`` in every hook is the AdaptedCLIP the part belongs to.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type[PartConfig]] = PartConfig
    # What the part touches decides which shortcuts the training core may take.
    modifies_image_encoder: ClassVar[bool] = False  # False: frozen image features can be cached
    modifies_text_encoder: ClassVar[bool] = False  # False: class text features can be computed once
    # True: of the image encoder it changes only the last linear projection, so the pooled features before it can
    # be cached (on towers that expose them: ``encoders.pooled_supported``) and the model projects them itself
    modifies_only_image_projection: ClassVar[bool] = False
    is_prompt_learner: ClassVar[bool] = False  # builds the class prompts' token embeddings
    is_visual_prompt: ClassVar[bool] = False  # inserts tokens into the image transformer
    class_specific: ClassVar[bool] = False  # holds parameters tied to the training classes
    needs_training_features: ClassVar[bool] = False  # reads frozen features of the training set (Tip cache)
    needs_frozen_image: ClassVar[bool] = False  # its loss reads the frozen model's features of each training batch
    inference_options: ClassVar[tuple[str, ...]] = ()  # config options that act only at inference (no retraining)

    def __init__(self, config: PartConfig | None = None):
        super().__init__()
        self.config = config or self.config_class()
        self.enabled = True

    # ------------------------------------------------------------------ set-up
    def attach(self, model) -> None:
        """Called once when the model is built: create parameters, unfreeze or wrap modules of ``model.clip``."""

    def fit(self, model, train: TrainFeatures, val: TrainFeatures | None) -> dict[str, float]:
        """Closed-form fitting before gradient training, from frozen features of the few-shot train and val sets
        (parts that declare ``needs_training_features``: Tip-Adapter's cache, the linear probe). ``val`` is None
        when the run selects without validation data (``fixed``): a part that would choose on it uses its fixed
        setting. Returns what it chose, for the result file."""
        return {}

    def set_classes(self, model, classnames: list[str]) -> None:
        """The evaluated classes changed (base-to-new, cross-dataset). Class-specific parts must raise
        ``ClassesNotSupported`` or fall back to a class-agnostic behaviour."""

    # ------------------------------------------------------------------ the contract: what the part owns
    def backbone_parameters(self, model) -> list[nn.Parameter]:
        """Existing backbone parameters (of ``model.clip``) that this part unfreezes and trains in place. The part
        owns them: they count as its parameters, and switching the part off restores their frozen values."""
        return []

    def fitted_parameters(self) -> list[torch.Tensor]:
        """Tensors fitted in closed form rather than by gradients (a linear probe's weights): they count as the
        part's parameters although they do not train in the loop."""
        return []

    def merged_weights(self, model) -> dict[str, torch.Tensor]:
        """Backbone weights, by their name in the frozen backbone, as this part changes them through modules it
        inserted (LoRA: W + s B A). Parameter drift and export read these; a part switched off returns the
        frozen weights."""
        return {}

    def set_enabled(self, enabled: bool) -> None:
        """Switch the part on or off. Off, the model skips its hooks; a part that acts inside modules it inserted
        into the backbone must also make those modules compute as the frozen ones."""
        self.enabled = bool(enabled)

    def set_inference_option(self, option: str, value: Any) -> None:
        """Change one of ``inference_options`` after training (an ensemble weight swept at evaluation)."""
        if option not in self.inference_options:
            raise ValueError(f"part {self.name!r} has no inference-time option {option!r}; it has "
                             f"{list(self.inference_options)}")
        self.config = replace(self.config, **{option: value})

    # ------------------------------------------------------------------ the contract: state that rebuilds it
    def state_tensors(self, model) -> dict[str, torch.Tensor]:
        """The part's own tensors after training and fitting, as ``state_dict`` names them, without the frozen
        backbone modules it may wrap (those come back from the backbone itself)."""
        frozen = {t.data_ptr() for t in model.clip.parameters() if not t.requires_grad}
        return {k: v.detach() for k, v in self.state_dict().items() if v.data_ptr() not in frozen or v.numel() == 0}

    def load_state_tensors(self, model, tensors: dict[str, torch.Tensor]) -> None:
        """Load what ``state_tensors`` saved into a freshly attached part."""
        missing, unexpected = self.load_state_dict(tensors, strict=False)
        saved_names = set(self.state_tensors(model))
        lost = sorted(set(missing) & saved_names)
        if lost or unexpected:
            raise ValueError(f"part {self.name!r}: saved state does not fit (missing {lost[:3]}, unexpected "
                             f"{sorted(unexpected)[:3]})")

    def extra_state(self) -> dict[str, Any]:
        """Plain values (not tensors) chosen after training that the part needs back (Tip-Adapter's alpha, beta)."""
        return {}

    def load_extra_state(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            setattr(self, key, value)

    # ------------------------------------------------------------------ forward hooks
    def visual_tokens(self, layer: int) -> torch.Tensor | None:
        """Visual prompt tokens [n, W] for transformer layer ``layer`` (0-based), or None (visual prompts only)."""
        return None

    def text_tokens(self, layer: int) -> torch.Tensor | None:
        """Deep text prompt tokens [n, W] for text transformer block ``layer`` (>= 1), or None. Before that block
        they replace the n positions right after the tokenizer's prefix, where a prompt learner's context sits, as
        MaPLe's and IVLP's text encoders do. Only the model's prompt learner is asked, and only when it overrides
        this hook: without one the text encoder runs exactly as before."""
        return None

    def prompt_embeddings(self, model, image_features: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(token embeddings [C, L, W] or [B, C, L, W], EOT index [C]) of the class prompts (prompt learners)."""
        raise NotImplementedError

    def shared_prompt_positions(self) -> int:
        """How many leading positions of ``prompt_embeddings`` are one tensor for every class of a prompt set (the
        tokenizer's prefix, a context shared by all classes, fixed words after it): the text encoder then computes
        them once per set instead of once per class (``backbones.shared_prefix``). They must all come before the
        position a prompt is pooled at (its end-of-text token, after the class name). 0 declares none."""
        return 0

    def image_features(self, features: torch.Tensor) -> torch.Tensor:
        """Transform unnormalised image features [B, E] (feature adapters)."""
        return features

    def text_features(self, features: torch.Tensor) -> torch.Tensor:
        """Transform unnormalised class text features [C, E] or [B, C, E] (feature adapters)."""
        return features

    def logits(self, logits: torch.Tensor, out: StepOutput) -> torch.Tensor:
        """Adjust logits [B, C] given the step's normalised features (cache models)."""
        return logits

    def loss(self, out: StepOutput) -> torch.Tensor | None:
        """An extra loss term for this step (regularisers), or None."""
        return None

    # ------------------------------------------------------------------ training hooks (the loop calls them)
    def begin_training(self, model, plan: TrainingPlan) -> None:
        """Before the first step of gradient training: what the run will do (epochs, steps, shots), for parts
        whose settings depend on it (ProLIP's lambda = 1/K) or that keep state across epochs."""

    def end_epoch(self, model, epoch: int, plan: TrainingPlan) -> None:
        """After the last step of epoch ``epoch`` (0-based; a step-capped run's last epoch may be partial):
        PromptSRC's Gaussian-weighted aggregation of the parameters over epochs."""

    def end_training(self, model, plan: TrainingPlan) -> None:
        """After the last step, before evaluation (load an aggregate of the parameters)."""

    # ------------------------------------------------------------------ inference
    def ensemble(self, model, out: StepOutput, frozen_image: torch.Tensor) -> torch.Tensor | None:
        """Inference-time logits that ensemble with the frozen model, or None (ensembles only)."""
        return None

    def tune_on_validation(self, model, evaluate, forward_val=None) -> dict[str, float]:
        """Choose hyper-parameters on the few-shot validation set after training. ``evaluate()`` returns the
        validation accuracy of the model as it is configured now; ``forward_val()`` returns the forward pass
        (StepOutput) over the whole validation set and its labels, for parts that can search in closed form.
        Returns the chosen values. Under the ``oracle_test`` selection the same call sees the test split."""
        return {}

    def only_ensemble(self, model) -> bool:
        """Whether this is the only part that acts after the logits, so a search over its inference weights can
        score one forward pass of the validation set in closed form (Tip-Adapter's cache, GDA)."""
        return not [p for p in model.parts if p is not self and type(p).ensemble is not Part.ensemble]

    @torch.no_grad()
    def forward_without_self(self, forward_val):
        """``forward_val()`` (the validation set's StepOutput and labels) with this part's logits switched off, for
        a closed-form search that adds them back at each candidate weight. Needs an ``active`` flag."""
        self.active = False
        try:
            return forward_val()
        finally:
            self.active = True

    def fixed_choice(self) -> dict[str, float]:
        """What a part that tunes on validation uses when a run has no validation data (``fixed`` selection): its
        published fixed setting or validation-free rule, as configured. Returns those values, for the result."""
        return {}

    # ------------------------------------------------------------------ bookkeeping
    def extra_repr(self) -> str:
        return ", ".join(f"{f.name}={getattr(self.config, f.name)!r}" for f in fields(self.config))


TRAINING_HOOKS = ("begin_training", "end_epoch", "end_training")


def overrides(part: Part, hook: str) -> bool:
    """Whether ``part``'s class overrides the base hook ``hook`` (a part that does not is a no-op there)."""
    return getattr(type(part), hook) is not getattr(Part, hook)


class ClassesNotSupported(RuntimeError):
    """A class-specific part cannot score classes it was not trained on (e.g. a linear probe on new classes)."""
