"""Text side of a backbone: tokenising, chunked encoding, and the zero-shot classifier of CLIP."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .load import Backbone


def tokenize(backbone: Backbone, texts: Sequence[str]) -> torch.Tensor:
    return backbone.tokenizer(list(texts))


@torch.no_grad()
def encode_texts(backbone: Backbone, texts: Sequence[str], chunk: int = 256) -> torch.Tensor:
    """L2-normalised text features [len(texts), E], encoded ``chunk`` prompts at a time to bound memory."""
    model = backbone.model
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(texts), chunk):
        tokens = tokenize(backbone, texts[i:i + chunk]).to(device)
        out.append(F.normalize(model.encode_text(tokens).float(), dim=-1))
    return torch.cat(out)


@torch.no_grad()
def zero_shot_classifier(backbone: Backbone, classnames: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """Class weights [C, E]: each class's prompts (every template) encoded, normalised, averaged, renormalised."""
    return average_templates(encode_texts(backbone, class_prompts(classnames, templates)), len(classnames))


def encode_text_embeddings(model, embeddings: torch.Tensor, eot_index: torch.Tensor) -> torch.Tensor:
    """Run the text transformer on token embeddings [N, L, W] (L <= context length) and project the EOT token.

    The causal mask means positions after the EOT never influence it, so prompts can be encoded at the length
    they need instead of the full context: identical features, less compute. Prompt learners (CoOp, APEX)
    call this with their own context vectors spliced into the embeddings.
    """
    length = embeddings.shape[1]
    x = embeddings + model.positional_embedding[:length].to(embeddings.dtype)
    mask = model.attn_mask[:length, :length] if model.attn_mask is not None else None
    x = model.transformer(x, attn_mask=mask)
    x = model.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), eot_index]
    return x @ model.text_projection if not isinstance(model.text_projection, torch.nn.Linear) \
        else model.text_projection(x)


def encode_prompts(model, embeddings: torch.Tensor, eot: torch.Tensor, chunk: int | None = 128) -> torch.Tensor:
    """Text features [N, E] of prompt embeddings [N, L, W], ``chunk`` prompts at a time (None: all at once).

    With gradients on and more prompts than ``chunk``, each chunk runs under activation checkpointing: its
    activations are recomputed in backward instead of kept, so memory grows with the chunk, not the class count.
    """
    if chunk is None or embeddings.shape[0] <= chunk:
        return encode_text_embeddings(model, embeddings, eot)
    outs = []
    for start in range(0, embeddings.shape[0], chunk):
        emb, idx = embeddings[start:start + chunk], eot[start:start + chunk]
        if torch.is_grad_enabled():
            outs.append(checkpoint(encode_text_embeddings, model, emb, idx, use_reentrant=False))
        else:
            outs.append(encode_text_embeddings(model, emb, idx))
    return torch.cat(outs)


def encode_token_ids(model, tokens: torch.Tensor, chunk: int | None = 128) -> torch.Tensor:
    """Unnormalised text features [N, E] of token ids [N, context], trimmed to the longest prompt, chunked."""
    eot = tokens.argmax(dim=-1)
    length = int(eot.max()) + 1
    emb = model.token_embedding(tokens[:, :length])
    return encode_prompts(model, emb, eot, chunk)


def prompt_features(model, tokens: torch.Tensor, chunk: int | None = 128) -> torch.Tensor:
    """L2-normalised text features [N, E] (float) of token ids [N, context]: one feature per prompt."""
    return F.normalize(encode_token_ids(model, tokens, chunk).float(), dim=-1)


def average_templates(features: torch.Tensor, n_classes: int, renormalise: bool = True) -> torch.Tensor:
    """Class text features [C, E] from normalised prompt features [C * T, E] in class-major order: the mean over
    each class's T templates, renormalised (CLIP's prompt ensemble)."""
    mean = features.view(n_classes, -1, features.shape[-1]).mean(dim=1)
    return F.normalize(mean, dim=-1) if renormalise else mean


def class_prompts(classnames: Sequence[str], templates: Sequence[str]) -> list[str]:
    """Every template filled with every class name, class-major (the order ``average_templates`` expects)."""
    return [t.format(c) for c in classnames for t in templates]


@torch.no_grad()
def class_text_features(model, tokenizer, classnames: Sequence[str], templates: Sequence[str],
                        chunk: int | None = 128) -> torch.Tensor:
    """The zero-shot class features [C, E] of a CLIP model: normalised mean over templates of each class's
    normalised prompt features."""
    device = model.logit_scale.device
    tokens = tokenizer(class_prompts(classnames, templates)).to(device)
    return average_templates(prompt_features(model, tokens, chunk), len(classnames))
