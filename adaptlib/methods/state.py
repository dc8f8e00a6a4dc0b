"""The adapted state of a model: the one place that saves it, loads it, and rebuilds the adapted model from it.

A state file (safetensors) holds
- ``part/<part>/<tensor>``: each part's own tensors after training and fitting (``Part.state_tensors``);
- ``final/<name>`` and ``initial/<name>``: every backbone weight the adaptation changes, by its name in the frozen
  backbone, as adapted (trained in place, or merged from inserted modules such as LoRA) and as frozen;
and, as metadata, the backbone, the parts with their options, the classes and templates, each part's plain
values (``Part.extra_state``), plus whatever the caller adds (a run's key and spec). Parameter drift reads
``initial`` and ``final``; ``rebuild_model`` gives back the adapted model. Neither knows any part's internals.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..backbones import load_backbone
from ..utils.atomic import atomic_save
from .model import AdaptedCLIP
from .registry import build_part

FORMAT = "adaptlib-state-1"


@dataclass
class AdaptedState:
    """What a state file holds, loaded."""

    backbone: dict[str, Any]  # name, pretrained, quick_gelu: how to load the frozen backbone
    parts: list[tuple[str, dict[str, Any]]]  # each part's name and options, in the model's order
    classnames: list[str]
    templates: list[str]
    initial: dict[str, torch.Tensor]  # frozen backbone weights that the adaptation changes
    final: dict[str, torch.Tensor]  # the same weights as adapted
    part_tensors: dict[str, dict[str, torch.Tensor]]  # part name -> its own tensors
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)  # part name -> its plain values
    metadata: dict[str, Any] = field(default_factory=dict)  # what the caller added (a run's key and spec)

    @property
    def spec(self) -> dict[str, Any]:
        """The run's spec, when a run saved this state."""
        return self.metadata.get("spec", {})


def _options(part) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(part.config)))  # tuples as lists: what a config file would hold


def state_tensors(model: AdaptedCLIP) -> dict[str, torch.Tensor]:
    """The flat tensors of a state file for ``model`` as it is now."""
    out = {}
    for part in model.parts:
        for name, value in part.state_tensors(model).items():
            out[f"part/{part.name}/{name}"] = value
    final = model.adapted_backbone_weights()
    with model.frozen_view():
        initial = model.adapted_backbone_weights()
        initial = {name: value.clone() for name, value in initial.items()}
    out.update({f"final/{name}": value for name, value in final.items()})
    out.update({f"initial/{name}": value for name, value in initial.items()})
    return {k: v.detach().cpu().contiguous().clone() for k, v in out.items()}


def save_adapted_state(model: AdaptedCLIP, path: str | Path, backbone: dict[str, Any],
                       metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s adapted state to ``path`` atomically. ``backbone``: name, pretrained and quick_gelu of
    the frozen backbone (what ``load_backbone`` needs to load it again)."""
    from safetensors.torch import save_file

    tensors = state_tensors(model)
    header = {"format": FORMAT, "backbone": backbone,
              "parts": [[part.name, _options(part)] for part in model.parts],
              "classnames": model.classnames, "templates": model.templates,
              "extra": {part.name: part.extra_state() for part in model.parts}, "metadata": metadata or {}}
    text = {key: json.dumps(value, sort_keys=True) for key, value in header.items()}
    path = Path(path)
    atomic_save(path, lambda tmp: save_file(tensors, str(tmp), metadata=text))
    return path


def load_adapted_state(path: str | Path) -> AdaptedState:
    """Read a state file written by ``save_adapted_state``."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise ValueError(f"{path}: not a readable adapted-state file ({err}); rerun the run that wrote it") from err
    if json.loads(meta.get("format", "null")) != FORMAT:
        raise ValueError(f"{path}: not an adaptlib state file of format {FORMAT!r} (found "
                         f"{meta.get('format')!r}); rerun the run that wrote it")
    header = {key: json.loads(value) for key, value in meta.items()}
    initial, final, part_tensors = {}, {}, {}
    for key, value in tensors.items():
        kind, _, name = key.partition("/")
        if kind == "initial":
            initial[name] = value
        elif kind == "final":
            final[name] = value
        elif kind == "part":
            part, _, tensor = name.partition("/")
            part_tensors.setdefault(part, {})[tensor] = value
    return AdaptedState(header["backbone"], [(n, o) for n, o in header["parts"]], header["classnames"],
                        header["templates"], initial, final, part_tensors, header.get("extra", {}),
                        header.get("metadata", {}))


def rebuild_model(state: AdaptedState | str | Path, backbone=None, device: str | torch.device = "cpu"
                  ) -> AdaptedCLIP:
    """The adapted model a state describes: the frozen backbone (loaded, or ``backbone``, which is modified),
    the parts with their options, and their trained tensors and values."""
    if not isinstance(state, AdaptedState):
        state = load_adapted_state(state)
    if backbone is None:
        spec = state.backbone
        backbone = load_backbone(spec["name"], spec.get("pretrained"), device=device,
                                 quick_gelu=spec.get("quick_gelu"), seed=0)
    model = AdaptedCLIP(backbone, state.classnames, state.templates,
                        [build_part(name, options) for name, options in state.parts]).to(device)
    for part in model.parts:
        part.load_state_tensors(model, {k: v.to(device) for k, v in state.part_tensors.get(part.name, {}).items()})
        part.load_extra_state(state.extra.get(part.name, {}))
    with torch.no_grad():
        for part in model.parts:
            for param in part.backbone_parameters(model):
                param.copy_(state.final[model.frozen_name(param)].to(param.device))
    model.eval()
    return model
