"""LoRA on the attention projections (CLIP-LoRA, Zanella & Ben Ayed, CVPRW 2024).

Each chosen projection W (q, k or v of every attention layer of the chosen towers) becomes W + s * B A with
A [r, W] Kaiming-uniform, B [W, r] zero (so training starts at CLIP), s = alpha / sqrt(r) as CLIP-LoRA sets it,
and dropout on the LoRA input (an independent mask for each of q, k and v, as CLIP-LoRA's loralib draws them).
Written here rather than with peft: peft's LoRA for nn.MultiheadAttention adapts
the fused in-projection with one shared A for q, k and v (and the output projection), not CLIP-LoRA's separate
q, k, v adapters. On timm image towers (SigLIP, EVA-02) the same adapters sit on the attention's fused ``qkv``
linear layer or on its separate ``q_proj``/``k_proj``/``v_proj`` layers (:class:`LoRALinear`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...utils.typed import OptionTypeError
from ...backbones.family import OPENCLIP_VIT, family_of, image_blocks, text_tower, unsupported
from .base import Part, PartConfig, require_choice, require_range


@dataclass
class LoRAConfig(PartConfig):
    rank: int = 2
    alpha: float = 1.0
    dropout: float = 0.25
    targets: tuple[str, ...] = ("q", "k", "v")
    tower: str = "both"  # image | text | both
    layers: tuple[int, ...] | None = None  # default: every layer

    def check(self) -> None:
        require_range(self, "rank", 1)
        require_range(self, "alpha", 0)
        require_range(self, "dropout", 0, 1, high_open=True)
        bad = [t for t in self.targets if t not in ("q", "k", "v")]
        if bad or not self.targets:
            raise OptionTypeError(f"option 'targets' = {list(self.targets)!r} is out of range: expected a non-empty "
                                  f"list of 'q', 'k', 'v'")
        require_choice(self, "tower", ("image", "text", "both"))
        if self.layers is not None and any(i < 0 for i in self.layers):
            raise OptionTypeError(f"option 'layers' = {list(self.layers)!r} is out of range: expected layer "
                                  f"indices >= 0")


class LoRAAttention(nn.Module):
    """Drop-in for nn.MultiheadAttention (batch-first, self-attention) with LoRA on q, k and/or v."""

    def __init__(self, attn: nn.MultiheadAttention, cfg: LoRAConfig):
        super().__init__()
        if not attn.batch_first or not attn._qkv_same_embed_dim:
            raise ValueError("LoRA expects open_clip's batch-first self-attention")
        self.attn = attn
        self.num_heads = attn.num_heads
        self.scaling = cfg.alpha / math.sqrt(cfg.rank)
        self.dropout = nn.Dropout(cfg.dropout)
        self.enabled = True
        width = attn.embed_dim
        self.lora_A = nn.ParameterDict()
        self.lora_B = nn.ParameterDict()
        for t in cfg.targets:
            a = torch.empty(cfg.rank, width)
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))
            self.lora_A[t] = nn.Parameter(a)
            self.lora_B[t] = nn.Parameter(torch.zeros(width, cfg.rank))

    @property
    def batch_first(self) -> bool:
        return True

    def forward(self, query, key=None, value=None, need_weights=False, attn_mask=None, **_):
        a = self.attn
        x = query
        qkv = F.linear(x, a.in_proj_weight, a.in_proj_bias)
        q, k, v = qkv.chunk(3, dim=-1)
        if self.enabled and len(self.lora_A):
            # an independent dropout mask for each adapted projection, drawn in q, k, v order: CLIP-LoRA's
            # PlainMultiheadAttentionLoRA calls q_proj, k_proj, v_proj in turn, each a LinearLoRA with its own
            # nn.Dropout on its input (loralib/layers.py)
            deltas = {}
            for t in ("q", "k", "v"):
                if t in self.lora_A:
                    h = self.dropout(x)
                    deltas[t] = (h @ self.lora_A[t].t().to(h.dtype)) @ self.lora_B[t].t().to(h.dtype) * self.scaling
            q = q + deltas.get("q", 0)
            k = k + deltas.get("k", 0)
            v = v + deltas.get("v", 0)
        b, n, w = q.shape
        heads = self.num_heads

        def split(t):
            return t.view(b, n, heads, w // heads).transpose(1, 2)

        mask = attn_mask.to(q.dtype) if attn_mask is not None and attn_mask.dtype != torch.bool else attn_mask
        out = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=mask,
                                             dropout_p=a.dropout if self.training else 0.0)
        out = out.transpose(1, 2).reshape(b, n, w)
        return a.out_proj(out), None


class LoRALinear(nn.Module):
    """Drop-in for a linear layer whose output is ``len(chunks)`` equal slices (timm's fused qkv: q, k, v; a
    separate projection: one), with LoRA on the slices named in ``targets``: the same update, scaling and
    independent dropout masks as :class:`LoRAAttention`."""

    def __init__(self, linear: nn.Linear, chunks: tuple[str, ...], cfg: LoRAConfig):
        super().__init__()
        self.linear = linear
        self.chunks = chunks
        self.scaling = cfg.alpha / math.sqrt(cfg.rank)
        self.dropout = nn.Dropout(cfg.dropout)
        self.enabled = True
        out = linear.out_features // len(chunks)
        self.lora_A = nn.ParameterDict()
        self.lora_B = nn.ParameterDict()
        for t in chunks:
            if t in cfg.targets:
                a = torch.empty(cfg.rank, linear.in_features)
                nn.init.kaiming_uniform_(a, a=math.sqrt(5))
                self.lora_A[t] = nn.Parameter(a)
                self.lora_B[t] = nn.Parameter(torch.zeros(out, cfg.rank))

    @property
    def weight(self) -> torch.Tensor:
        return self.linear.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)
        if not (self.enabled and len(self.lora_A)):
            return y
        out = self.linear.out_features // len(self.chunks)
        pieces = []
        for t in self.chunks:
            if t in self.lora_A:
                h = self.dropout(x)
                pieces.append((h @ self.lora_A[t].t().to(h.dtype)) @ self.lora_B[t].t().to(h.dtype) * self.scaling)
            else:
                pieces.append(y.new_zeros(*y.shape[:-1], out))
        return y + torch.cat(pieces, dim=-1)

    def merged_weight(self) -> torch.Tensor:
        """The linear weight with the update merged in (W + s B A per adapted slice)."""
        weight = self.linear.weight.detach().clone()
        out = self.linear.out_features // len(self.chunks)
        for i, t in enumerate(self.chunks):
            if self.enabled and t in self.lora_A:
                weight[i * out:(i + 1) * out] += self.scaling * (self.lora_B[t] @ self.lora_A[t]).detach()
        return weight


def _wrap_timm_attention(attn: nn.Module, cfg: LoRAConfig) -> list[LoRALinear]:
    """LoRA on a timm attention module: its fused ``qkv`` layer, or its ``q_proj``/``k_proj``/``v_proj``."""
    if isinstance(getattr(attn, "qkv", None), nn.Linear):
        if getattr(attn, "q_bias", None) is not None:
            attn.qkv_bias_separate = True  # EVA: call the qkv layer (so the wrapper runs), then add its biases
        attn.qkv = LoRALinear(attn.qkv, ("q", "k", "v"), cfg)
        return [attn.qkv]
    wrapped = []
    for t in ("q", "k", "v"):
        layer = getattr(attn, f"{t}_proj", None)
        if not isinstance(layer, nn.Linear):
            raise ValueError(f"LoRA found no qkv or {t}_proj linear layer in {type(attn).__name__}")
        if t in cfg.targets:
            setattr(attn, f"{t}_proj", LoRALinear(layer, (t,), cfg))
            wrapped.append(getattr(attn, f"{t}_proj"))
    return wrapped


class LoRA(Part):
    name = "lora"
    config_class = LoRAConfig

    def attach(self, model) -> None:
        cfg = self.config
        bad = set(cfg.targets) - {"q", "k", "v"}
        if bad or cfg.tower not in ("image", "text", "both"):
            raise ValueError(f"lora: targets must be among q, k, v and tower image/text/both (got {cfg.targets}, "
                             f"{cfg.tower!r})")
        clip = model.clip
        towers = []
        if cfg.tower in ("image", "both"):
            try:
                towers.append(("image", image_blocks(clip)))
            except ValueError as err:
                raise unsupported(self.name, clip, str(err)) from None
        if cfg.tower in ("text", "both"):
            towers.append(("text", text_tower(clip).module.transformer.resblocks))
        timm_image = family_of(clip) != OPENCLIP_VIT
        self.wrapped = nn.ModuleDict()
        for tower, blocks in towers:
            for i, block in enumerate(blocks):
                if cfg.layers is not None and i not in cfg.layers:
                    continue
                if isinstance(block.attn, LoRAAttention) or any(isinstance(m, LoRALinear) for m in block.modules()):
                    raise ValueError("LoRA is already applied to this backbone")
                if tower == "image" and timm_image:
                    for j, wrapper in enumerate(_wrap_timm_attention(block.attn, cfg)):
                        self.wrapped[f"{tower}_{i}_{j}"] = wrapper
                        wrapper.linear.requires_grad_(False)
                    continue
                if not isinstance(block.attn, nn.MultiheadAttention):
                    raise unsupported(self.name, clip, f"its {tower} attention is a {type(block.attn).__name__}, "
                                                       f"not nn.MultiheadAttention")
                wrapper = LoRAAttention(block.attn, cfg)
                block.attn = wrapper
                self.wrapped[f"{tower}_{i}"] = wrapper
        # the wrapped MultiheadAttention stays frozen; only A and B train
        for wrapper in self.wrapped.values():
            if isinstance(wrapper, LoRAAttention):
                wrapper.attn.requires_grad_(False)

    def merged_weights(self, model) -> dict[str, torch.Tensor]:
        """Each adapted attention's in-projection with the LoRA update merged in (W + s B A), named as in the
        frozen backbone; the frozen W while switched off."""
        out = {}
        for wrapper in self.wrapped.values():
            if isinstance(wrapper, LoRALinear):
                out[model.frozen_name(wrapper.linear.weight)] = wrapper.merged_weight()
                continue
            weight = wrapper.attn.in_proj_weight.detach().clone()
            w = wrapper.attn.embed_dim
            for i, t in enumerate(("q", "k", "v")):
                if self.enabled and t in wrapper.lora_A:
                    weight[i * w:(i + 1) * w] += wrapper.scaling * (wrapper.lora_B[t] @ wrapper.lora_A[t]).detach()
            out[model.frozen_name(wrapper.attn.in_proj_weight)] = weight
        return out

    def set_enabled(self, enabled: bool) -> None:
        super().set_enabled(enabled)
        for wrapper in getattr(self, "wrapped", {}).values():
            wrapper.enabled = self.enabled

    @property
    def modifies_image_encoder(self) -> bool:  # type: ignore[override]
        return self.config.tower in ("image", "both")

    @property
    def modifies_text_encoder(self) -> bool:  # type: ignore[override]
        return self.config.tower in ("text", "both")
