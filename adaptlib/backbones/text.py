"""Text side of a backbone: tokenising, chunked encoding, and the zero-shot classifier of CLIP."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .blocks import computes_at_one_position, output_at, outputs_at_rows
from .family import UnsupportedBackboneError, text_tower
from .load import Backbone
from .shared_prefix import PACKED_POSITIONS, pack, packed_mask, pooled_rows


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


@dataclass(frozen=True)
class DeepTextPrompts:
    """Deep text prompts (MaPLe, IVLP/PromptSRC): before text block i >= 1, ``tokens(i)`` ([n, W], or None for
    none) replaces the n positions from ``start`` on (right after the tokenizer's prefix, where the prompt
    learner's context sits): the previous block's outputs at the context positions are dropped, as in the
    reference code."""

    tokens: Callable[[int], torch.Tensor | None]
    start: int

    def splice(self, block: int, x: torch.Tensor, within: int | None = None) -> torch.Tensor:
        """``x`` [N, L, W], block ``block``'s input, with that block's tokens in place (none before block 0);
        ``within``: the positions they must lie before (the shared ones of packed prompts)."""
        tokens = self.tokens(block) if block > 0 else None
        if tokens is None:
            return x
        start, n = self.start, tokens.shape[0]
        if within is not None and start + n > within:
            raise ValueError(f"deep text prompts at positions {start}..{start + n - 1} reach past the {within} "
                             f"shared leading positions the prompt learner declared (Part.shared_prompt_positions)")
        tokens = tokens.to(x.dtype).unsqueeze(0).expand(x.shape[0], -1, -1)
        return torch.cat([x[:, :start], tokens, x[:, start + n:]], dim=1)


def _blocks_at_pooled_token(transformer, x: torch.Tensor, mask: torch.Tensor | None, pooled: torch.Tensor,
                            deep: DeepTextPrompts | None) -> torch.Tensor:
    """open_clip's ``Transformer.forward`` block by block (batch first), with the deep prompts spliced in, the last
    block computed only at each prompt's ``pooled`` position (``blocks.output_at``): [N, W]."""
    if not getattr(transformer, "batch_first", True):
        raise UnsupportedBackboneError("deep text prompts need a batch-first text transformer (open_clip >= 2.24)")
    blocks = transformer.resblocks
    for i, block in enumerate(blocks):
        if deep is not None:
            x = deep.splice(i, x)
        if i == len(blocks) - 1 and computes_at_one_position(block):
            positions = torch.arange(x.shape[1], device=x.device)
            blocked = positions[None, :] > pooled[:, None] if mask is not None else None  # the causal mask's row
            return output_at(block, x, pooled, blocked)[:, 0]
        x = block(x, attn_mask=mask)
    return x[torch.arange(x.shape[0], device=x.device), pooled]


def encode_text_embeddings(model, embeddings: torch.Tensor, eot_index: torch.Tensor,
                           deep: DeepTextPrompts | None = None) -> torch.Tensor:
    """Run the text transformer on token embeddings [N, L, W] (L <= context length) and project the token each
    prompt is pooled at (``eot_index``: CLIP's end-of-text token, the last position for SigLIP).

    With a causal mask, positions after the EOT never influence it, so prompts can be encoded at the length they
    need instead of the full context: identical features, less compute (a bidirectional tower is given the whole
    context: ``TextTower.trimmable``); and only the pooled token of the last block's output is read, so that
    block runs at that token alone (``blocks.output_at``: the same features up to float rounding). Prompt
    learners (CoOp, APEX) call this with their own context vectors spliced into the embeddings; deep prompt
    learners (MaPLe, IVLP) also give ``deep``, whose tokens are spliced in before the deeper blocks.
    """
    tower = text_tower(model)
    text = tower.module
    length = embeddings.shape[1]
    x = embeddings + text.positional_embedding[:length].to(embeddings.dtype)
    mask = text.attn_mask[:length, :length] if text.attn_mask is not None else None
    if deep is None and not getattr(text.transformer, "batch_first", True):
        x = text.transformer(x, attn_mask=mask)[torch.arange(x.shape[0], device=x.device), eot_index]
    else:
        x = _blocks_at_pooled_token(text.transformer, x, mask, eot_index, deep)
    return tower.project(text.ln_final(x))


def encode_prompts(model, embeddings: torch.Tensor, eot: torch.Tensor, chunk: int | None = 128,
                   deep: DeepTextPrompts | None = None, shared: int = 0) -> torch.Tensor:
    """Text features [N, E] of prompt embeddings [N, L, W] ([G, C, E] of G prompt sets [G, C, L, W]: CoCoOp's
    one per image), ``chunk`` prompts at a time (None: all at once); ``deep``: deep text prompts spliced in before
    the deeper blocks (``encode_text_embeddings``).

    ``shared``: how many leading positions every prompt of a set has in common (the same tensor for every
    class: a context shared by all classes). Where the tower allows (``shares_prefix``) they are computed once
    per set, not once per prompt (``shared_prefix``). With gradients on and more prompts than ``chunk``, each
    chunk runs under activation checkpointing: its activations are recomputed in backward instead of kept, so
    memory grows with the chunk, not the class count.
    """
    if shared and shares_prefix(model):
        sets = embeddings if embeddings.dim() == 4 else embeddings.unsqueeze(0)
        out = _encode_with_shared_prefix(model, sets[:, 0, :shared], sets[:, :, shared:], eot, chunk, deep)
        return out if embeddings.dim() == 4 else out[0]
    if embeddings.dim() == 4:
        g, c = embeddings.shape[:2]
        return encode_prompts(model, embeddings.flatten(0, 1), eot.repeat(g), chunk, deep).view(g, c, -1)
    if chunk is None or embeddings.shape[0] <= chunk:
        return encode_text_embeddings(model, embeddings, eot, deep)
    outs = []
    for start in range(0, embeddings.shape[0], chunk):
        emb, idx = embeddings[start:start + chunk], eot[start:start + chunk]
        if torch.is_grad_enabled():
            outs.append(checkpoint(encode_text_embeddings, model, emb, idx, deep, use_reentrant=False))
        else:
            outs.append(encode_text_embeddings(model, emb, idx, deep))
    return torch.cat(outs)


def shares_prefix(model) -> bool:
    """Whether prompts with common leading positions can compute them once: a causal, batch-first text transformer
    of plain blocks (``blocks.computes_at_one_position``), pooled at the end-of-text token (which follows the shared
    positions: ``Part.shared_prompt_positions``)."""
    tower = text_tower(model)
    transformer = tower.module.transformer
    return tower.trimmable() and tower.module.attn_mask is not None and getattr(transformer, "batch_first", True) \
        and all(computes_at_one_position(block) for block in transformer.resblocks)


def classes_per_packing(model, shared: int, length: int, chunk: int | None) -> int:
    """How many prompts of ``length`` positions, ``shared`` of them in common, ``encode_prompts`` packs after one
    copy of the shared positions (at most ``chunk``; ``PACKED_POSITIONS`` of their own positions); 0 where the
    tower cannot share them and runs the prompts whole."""
    if not shared or not shares_prefix(model):
        return 0
    per = max(1, PACKED_POSITIONS // (length - shared))
    return min(chunk, per) if chunk is not None else per


def _encode_with_shared_prefix(model, prefix: torch.Tensor, suffix: torch.Tensor, eot: torch.Tensor,
                               chunk: int | None, deep: DeepTextPrompts | None) -> torch.Tensor:
    """Features [G, C, E] of prompts [prefix[g], suffix[g, c]]: prefix [G, p, W], suffix [G, C, s, W], pooled
    at ``eot`` [C] (positions in the whole prompt). Classes are packed ``classes_per_packing`` to a sequence
    (``shared_prefix``: its masked attention grows with the square of the packing), each packing under activation
    checkpointing when gradients are on and there are more classes than ``chunk``."""
    tower = text_tower(model)
    text = tower.module
    p, s, n_classes = prefix.shape[1], suffix.shape[2], suffix.shape[1]
    position = text.positional_embedding[:p + s].to(prefix.dtype)
    prefix, suffix = prefix + position[:p], suffix + position[p:]
    step = min(n_classes, classes_per_packing(model, p, p + s, chunk))
    checkpointed = torch.is_grad_enabled() and chunk is not None and n_classes > chunk
    outs = []
    for start in range(0, n_classes, step):
        args = (text.transformer.resblocks, prefix, suffix[:, start:start + step], eot[start:start + step], deep)
        if checkpointed:
            outs.append(checkpoint(_packed_blocks, *args, use_reentrant=False))
        else:
            outs.append(_packed_blocks(*args))
    return tower.project(text.ln_final(torch.cat(outs, dim=1)))


def _packed_blocks(blocks, prefix: torch.Tensor, suffix: torch.Tensor, eot: torch.Tensor,
                   deep: DeepTextPrompts | None) -> torch.Tensor:
    """The last block's output [G, n, W] at each prompt's pooled position, the n prompts of each set packed after
    their shared positions (``shared_prefix.pack``), deep prompts spliced in (they must lie in the shared ones)."""
    p, s, n = prefix.shape[1], suffix.shape[2], suffix.shape[1]
    x = pack(prefix, suffix)
    mask = packed_mask(p, s, n, x)
    rows = pooled_rows(p, s, eot)
    for i, block in enumerate(blocks):
        if deep is not None:
            x = deep.splice(i, x, within=p)
        if i == len(blocks) - 1:
            return outputs_at_rows(block, x, rows, mask)
        x = block(x, attn_mask=mask)
    raise ValueError("the text transformer has no blocks")


def encode_token_ids(model, tokens: torch.Tensor, chunk: int | None = 128) -> torch.Tensor:
    """Unnormalised text features [N, E] of token ids [N, context], trimmed to the longest prompt, chunked."""
    tower = text_tower(model)
    eot = tower.pool_positions(tokens)
    length = int(eot.max()) + 1 if tower.trimmable() else tokens.shape[1]
    emb = tower.module.token_embedding(tokens[:, :length])
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


# ------------------------------------------------------------------------------------------- tokenizer framing

@dataclass(frozen=True)
class TokenFrame:
    """How a tokenizer frames a text: ``prefix`` special tokens before its words (CLIP's start-of-text: 1,
    SigLIP's: 0), ``suffix`` after them before the padding (the end-of-text token), padded with ``pad``. Prompt
    learners splice their context vectors right after the prefix."""

    prefix: int
    suffix: int
    pad: int

    def length(self, ids: torch.Tensor) -> int:
        """Positions before the trailing padding."""
        keep = (ids != self.pad).nonzero()
        return int(keep[-1]) + 1 if len(keep) else 0

    def words(self, ids: torch.Tensor) -> torch.Tensor:
        """The word tokens of one tokenized text [L] (no special tokens, no padding)."""
        return ids[self.prefix:self.length(ids) - self.suffix]


def token_frame(tokenizer) -> TokenFrame:
    """The framing of ``tokenizer``, read from how it tokenizes two one-word texts: what they share before their
    words is the prefix, what follows their words is the suffix."""
    a, b = tokenizer(["X", "Y"])
    prefix = 0
    while prefix < len(a) and a[prefix] == b[prefix]:
        prefix += 1
    pad = int(a[-1])
    frame = TokenFrame(prefix, 0, pad)
    suffix = frame.length(a) - prefix - 1
    if suffix < 0:
        raise ValueError("the tokenizer frames a one-word text in an unexpected way (its word is not one token)")
    return TokenFrame(prefix, suffix, pad)
