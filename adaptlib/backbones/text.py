"""Text side of a backbone: tokenising, chunked encoding, and the zero-shot classifier of CLIP."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

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
    prompts = [t.format(c) for c in classnames for t in templates]
    feats = encode_texts(backbone, prompts).view(len(classnames), len(templates), -1)
    return F.normalize(feats.mean(dim=1), dim=-1)


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


def encode_tokens(model, tokens: torch.Tensor) -> torch.Tensor:
    """Unnormalised text features of token ids [N, context], trimmed to the longest prompt in the batch."""
    eot = tokens.argmax(dim=-1)
    length = int(eot.max()) + 1
    emb = model.token_embedding(tokens[:, :length])
    return encode_text_embeddings(model, emb, eot)
