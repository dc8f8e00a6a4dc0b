"""The composable model: a frozen CLIP plus a list of parts, with one forward pass for every method.

Image side: pixels -> image encoder (visual prompts, LoRA, tuned LayerNorms/biases act inside) -> feature
adapters. When no part touches the image encoder, frozen features from the cache replace the first step.
Text side: class prompts (a prompt learner's embeddings, or the dataset's templates) -> text encoder ->
feature adapters. When nothing touches the text side, the zero-shot class features are computed once.
Logits are CLIP's: the backbone's logit scale times cosine similarity, which cache models may adjust.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones.load import Backbone
from .encoders import encode_image, encode_prompts, encode_token_ids
from .parts.base import Part


@dataclass
class Batch:
    """A batch as the training core hands it over: labels plus images, frozen features, or both."""

    labels: torch.Tensor | None = None
    images: torch.Tensor | None = None  # preprocessed pixels [B, 3, H, W]
    features: torch.Tensor | None = None  # frozen, unnormalised image features [B, E] (feature cache)
    encoded: torch.Tensor | None = None  # this model's own image-encoder output [B, E], computed earlier

    def to(self, device) -> "Batch":
        move = (lambda t: t.to(device, non_blocking=True) if t is not None else None)
        return Batch(move(self.labels), move(self.images), move(self.features), move(self.encoded))

    def __len__(self) -> int:
        for t in (self.labels, self.features, self.images):
            if t is not None:
                return t.shape[0]
        return 0


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


class AdaptedCLIP(nn.Module):
    """A CLIP backbone adapted by ``parts``; every method of adaptlib is one of these."""

    def __init__(self, backbone: Backbone, classnames: list[str], templates: list[str], parts: list[Part],
                 text_chunk: int = 128):
        super().__init__()
        self.backbone_name = backbone.key
        self.clip = backbone.model
        self.clip.requires_grad_(False)
        self.clip.eval()
        self.tokenizer = backbone.tokenizer
        self.templates = list(templates)
        self.text_chunk = text_chunk
        self.parts = nn.ModuleList(parts)
        self._check_parts()
        self.classnames: list[str] = []
        self.register_buffer("zero_shot_text", torch.empty(0), persistent=False)
        self.register_buffer("template_tokens", torch.empty(0, dtype=torch.long), persistent=False)
        self._set_class_tensors(list(classnames))
        self._initial: dict[str, torch.Tensor] = {}  # nothing has trained yet: the model is the frozen one
        for part in self.parts:
            part.attach(self)
        # original values of every backbone parameter a part unfroze (LoRA factors included): the frozen model
        self._initial = {n: p.detach().clone() for n, p in self.clip.named_parameters() if p.requires_grad}
        # every trainable parameter at the start of training (prompt vectors too), for drift analysis
        self.initial_trainable = {n: p.detach().clone() for n, p in self.trainable_parameters()}

    # ------------------------------------------------------------------ structure
    def _check_parts(self) -> None:
        names = [p.name for p in self.parts]
        for flag, what in (("is_prompt_learner", "text prompt learner"), ("is_visual_prompt", "visual prompt")):
            having = [p.name for p in self.parts if getattr(p, flag)]
            if len(having) > 1:
                raise ValueError(f"a model takes at most one {what}; got {having} in parts {names}")
        if len(set(names)) != len(names):
            raise ValueError(f"a part may appear once per model; got {names}")

    @property
    def prompt_learner(self) -> Part | None:
        return next((p for p in self.parts if p.is_prompt_learner), None)

    @property
    def visual_prompt(self) -> Part | None:
        return next((p for p in self.parts if p.is_visual_prompt), None)

    @property
    def uses_image_encoder(self) -> bool:
        """True when the image encoder must run every step (a part changes it)."""
        return any(p.modifies_image_encoder for p in self.parts)

    @property
    def uses_text_encoder(self) -> bool:
        """True when the class text features change during training."""
        return any(p.modifies_text_encoder or p.is_prompt_learner for p in self.parts)

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale.exp().detach()

    def trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if p.requires_grad]

    def num_trainable(self) -> int:
        return sum(p.numel() for _, p in self.trainable_parameters())

    @contextmanager
    def frozen_view(self):
        """Within the block the model computes as the frozen backbone: trained backbone parameters hold their
        original values (LoRA's B is zero at start) and visual prompts are off."""
        saved = {}
        params = dict(self.clip.named_parameters())
        with torch.no_grad():
            for name, initial in self._initial.items():
                saved[name] = params[name].detach().clone()
                params[name].copy_(initial.to(params[name].device))
        prompt = self.visual_prompt
        was_enabled = getattr(prompt, "enabled", None)
        if prompt is not None:
            prompt.enabled = False
        try:
            yield self
        finally:
            with torch.no_grad():
                for name, value in saved.items():
                    params[name].copy_(value)
            if prompt is not None:
                prompt.enabled = was_enabled

    def drift_state(self) -> dict[str, torch.Tensor]:
        """What drift analysis needs, as flat tensors: ``initial/<name>`` and ``final/<name>`` of every trainable
        parameter, and ``merged/<backbone name>`` for backbone weights that LoRA changes (W + s B A)."""
        out = {}
        for name, p in self.trainable_parameters():
            out[f"initial/{name}"] = self.initial_trainable[name].detach().cpu().contiguous()
            out[f"final/{name}"] = p.detach().cpu().contiguous()
        for part in self.parts:
            if hasattr(part, "merged_weights"):
                for name, value in part.merged_weights(self).items():
                    out[f"merged/{name}"] = value.detach().cpu().contiguous()
        return out

    # ------------------------------------------------------------------ classes
    @torch.no_grad()
    def _set_class_tensors(self, classnames: list[str]) -> None:
        self.classnames = list(classnames)
        prompts = [t.format(c) for c in classnames for t in self.templates]
        device = self.clip.logit_scale.device
        tokens = self.tokenizer(prompts).to(device)
        self.template_tokens = tokens
        feats = F.normalize(encode_token_ids(self.clip, tokens, self.text_chunk).float(), dim=-1)
        feats = feats.view(len(classnames), len(self.templates), -1).mean(dim=1)
        self.zero_shot_text = F.normalize(feats, dim=-1)

    def set_classes(self, classnames: list[str], templates: list[str] | None = None) -> None:
        """Score a different set of classes (base -> new, cross-dataset) with the adapted model."""
        if templates is not None:
            self.templates = list(templates)
        with self.frozen_view():
            self._set_class_tensors(list(classnames))
        for part in self.parts:
            part.set_classes(self, self.classnames)

    # ------------------------------------------------------------------ forward
    def image_features_raw(self, batch: Batch) -> torch.Tensor:
        if batch.encoded is not None:
            return batch.encoded
        if batch.features is not None and not self.uses_image_encoder:
            return batch.features
        if batch.images is None:
            raise ValueError("this model changes the image encoder: batches need images, not cached features")
        prompt = self.visual_prompt
        return encode_image(self.clip, batch.images, prompt.visual_tokens if prompt is not None else None)

    def text_features_raw(self, image_features: torch.Tensor | None = None) -> torch.Tensor:
        """Class text features before feature adapters: [C, E], or [B, C, E] for conditional prompts."""
        learner = self.prompt_learner
        if learner is not None:
            emb, eot = learner.prompt_embeddings(self, image_features)
            if emb.dim() == 4:  # one prompt set per image (CoCoOp)
                b, c = emb.shape[:2]
                flat = encode_prompts(self.clip, emb.flatten(0, 1), eot.repeat(b), self.text_chunk)
                return flat.view(b, c, -1)
            return encode_prompts(self.clip, emb, eot, self.text_chunk)
        if self.uses_text_encoder:
            feats = F.normalize(encode_token_ids(self.clip, self.template_tokens, self.text_chunk), dim=-1)
            return feats.view(len(self.classnames), len(self.templates), -1).mean(dim=1)
        return self.zero_shot_text

    def forward(self, batch: Batch) -> StepOutput:
        image_raw = self.image_features_raw(batch)
        image = image_raw
        for part in self.parts:
            image = part.image_features(image)
        image_n = F.normalize(image, dim=-1)
        text_raw = self.text_features_raw(image_n)
        text = text_raw
        for part in self.parts:
            text = part.text_features(text)
        text_n = F.normalize(text, dim=-1)
        scale = self.logit_scale
        if text_n.dim() == 3:
            logits = scale * torch.einsum("be,bce->bc", image_n, text_n.to(image_n.dtype))
        else:
            logits = scale * image_n @ text_n.to(image_n.dtype).t()
        out = StepOutput(image=image_n, text=text_n, logits=logits, scale=scale, zero_shot_text=self.zero_shot_text,
                         image_raw=image_raw, text_raw=text_raw, image_adapted=image, text_adapted=text,
                         labels=batch.labels)
        for part in self.parts:
            out.logits = part.logits(out.logits, out)
        return out

    def loss(self, out: StepOutput) -> tuple[torch.Tensor, dict[str, float]]:
        """Cross-entropy of the logits plus every part's extra term; returns the total and its pieces."""
        ce = F.cross_entropy(out.logits.float(), out.labels)
        total, pieces = ce, {"ce": float(ce.detach())}
        for part in self.parts:
            extra = part.loss(out)
            if extra is not None:
                total = total + extra
                pieces[part.name] = float(extra.detach())
        return total, pieces

    @torch.no_grad()
    def predict(self, batch: Batch) -> torch.Tensor:
        """Inference logits [B, C]: the forward pass, or an ensemble part's combination with the frozen model."""
        out = self.forward(batch)
        for part in self.parts:
            combined = part.ensemble(self, out, batch.features)
            if combined is not None:
                return combined
        return out.logits
