"""Tokenizers for backbones whose own tokenizer must be downloaded (SigLIP's, SigLIP 2's: Hugging Face hub).

``open_tokenizer`` gives the model's own tokenizer or says clearly how to get it onto an offline machine.
``StandInTokenizer`` frames texts the way a family's tokenizer does (special tokens before and after the words,
the padding) with a deterministic word-level vocabulary: tests build random-weight models of such families and
run every part on them without a download. It is not the model's tokenizer and gives meaningless features for
real weights, so only an explicit ``load_backbone(..., tokenizer=...)`` uses it.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import open_clip
import torch


class TokenizerUnavailableError(RuntimeError):
    """The model's tokenizer must be downloaded and is not in the local cache."""


def open_tokenizer(name: str):
    """The tokenizer open_clip uses for model ``name``."""
    try:
        return open_clip.get_tokenizer(name)
    except Exception as err:  # offline: huggingface_hub / transformers raise OSError, ValueError, HTTP errors
        hub = (open_clip.get_model_config(name) or {}).get("text_cfg", {}).get("hf_tokenizer_name")
        where = f"the Hugging Face hub ({hub!r})" if hub else "its source"
        raise TokenizerUnavailableError(
            f"the tokenizer of backbone {name!r} could not be loaded from {where}: {err}. This machine may be "
            f"offline. Where there is network, run python -c \"import open_clip; open_clip.get_tokenizer('{name}')\" "
            f"and copy the Hugging Face cache (~/.cache/huggingface) here, or set HF_HOME to a copy of it."
        ) from None


class StandInTokenizer:
    """Word-level tokenizer with a family's framing: ``prefix`` ids before the words (CLIP's start-of-text),
    ``suffix`` ids after them (the end-of-text), then ``pad`` up to ``context_length``; words hash into
    ``[first_word_id, vocab_size)``. Truncation keeps the suffix, as open_clip's tokenizers do."""

    def __init__(self, context_length: int, vocab_size: int, prefix: Sequence[int] = (), suffix: Sequence[int] = (1,),
                 pad: int = 0, first_word_id: int = 3):
        if vocab_size <= first_word_id:
            raise ValueError(f"vocab_size {vocab_size} leaves no ids for words (first word id {first_word_id})")
        self.context_length = context_length
        self.vocab_size = vocab_size
        self.prefix, self.suffix, self.pad = list(prefix), list(suffix), pad
        self.first_word_id = first_word_id

    def encode(self, text: str) -> list[int]:
        words = re.findall(r"\w+|[^\w\s]", text.lower())
        span = self.vocab_size - self.first_word_id
        return [self.first_word_id + zlib.crc32(w.encode()) % span for w in words]

    def __call__(self, texts: str | Sequence[str], context_length: int | None = None) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        length = context_length or self.context_length
        room = length - len(self.prefix) - len(self.suffix)
        out = torch.full((len(texts), length), self.pad, dtype=torch.long)
        for i, text in enumerate(texts):
            ids = self.prefix + self.encode(text)[:room] + self.suffix
            out[i, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out


def siglip_stand_in(context_length: int, vocab_size: int) -> StandInTokenizer:
    """SigLIP's framing: no start token, the end-of-text id 1 after the words, padding with id 0."""
    return StandInTokenizer(context_length, vocab_size, prefix=(), suffix=(1,), pad=0)
