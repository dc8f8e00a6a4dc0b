"""Per-layer activations of an open_clip CLIP model, for layer-wise CKA between a frozen and an adapted model.

Image tower: the CLS token (token 0) of each block output of ``model.visual.transformer.resblocks``. Text tower:
the token the model itself pools at (open_clip's ``text_global_pool`` with the model's ``text_pool_type``;
for CLIP 'argmax', the EOT position = argmax of the token ids) of each ``model.transformer.resblocks`` output.
Forward hooks are always removed, also when the forward pass fails; module train/eval modes are restored.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import nn


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


@contextmanager
def _capture(transformer: nn.Module, select: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[list[list]]:
    """Hook every block of ``transformer``; yields per-layer lists that fill with ``select(block output [N, L, W])``."""
    batch_first = getattr(transformer, "batch_first", True)
    store: list[list[torch.Tensor]] = [[] for _ in transformer.resblocks]

    def hook_for(i: int):
        def hook(_module, _inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            out = out if batch_first else out.transpose(0, 1)
            store[i].append(select(out).detach().float().cpu())
        return hook

    handles = [blk.register_forward_hook(hook_for(i)) for i, blk in enumerate(transformer.resblocks)]
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _check(n: int, batch_size: int) -> None:
    if n < 1:
        raise ValueError("no inputs: activations need at least one image or text")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


def image_layer_activations(model: nn.Module, images: torch.Tensor, batch_size: int = 64) -> list[torch.Tensor]:
    """CLS token of every image block for ``images`` [N, 3, H, W]: one float32 CPU tensor [N, W] per layer."""
    _check(len(images), batch_size)
    device = _device(model)
    with _eval_mode(model), torch.no_grad(), _capture(model.visual.transformer, lambda x: x[:, 0]) as store:
        for start in range(0, len(images), batch_size):
            model.encode_image(images[start:start + batch_size].to(device))
    return [torch.cat(layer) for layer in store]


def text_layer_activations(model: nn.Module, tokens: torch.Tensor, batch_size: int = 256) -> list[torch.Tensor]:
    """Pooled (EOT) token of every text block for ``tokens`` [N, context_length]: one [N, W] tensor per layer."""
    from open_clip.transformer import text_global_pool  # here, so importing the analysis layer stays light

    _check(len(tokens), batch_size)
    device = _device(model)
    pool_type = getattr(model, "text_pool_type", "argmax")
    eos_id = getattr(model, "text_eos_id", None)
    current: dict[str, torch.Tensor] = {}

    def select(x: torch.Tensor) -> torch.Tensor:
        return text_global_pool(x, current["tokens"], pool_type, eos_token_id=eos_id)

    with _eval_mode(model), torch.no_grad(), _capture(model.transformer, select) as store:
        for start in range(0, len(tokens), batch_size):
            current["tokens"] = tokens[start:start + batch_size].to(device)
            model.encode_text(current["tokens"])
    return [torch.cat(layer) for layer in store]
