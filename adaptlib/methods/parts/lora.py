"""LoRA on the attention projections (CLIP-LoRA, Zanella & Ben Ayed, CVPRW 2024).

Each chosen projection W (q, k or v of every attention layer of the chosen towers) becomes W + s * B A with
A [r, W] Kaiming-uniform, B [W, r] zero (so training starts at CLIP), s = alpha / sqrt(r) as CLIP-LoRA sets it,
and dropout on the LoRA input (an independent mask for each of q, k and v, as CLIP-LoRA's loralib draws them).
Written here rather than with peft: peft's LoRA for nn.MultiheadAttention adapts
the fused in-projection with one shared A for q, k and v (and the output projection), not CLIP-LoRA's separate
q, k, v adapters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...utils.typed import OptionTypeError
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


class LoRA(Part):
    name = "lora"
    config_class = LoRAConfig

    def attach(self, model) -> None:
        cfg = self.config
        bad = set(cfg.targets) - {"q", "k", "v"}
        if bad or cfg.tower not in ("image", "text", "both"):
            raise ValueError(f"lora: targets must be among q, k, v and tower image/text/both (got {cfg.targets}, "
                             f"{cfg.tower!r})")
        towers = []
        if cfg.tower in ("image", "both"):
            towers.append(("image", model.clip.visual.transformer.resblocks))
        if cfg.tower in ("text", "both"):
            towers.append(("text", model.clip.transformer.resblocks))
        self.wrapped = nn.ModuleDict()
        for tower, blocks in towers:
            for i, block in enumerate(blocks):
                if cfg.layers is not None and i not in cfg.layers:
                    continue
                if isinstance(block.attn, LoRAAttention):
                    raise ValueError("LoRA is already applied to this backbone")
                wrapper = LoRAAttention(block.attn, cfg)
                block.attn = wrapper
                self.wrapped[f"{tower}_{i}"] = wrapper
        # the wrapped MultiheadAttention stays frozen; only A and B train
        for wrapper in self.wrapped.values():
            wrapper.attn.requires_grad_(False)

    def merged_weights(self, model) -> dict[str, torch.Tensor]:
        """Each adapted attention's in-projection with the LoRA update merged in (W + s B A), named as in the
        frozen backbone; the frozen W while switched off."""
        out = {}
        for wrapper in self.wrapped.values():
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
