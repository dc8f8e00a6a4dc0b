"""The composable model: a frozen CLIP plus a list of parts, with one forward pass for every method.

Image side: pixels -> image encoder (visual prompts, LoRA, tuned LayerNorms/biases act inside) -> feature
adapters. When no part touches the image encoder, frozen features from the cache replace the first step.
Text side: class prompts (a prompt learner's embeddings, or the dataset's templates) -> text encoder ->
feature adapters. When nothing touches the text side, the zero-shot class features are computed once.
Logits are the backbone's: its logit scale times cosine similarity (plus SigLIP's learned bias, whose logits are
sigmoid scores and whose training loss is the sigmoid loss), which cache models may adjust.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones.family import logit_bias
from ..backbones.load import Backbone
from ..backbones.text import (DeepTextPrompts, average_templates, class_prompts, classes_per_packing, encode_prompts,
                              prompt_features, token_frame)
from .encoders import encode_image, pooled_supported, project_pooled
from .parts.base import Part, overrides
from .step import Batch, StepOutput


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
        self._text_prefix: int | None = None  # the tokenizer's prefix length, read when deep text prompts need it
        self.parts = nn.ModuleList(parts)
        self._check_parts()
        self.classnames: list[str] = []
        self.register_buffer("zero_shot_text", torch.empty(0), persistent=False)
        self.register_buffer("template_tokens", torch.empty(0, dtype=torch.long), persistent=False)
        self._set_class_tensors(list(classnames))
        # every backbone parameter by its name in the frozen backbone, before any part wraps a module
        self._backbone_names = {id(p): n for n, p in self.clip.named_parameters()}
        self._initial: dict[str, torch.Tensor] = {}  # nothing has trained yet: the model is the frozen one
        for part in self.parts:
            part.attach(self)
        self._assign_owners()  # refuses a model whose parts do not own their parameters
        # the frozen values of every backbone parameter a part trains in place: switching parts off restores them
        self._initial = {self.frozen_name(p): p.detach().clone()
                         for part in self.parts for p in part.backbone_parameters(self)}

    # ------------------------------------------------------------------ structure
    def _check_parts(self) -> None:
        names = [p.name for p in self.parts]
        for flag, what in (("is_prompt_learner", "text prompt learner"), ("is_visual_prompt", "visual prompt")):
            having = [p.name for p in self.parts if getattr(p, flag)]
            if len(having) > 1:
                raise ValueError(f"a model takes at most one {what}; got {having} in parts {names}")
        if len(set(names)) != len(names):
            raise ValueError(f"a part may appear once per model; got {names}")

    def _assign_owners(self) -> dict[int, Part]:
        """Each trainable parameter's one owning part: the part's own parameters plus the backbone parameters it
        trains in place. Two owners, or a trainable parameter with none, is a defect of a part."""
        owners: dict[int, Part] = {}
        for part in self.parts:
            own = [p for p in part.parameters() if p.requires_grad] + list(part.backbone_parameters(self))
            for p in own:
                other = owners.get(id(p))
                if other is not None and other is not part:
                    raise ValueError(f"parts {other.name!r} and {part.name!r} both train the backbone parameter "
                                     f"{self._backbone_names.get(id(p), '?')!r}: a parameter has one owner")
                owners[id(p)] = part
        orphans = [n for n, p in self.named_parameters() if p.requires_grad and id(p) not in owners]
        if orphans:
            raise ValueError(f"trainable parameters {orphans[:3]} belong to no part: a part must declare the "
                             f"backbone parameters it unfreezes (Part.backbone_parameters)")
        return owners

    def frozen_name(self, param: torch.Tensor) -> str:
        """The name of a backbone parameter in the frozen backbone (stable when a part wraps its module)."""
        return self._backbone_names[id(param)]

    def owner(self, param: torch.Tensor) -> Part | None:
        """The part that trains ``param`` (None for a frozen parameter). Computed afresh: a part may replace its
        parameters when it is fitted (Tip-Adapter's cache keys)."""
        return self._assign_owners().get(id(param))

    def parameters_of(self, part: Part) -> list[nn.Parameter]:
        """The trainable parameters ``part`` owns, each once."""
        owners = self._assign_owners()
        return [p for _, p in self.trainable_parameters() if owners.get(id(p)) is part]

    def parameter_count(self, part: Part) -> int:
        """Trainable plus closed-form fitted parameters of ``part``."""
        return sum(p.numel() for p in self.parameters_of(part)) + sum(t.numel() for t in part.fitted_parameters())

    @property
    def active_parts(self) -> list[Part]:
        return [p for p in self.parts if p.enabled]

    @property
    def prompt_learner(self) -> Part | None:
        return next((p for p in self.active_parts if p.is_prompt_learner), None)

    @property
    def visual_prompt(self) -> Part | None:
        return next((p for p in self.active_parts if p.is_visual_prompt), None)

    @property
    def uses_image_encoder(self) -> bool:
        """True when the image encoder must run every step (a part changes it)."""
        return any(p.modifies_image_encoder for p in self.parts)

    @property
    def trains_on_pooled(self) -> bool:
        """True when the image encoder changes only in its last projection (ProLIP) on a tower that exposes the
        pooled features before it: those stay frozen and can be cached, and the model projects them itself."""
        changing = [p for p in self.parts if p.modifies_image_encoder]
        return bool(changing) and all(p.modifies_only_image_projection for p in changing) and \
            pooled_supported(self.clip)

    @property
    def uses_text_encoder(self) -> bool:
        """True when the class text features change during training."""
        return any(p.modifies_text_encoder or p.is_prompt_learner for p in self.parts)

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale.exp().detach()

    @property
    def sigmoid_logits(self) -> bool:
        """True for a backbone trained with the sigmoid loss (SigLIP): its logits carry a learned bias and its
        class scores are independent sigmoids, not a softmax."""
        return logit_bias(self.clip) is not None

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Class probabilities of logits as the backbone reads them: softmax, or a sigmoid per class (SigLIP)."""
        return torch.sigmoid(logits.float()) if self.sigmoid_logits else logits.float().softmax(dim=-1)

    def trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if p.requires_grad]

    def num_trainable(self) -> int:
        return sum(p.numel() for _, p in self.trainable_parameters())

    def num_fitted(self) -> int:
        """Parameters fitted in closed form rather than by gradients (a linear probe's C x (E + 1))."""
        return sum(t.numel() for part in self.parts for t in part.fitted_parameters())

    def parts_with_inference_option(self, option: str) -> list[Part]:
        return [p for p in self.parts if option in p.inference_options]

    @contextmanager
    def frozen_view(self):
        """Within the block the model computes as the frozen backbone: every part is switched off and the
        backbone parameters the parts train hold their original values."""
        params = {self.frozen_name(p): p for part in self.parts for p in part.backbone_parameters(self)}
        was_enabled = [part.enabled for part in self.parts]
        with torch.no_grad():
            saved = {name: params[name].detach().clone() for name in self._initial}
            for name, initial in self._initial.items():
                params[name].copy_(initial.to(params[name].device))
        for part in self.parts:
            part.set_enabled(False)
        try:
            yield self
        finally:
            with torch.no_grad():
                for name, value in saved.items():
                    params[name].copy_(value)
            for part, enabled in zip(self.parts, was_enabled):
                part.set_enabled(enabled)

    def adapted_backbone_weights(self) -> dict[str, torch.Tensor]:
        """Every backbone weight the adaptation changes, by its frozen-backbone name, as the model computes with
        it now: the parameters parts train in place, and the weights parts change through inserted modules
        (merged). Inside ``frozen_view`` the same names give the frozen values."""
        out = {self.frozen_name(p): p.detach() for part in self.parts for p in part.backbone_parameters(self)}
        for part in self.parts:
            out.update({name: value.detach() for name, value in part.merged_weights(self).items()})
        return out

    # ------------------------------------------------------------------ classes
    @torch.no_grad()
    def _set_class_tensors(self, classnames: list[str]) -> None:
        self.classnames = list(classnames)
        tokens = self.tokenizer(class_prompts(classnames, self.templates)).to(self.clip.logit_scale.device)
        self.template_tokens = tokens
        self.zero_shot_text = average_templates(prompt_features(self.clip, tokens, self.text_chunk), len(classnames))

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
        if batch.pooled is not None:  # cached pooled features: only the (possibly tuned) projection runs
            return project_pooled(self.clip, batch.pooled)
        if batch.features is not None and not self.uses_image_encoder:
            return batch.features
        if batch.images is None:
            raise ValueError("this model changes the image encoder: batches need images, not cached features")
        prompt = self.visual_prompt
        return encode_image(self.clip, batch.images, prompt.visual_tokens if prompt is not None else None)

    def deep_text_prompts(self, learner: Part) -> DeepTextPrompts | None:
        """The prompt learner's deep text prompts (``Part.text_tokens``), spliced in right after the tokenizer's
        prefix; None for a learner without them, whose prompts then run through the text encoder unchanged."""
        if not overrides(learner, "text_tokens"):
            return None
        if self._text_prefix is None:
            self._text_prefix = token_frame(self.tokenizer).prefix
        return DeepTextPrompts(learner.text_tokens, self._text_prefix)

    def text_features_raw(self, image_features: torch.Tensor | None = None) -> torch.Tensor:
        """Class text features before feature adapters: [C, E], or [B, C, E] for conditional prompts."""
        learner = self.prompt_learner
        if learner is not None:
            emb, eot = learner.prompt_embeddings(self, image_features)
            # [C, E], or [B, C, E] for one prompt set per image (CoCoOp)
            return encode_prompts(self.clip, emb, eot, self.text_chunk, deep=self.deep_text_prompts(learner),
                                  shared=learner.shared_prompt_positions())
        if any(p.modifies_text_encoder for p in self.active_parts):
            feats = prompt_features(self.clip, self.template_tokens, self.text_chunk)
            return average_templates(feats, len(self.classnames), renormalise=False)
        return self.zero_shot_text

    @torch.no_grad()
    def prompt_packing(self) -> int:
        """Classes whose prompts the text encoder packs after one copy of their shared leading positions
        (``Part.shared_prompt_positions``, ``backbones.text.classes_per_packing``); 0 where there is no prompt
        learner or its prompts run whole."""
        learner = self.prompt_learner
        if learner is None or not learner.shared_prompt_positions():
            return 0
        emb, _ = learner.prompt_embeddings(self, torch.zeros(1, self.zero_shot_text.shape[1],
                                                             device=self.zero_shot_text.device))
        return classes_per_packing(self.clip, learner.shared_prompt_positions(), emb.shape[-2], self.text_chunk)

    @torch.no_grad()
    def frozen_image_features(self, batch: Batch) -> torch.Tensor | None:
        """The frozen model's unnormalised image features of ``batch``: its cached ones, else its images through
        the encoder with every part off (None when the batch has neither, e.g. encoder outputs only)."""
        if batch.features is not None:
            return batch.features
        if batch.images is None and batch.pooled is None:
            return None
        with self.frozen_view():
            return self.image_features_raw(Batch(images=batch.images, pooled=batch.pooled))

    def forward(self, batch: Batch) -> StepOutput:
        parts = self.active_parts
        # first, before the adapted forward builds its graph: frozen_view restores tuned weights in place
        frozen_image = self.frozen_image_features(batch) if self.training and any(
            p.needs_frozen_image for p in parts) else None
        image_raw = self.image_features_raw(batch)
        image = image_raw
        for part in parts:
            image = part.image_features(image)
        image_n = F.normalize(image, dim=-1)
        text_raw = self.text_features_raw(image_n)
        text = text_raw
        for part in parts:
            text = part.text_features(text)
        text_n = F.normalize(text, dim=-1)
        scale = self.logit_scale
        if text_n.dim() == 3:
            logits = scale * torch.einsum("be,bce->bc", image_n, text_n.to(image_n.dtype))
        else:
            logits = scale * image_n @ text_n.to(image_n.dtype).t()
        bias = logit_bias(self.clip)
        if bias is not None:  # SigLIP: logit = scale * cos + bias
            logits = logits + bias.detach().to(logits.dtype)
        out = StepOutput(image=image_n, text=text_n, logits=logits, scale=scale, zero_shot_text=self.zero_shot_text,
                         image_raw=image_raw, text_raw=text_raw, image_adapted=image, text_adapted=text,
                         labels=batch.labels, frozen_image=frozen_image)
        for part in parts:
            out.logits = part.logits(out.logits, out)
        return out

    def loss_terms(self, out: StepOutput) -> dict[str, torch.Tensor]:
        """The training loss's terms: the logits' cross-entropy (SigLIP: its sigmoid loss, one positive class per
        image and every other class a negative, summed over classes and averaged over images as SigLIP's pairwise
        loss is) and every active part's extra term."""
        if self.sigmoid_logits:
            logits = out.logits.float()
            signs = 2 * F.one_hot(out.labels, logits.shape[-1]).to(logits.dtype) - 1
            terms = {"sigmoid": -F.logsigmoid(signs * logits).sum(dim=-1).mean()}
        else:
            terms = {"ce": F.cross_entropy(out.logits.float(), out.labels)}
        for part in self.active_parts:
            extra = part.loss(out)
            if extra is not None:
                terms[part.name] = extra
        return terms

    def objective(self, out: StepOutput) -> torch.Tensor:
        """The training loss as one tensor, with no Python numbers taken out (it runs under ``torch.func``)."""
        return _total(self.loss_terms(out))

    def loss(self, out: StepOutput) -> tuple[torch.Tensor, dict[str, float]]:
        """The training loss and its pieces as numbers (for the log and the finite-loss guard)."""
        terms = self.loss_terms(out)
        return _total(terms), {name: float(term.detach()) for name, term in terms.items()}

    @torch.no_grad()
    def predict(self, batch: Batch) -> torch.Tensor:
        """Inference logits [B, C]: the forward pass, or an ensemble part's combination with the frozen model."""
        out = self.forward(batch)
        for part in self.active_parts:
            combined = part.ensemble(self, out, batch.features)
            if combined is not None:
                return combined
        return out.logits


def _total(terms: dict[str, torch.Tensor]) -> torch.Tensor:
    """The sum of the loss terms, in their order (cross-entropy first)."""
    values = list(terms.values())
    total = values[0]
    for term in values[1:]:
        total = total + term
    return total
