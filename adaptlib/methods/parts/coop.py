"""CoOp's learnable context (Zhou et al., IJCV 2022), the text prompt learner shared by CoOp, KgCoOp and APEX.

Prompt = [SOS] [ctx_1 .. ctx_M] [class tokens] [.] [EOS], with the class token at the end, middle or front, one
context for all classes (unified) or one per class (class-specific, CSC). Context is drawn from N(0, 0.02) or
initialised from the token embeddings of a phrase such as "a photo of a" (then M is that phrase's length).
``learnable_tokens=k`` keeps only the first k tokens of the initial phrase learnable and the rest fixed, which
gives APEX's shallow text prompt "[a photo] of a {class}." from ``init="a photo of a", learnable_tokens=2``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from ...backbones.family import UnsupportedBackboneError, family_of, text_tower
from ...backbones.text import token_frame
from .base import ClassesNotSupported, Part, PartConfig, require_choice, require_range


@dataclass
class CoOpConfig(PartConfig):
    n_ctx: int = 16
    init: str | None = None  # e.g. "a photo of a"; sets n_ctx to its token count
    class_token_position: str = "end"  # end | middle | front
    class_specific: bool = False
    init_std: float = 0.02
    learnable_tokens: int | None = None  # with init: how many leading tokens learn (default: all)

    def check(self) -> None:
        require_range(self, "n_ctx", 1)
        require_choice(self, "class_token_position", ("end", "middle", "front"))
        require_range(self, "init_std", 0)
        require_range(self, "learnable_tokens", 1, optional=True)


class CoOpPrompt(Part):
    name = "coop_prompt"
    config_class = CoOpConfig
    is_prompt_learner = True

    def attach(self, model) -> None:
        cfg = self.config
        if cfg.class_token_position not in ("end", "middle", "front"):
            raise ValueError(f"class_token_position must be end, middle or front, not {cfg.class_token_position!r}")
        tower = text_tower(model.clip)
        embed = tower.module.token_embedding
        width = embed.weight.shape[1]
        self._tokenize = model.tokenizer
        self._embed = embed
        self._tower = replace(tower, module=None)  # its pooling only: a part keeps no reference to the backbone
        self._frame = token_frame(model.tokenizer)
        self._family = family_of(model.clip)
        self.fixed_words = ""
        if cfg.init:
            init_tokens = self._word_tokens(cfg.init)
            with torch.no_grad():
                init_vectors = embed(init_tokens).float()
            n_learn = cfg.learnable_tokens or len(init_tokens)
            if not 0 < n_learn <= len(init_tokens):
                raise ValueError(f"learnable_tokens={cfg.learnable_tokens} must be in 1..{len(init_tokens)} for "
                                 f"init {cfg.init!r}")
            ctx = init_vectors[:n_learn].clone()
            if n_learn < len(init_tokens):  # the fixed rest of the phrase follows the context, as words
                words = cfg.init.split()
                if len(words) != len(init_tokens) or cfg.class_token_position != "end":
                    raise ValueError(f"learnable_tokens needs an init phrase of one token per word and the class "
                                     f"token at the end; {cfg.init!r} has {len(init_tokens)} tokens")
                self.fixed_words = " ".join(words[n_learn:])
            if cfg.class_specific:
                ctx = ctx.unsqueeze(0).repeat(len(model.classnames), 1, 1)
        else:
            shape = (len(model.classnames), cfg.n_ctx, width) if cfg.class_specific else (cfg.n_ctx, width)
            ctx = torch.empty(shape)
            nn.init.normal_(ctx, std=cfg.init_std)
        self.n_ctx = ctx.shape[-2]
        self.ctx = nn.Parameter(ctx)
        self._trained_classes = list(model.classnames)
        self._build_class_buffers(model.classnames)

    def _n_words(self, text: str) -> int:
        """Word tokens of ``text`` before any truncation (a truncated text counts as filling the context)."""
        encode = getattr(self._tokenize, "encode", None)
        if callable(encode):
            return len(encode(text))
        ids = self._tokenize([text])[0]
        return len(ids) if self._frame.length(ids) == len(ids) else len(self._frame.words(ids))

    def _word_tokens(self, text: str) -> torch.Tensor:
        return self._frame.words(self._tokenize([text])[0])

    def _build_class_buffers(self, classnames: list[str]) -> None:
        """Token embeddings around the context: the tokenizer's prefix (CLIP's SOS) before it, '[fixed words]
        class .' + end-of-text (+pad) after; cut at the longest prompt where the text tower allows it."""
        placeholder = " ".join(["X"] * self.n_ctx)
        middle = f" {self.fixed_words}" if self.fixed_words else ""
        prompts = [f"{placeholder}{middle} {name}." for name in classnames]
        tokens = self._tokenize(prompts)
        context = tokens.shape[1]
        frame, start = self._frame, self._frame.prefix
        too_long = [c for c, p in zip(classnames, prompts) if self._n_words(p) + frame.prefix + frame.suffix > context]
        if too_long:
            raise ValueError(f"prompts for classes {too_long[:3]} do not fit the text context of {context} tokens "
                             f"with {self.n_ctx} context vectors: use a smaller n_ctx")
        x_id = self._word_tokens("X")
        if len(x_id) != 1 or not bool((tokens[:, start:start + self.n_ctx] == x_id).all()):
            raise UnsupportedBackboneError(f"part {self.name!r} does not run on this {self._family} backbone: its "
                                           f"tokenizer does not give one token per placeholder word 'X', so the "
                                           f"context vectors cannot be spliced in")
        eot = self._tower.pool_positions(tokens)
        length = int(eot.max()) + 1 if self._tower.trimmable() else context
        device = self.ctx.device
        tokens = tokens[:, :length].to(device)
        with torch.no_grad():
            emb = self._embed(tokens).float()
        self.register_buffer("token_prefix", emb[:, :start], persistent=False)
        self.register_buffer("token_suffix", emb[:, start + self.n_ctx:], persistent=False)
        self.register_buffer("eot_index", eot.to(device), persistent=False)
        self.name_lens = [len(self._word_tokens(n)) for n in classnames]

    def set_classes(self, model, classnames: list[str]) -> None:
        if self.config.class_specific and list(classnames) != self._trained_classes:
            raise ClassesNotSupported("class-specific context (CSC) has no context for classes it was not "
                                      "trained on")
        self._build_class_buffers(classnames)

    def _context(self, n_classes: int) -> torch.Tensor:
        ctx = self.ctx
        return ctx if ctx.dim() == 3 else ctx.unsqueeze(0).expand(n_classes, -1, -1)

    def assemble(self, ctx: torch.Tensor) -> torch.Tensor:
        """Prompt embeddings [C, L, W] from context [C, M, W] and the class buffers."""
        prefix, suffix = self.token_prefix, self.token_suffix
        ctx = ctx.to(prefix.dtype)
        position = self.config.class_token_position
        if position == "end":
            return torch.cat([prefix, ctx, suffix], dim=1)
        prompts = []
        half = self.n_ctx // 2
        for i, name_len in enumerate(self.name_lens):
            name, rest = suffix[i:i + 1, :name_len], suffix[i:i + 1, name_len:]
            if position == "middle":
                parts = [prefix[i:i + 1], ctx[i:i + 1, :half], name, ctx[i:i + 1, half:], rest]
            else:  # front
                parts = [prefix[i:i + 1], name, ctx[i:i + 1], rest]
            prompts.append(torch.cat(parts, dim=1))
        return torch.cat(prompts, dim=0)

    def prompt_embeddings(self, model, image_features):
        n = self.token_prefix.shape[0]
        return self.assemble(self._context(n)), self.eot_index

    def shared_prompt_positions(self) -> int:
        """The tokenizer's prefix, then (one context for all classes) the context before the first class token
        and, class token at the end, the fixed words after the context."""
        start = self._frame.prefix
        if self.config.class_specific or self.config.class_token_position == "front":
            return start
        if self.config.class_token_position == "middle":
            return start + self.n_ctx // 2
        return start + self.n_ctx + len(self.fixed_words.split())
