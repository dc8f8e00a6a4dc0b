"""Load a CLIP backbone on top of open_clip: any model name with a pretrained tag, a local checkpoint, the
project's own embedded weights, or random weights.

Weights are always fp32; autocast does low precision at run time. OpenAI weights are built with QuickGELU
(open_clip >= 2.29 builds nn.GELU for them unless told, which silently costs accuracy).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import open_clip
import torch
from open_clip.pretrained import get_pretrained_cfg, list_pretrained_tags_by_model

from ..utils.paths import data_dir

CONFIG_DIR = Path(__file__).parent / "configs"
open_clip.add_model_config(CONFIG_DIR)
PROJECT_MODELS = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


class BackboneUnavailableError(RuntimeError):
    """The weights asked for cannot be had here; the message says where to put them."""


class DamagedCheckpointError(BackboneUnavailableError):
    """A checkpoint file that cannot be read (truncated, empty, not a checkpoint)."""


@dataclass
class Backbone:
    """A CLIP model with what is needed to feed it: tokenizer and preprocessing settings."""

    name: str
    pretrained: str | None
    model: open_clip.model.CLIP
    tokenizer: Callable
    image_size: int
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD
    interpolation: str = "bicubic"
    weights_id: str = "random"  # stable identity of the weights, for caches
    info: dict = field(default_factory=dict)

    @property
    def context_length(self) -> int:
        return int(self.model.context_length)

    @property
    def embed_dim(self) -> int:
        from .family import embed_dim

        return embed_dim(self.model)

    @property
    def key(self) -> str:
        return f"{self.name}/{self.weights_id}"


def embedded_checkpoint(name: str = "adaptlib-tiny", seed: int = 0) -> Path:
    """Where ``adaptlib pretrain`` writes the embedded backbone of ``name`` for ``seed``."""
    return data_dir() / "backbones" / f"{name}-seed{seed}" / "model.safetensors"


def _file_id(path: Path) -> str:
    st = path.stat()
    h = hashlib.sha256(f"{path.resolve()}:{st.st_size}:{int(st.st_mtime)}".encode())
    if st.st_size <= 64 * 2**20:  # small files: hash the content, so copies share caches
        h = hashlib.sha256(path.read_bytes())
    return h.hexdigest()[:16]


def _resolve_embedded(name: str, pretrained: str) -> Path:
    seed = 0
    if pretrained.startswith("embedded-seed"):
        seed = int(pretrained.removeprefix("embedded-seed"))
    path = embedded_checkpoint(name, seed)
    if not path.is_file():
        raise BackboneUnavailableError(
            f"the embedded backbone {name!r} (seed {seed}) has not been pretrained yet: expected {path}. "
            f"Run 'make pretrain' (or 'adaptlib pretrain --seed {seed}') to create it (a few minutes on a CPU)."
        )
    return path


def _damaged_advice(checkpoint: Path, pretrained: str) -> str:
    if pretrained.startswith("embedded"):
        seed = checkpoint.parent.name.rsplit("-seed", 1)[-1]
        return (f"pretrain it again: 'adaptlib pretrain --force --seed {seed}' (or delete {checkpoint.parent} and "
                f"run 'make pretrain')")
    return "download it again (or copy it again), then pass its path with --pretrained"


def check_checkpoint(checkpoint: Path, pretrained: str) -> None:
    """Read a safetensors checkpoint's header (no tensors): a damaged file is a ``DamagedCheckpointError`` that
    says what to do, found before a sweep starts rather than in every run."""
    if checkpoint.suffix != ".safetensors":
        return
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(checkpoint), "pt") as f:
            f.keys()
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise DamagedCheckpointError(f"checkpoint {checkpoint} is damaged: it is not a readable safetensors file "
                                     f"({err}); {_damaged_advice(checkpoint, pretrained)}") from None


@lru_cache(maxsize=4)
def _cached_checkpoint(path: str, size: int, mtime: float) -> tuple[dict, str]:
    """(state dict, id) of a checkpoint file, read once per process: a sweep worker builds many models from it."""
    p = Path(path)
    return _load_state_dict_any(p), _file_id(p)


@lru_cache(maxsize=8)
def _tokenizer(name: str):
    from .tokenizers import open_tokenizer

    return open_tokenizer(name)


def _load_state_dict_any(path: Path) -> dict:
    """State dict from safetensors, a torch state dict, or an OpenAI TorchScript archive."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as err:  # truncated, empty, garbage
            raise DamagedCheckpointError(f"checkpoint {path} is damaged: it is not a readable safetensors file "
                                         f"({err})") from None
    try:
        return open_clip.factory.load_state_dict(str(path), weights_only=True)
    except Exception:
        try:
            scripted = torch.jit.load(str(path), map_location="cpu")
        except Exception as err:
            raise DamagedCheckpointError(
                f"checkpoint {path} is neither a state dict, a safetensors file nor an OpenAI TorchScript "
                f"archive ({err})"
            ) from None
        sd = scripted.state_dict()
        for k in ("input_resolution", "context_length", "vocab_size"):
            sd.pop(k, None)
        return sd


def load_backbone(
    name: str,
    pretrained: str | None = None,
    *,
    device: str | torch.device = "cpu",
    quick_gelu: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
    tokenizer: Callable | None = None,
) -> Backbone:
    """Build ``name`` (an open_clip model name or a project config) and load its weights.

    pretrained: ``None`` or ``"random"`` (random init from ``seed``), an open_clip tag (``"openai"``), a path to a
        checkpoint file (``.pt``, ``.bin``, ``.safetensors``, OpenAI TorchScript), or ``"embedded"`` for the
        project's own pretrained embedded backbone.
    quick_gelu: ``None`` takes it from the tag (True for OpenAI weights); set it for checkpoint files of
        QuickGELU models.
    tokenizer: ``None`` for the model's own (open_clip's; SigLIP's comes from the Hugging Face hub and a clear
        error says how to get it offline); tests pass a ``tokenizers.StandInTokenizer``.
    """
    if name not in open_clip.list_models():
        from ..utils.names import unknown_name_error

        raise unknown_name_error("backbone", name, open_clip.list_models())
    tokenizer = tokenizer if tokenizer is not None else _tokenizer(name)  # before the build: an offline error fast
    tag_cfg = None
    checkpoint: Path | None = None
    pretrained = None if pretrained in (None, "", "random", "none") else str(pretrained)
    if pretrained is not None:
        if pretrained.startswith("embedded"):
            checkpoint = _resolve_embedded(name, pretrained)
        else:
            tag_cfg = get_pretrained_cfg(name, pretrained)
            if not tag_cfg:
                path = Path(pretrained).expanduser()
                if not path.is_file():
                    raise BackboneUnavailableError(
                        f"pretrained={pretrained!r} is neither a tag of {name!r} "
                        f"(tags: {list_pretrained_tags_by_model(name) or 'none'}) nor an existing checkpoint file"
                    )
                checkpoint = path
    if quick_gelu is None:
        quick_gelu = bool(tag_cfg and tag_cfg.get("quick_gelu", False))

    build_key = (name, pretrained, quick_gelu, seed, str(cache_dir),
                 _stat_key(checkpoint) if checkpoint is not None else None)
    built = _BUILT.get(build_key)
    if built is not None:  # a worker builds the same backbone for every run: copy it, as the build leaves things
        pristine, rng_after, weights_id, info = built
        torch.manual_seed(seed)  # every device's generator as the build leaves it, and the CPU's exactly
        torch.set_rng_state(rng_after)
        return _backbone(name, pretrained, copy.deepcopy(pristine).to(device).eval(), weights_id, info, tokenizer)
    torch.manual_seed(seed)
    if tag_cfg:
        try:
            model = open_clip.create_model(name, pretrained=pretrained, precision="fp32", device="cpu",
                                           force_quick_gelu=quick_gelu, cache_dir=cache_dir)
        except Exception as err:  # offline, no cache, broken download
            raise BackboneUnavailableError(
                f"weights {name}/{pretrained} could not be loaded ({err}). This machine may be offline. Download "
                f"them where there is network (python -c \"import open_clip; open_clip.create_model('{name}', "
                f"pretrained='{pretrained}')\") and copy the Hugging Face cache (~/.cache/huggingface), or save "
                f"the checkpoint file anywhere and pass its path: --pretrained /path/to/{name}.pt "
                f"(add --quick-gelu for OpenAI weights)."
            ) from None
        weights_id = f"{pretrained}"
    else:
        previous = logging.root.level
        logging.root.setLevel(logging.ERROR)  # open_clip warns that a random init has no weights: we know
        try:
            model = open_clip.create_model(name, pretrained=None, precision="fp32", device="cpu",
                                           force_quick_gelu=quick_gelu)
        finally:
            logging.root.setLevel(previous)
        weights_id = f"random-seed{seed}"
        if checkpoint is not None:
            st = checkpoint.stat()
            try:
                state, file_id = _cached_checkpoint(str(checkpoint.resolve()), st.st_size, st.st_mtime)
            except DamagedCheckpointError as err:
                raise DamagedCheckpointError(f"{err}; {_damaged_advice(checkpoint, pretrained)}") from None
            state = open_clip.factory.convert_state_dict(model, state)
            try:
                missing, unexpected = model.load_state_dict(state, strict=False)
            except RuntimeError as err:  # shape mismatches
                first = str(err).split("\n\t")[1] if "\n\t" in str(err) else str(err)[:200]
                raise BackboneUnavailableError(
                    f"checkpoint {checkpoint} does not fit model {name!r} ({first}). Check --backbone matches the "
                    f"checkpoint."
                ) from None
            if missing or unexpected:
                raise BackboneUnavailableError(
                    f"checkpoint {checkpoint} does not fit model {name!r}: missing {list(missing)[:5]}, "
                    f"unexpected {list(unexpected)[:5]}. Check --backbone matches the checkpoint."
                )
            weights_id = ("embedded-" if pretrained.startswith("embedded") else "file-") + file_id
    weights_id += "-quickgelu" if quick_gelu else ""
    info = {"quick_gelu": quick_gelu, "checkpoint": str(checkpoint) if checkpoint else None}
    _BUILT.clear()  # one backbone kept: a worker runs one backbone at a time, and a large one is large
    _BUILT[build_key] = (copy.deepcopy(model).eval(), torch.get_rng_state(), weights_id, info)
    return _backbone(name, pretrained, model.to(device).eval(), weights_id, info, tokenizer)


# the last backbone built in this process, before it went to a device: (model, CPU generator state after the
# build, weights id, info). Building it again costs a random init and a state-dict load (about 0.1 s of every
# embedded run); a copy gives the same weights and leaves the generator where the build would (a part's random
# init, drawn next, is unchanged), so a run's numbers do not depend on what the process ran before.
_BUILT: dict[tuple, tuple[torch.nn.Module, torch.Tensor, str, dict]] = {}


def _stat_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns


def _backbone(name: str, pretrained: str | None, model, weights_id: str, info: dict,
              tokenizer: Callable | None = None) -> Backbone:
    pp = model.visual.preprocess_cfg if hasattr(model.visual, "preprocess_cfg") else {}
    image_size = model.visual.image_size
    image_size = image_size[0] if isinstance(image_size, (tuple, list)) else int(image_size)
    return Backbone(
        name=name,
        pretrained=pretrained,
        model=model,
        tokenizer=tokenizer if tokenizer is not None else _tokenizer(name),
        image_size=image_size,
        mean=tuple(pp.get("mean", OPENAI_MEAN)),
        std=tuple(pp.get("std", OPENAI_STD)),
        interpolation=pp.get("interpolation", "bicubic"),
        weights_id=weights_id,
        info=dict(info),
    )

