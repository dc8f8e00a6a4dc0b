"""Export the adapted model of a run that kept its state, and load it back to classify new images.

``export_run(RESULT, DIR)`` reads a run's result file and the state file it points to (``save_state``) and writes
DIR in one of two kinds, chosen from the parts' contract (``Part``), never from their names:

- ``open_clip_weights``: every part acts only through backbone weights (parameters trained in place, LoRA merged
  in), has no forward or inference hook and no plain values. DIR holds a full open_clip state dict
  (``open_clip_model.safetensors``) that ``open_clip.create_model(NAME, pretrained=PATH)`` loads, an
  ``open_clip_config.json`` (so ``open_clip.create_model("local-dir:DIR")`` loads it without adaptlib), and the
  class text features of the adapted model (``class_text_features.safetensors``). The kind is checked before it is
  written: the plain model must give the adapted model's logits on probe images, else the second kind is used.
- ``adaptlib_parts``: any other method. DIR holds the parts' own tensors and the backbone weights they train in
  place (``adapter.safetensors``); the frozen backbone is loaded again from its name and pretrained tag.

Both kinds hold ``adaptlib_export.json`` (method, parts and their options, classes, templates, the test
preprocessing, the run's spec and metrics), and ``load_exported(DIR)`` gives back a ready ``AdaptedCLIP``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..backbones import load_backbone
from ..data.transforms import TransformConfig
from ..methods.model import AdaptedCLIP
from ..methods.parts.base import Part
from ..methods.registry import build_part
from ..methods.state import AdaptedState, load_adapted_state, rebuild_model
from ..methods.step import Batch
from ..utils.atomic import WriteError
from .store import InvalidResult, read_result

FORMAT = "adaptlib-export-1"
CONFIG_FILE = "adaptlib_export.json"
WEIGHTS_FILE = "open_clip_model.safetensors"  # a name open_clip's local-dir loader prefers
OPEN_CLIP_CONFIG_FILE = "open_clip_config.json"
TEXT_FEATURES_FILE = "class_text_features.safetensors"
TENSORS_FILE = "adapter.safetensors"
WEIGHTS_KIND, PARTS_KIND = "open_clip_weights", "adaptlib_parts"
# hooks that change what the model computes at inference: a part overriding any of them is more than weights
FORWARD_HOOKS = ("prompt_embeddings", "visual_tokens", "text_tokens", "image_features", "text_features", "logits",
                 "ensemble")


@dataclass
class ExportedModel:
    """An export loaded back: the model (classes set, eval mode), its config, and the run's test preprocessing."""

    model: AdaptedCLIP
    config: dict[str, Any]
    transform: TransformConfig


# ------------------------------------------------------------------------------------------------ reading a run
def read_run(result: str | os.PathLike) -> tuple[dict, Path]:
    """(the checked result record, its state file) of a run that kept its state; clear errors otherwise."""
    path = Path(result)
    if not path.exists():
        raise FileNotFoundError(f"result file {path} does not exist: give the JSON file a run wrote (adaptlib run "
                                f"prints its path; a sweep writes them under its results folder)")
    if path.is_dir():
        raise ValueError(f"{path} is a folder: give one run's result file (<results>/.../shotsK-seedS-<hash>.json)")
    try:
        record = read_result(path)
    except InvalidResult as err:
        raise ValueError(f"{err}: RESULT must be a run's result file as adaptlib run or a sweep writes it") from None
    if not record.get("state_file"):
        raise ValueError(f"run {record['key']} ({path}) kept no state, so there is nothing to export: "
                         f"{rerun_hint(record, path)}")
    state_path = Path(record["state_file"])
    if not state_path.is_absolute():
        state_path = store_root(path, record["key"]) / state_path
    if not state_path.is_file():
        raise FileNotFoundError(f"the state file of run {record['key']} is missing: expected {state_path} (moved or "
                                f"deleted); {rerun_hint(record, path)}")
    return record, state_path


def store_root(path: Path, key: str) -> Path:
    """The results folder of a result file: its path without the run's key (where relative state files live)."""
    depth = len(key.split("/"))
    parts = path.resolve().with_suffix("").parts
    if tuple(parts[-depth:]) == tuple(key.split("/")):
        return path.resolve().parents[depth - 1]
    return path.resolve().parent  # a result file moved out of its store: look beside it


def rerun_hint(record: dict, path: Path) -> str:
    """How to run this run again with its state kept."""
    if record.get("sweep"):
        return (f"it comes from sweep {record['sweep']!r}: add 'save_state: true' to the method's entry in that "
                f"profile, run the sweep again (runs that keep their state are new runs with their own result "
                f"files) and export one of those")
    command = run_command(record["config"], store_root(path, record["key"]))
    note = (" (its ensemble_alphas are a profile option: run it from its profile with 'save_state: true' to keep "
            "them)") if record["config"].get("ensemble_alphas") else ""
    return f"run it again with its state kept: {command}, then export the result file it prints{note}"


def run_command(config: dict, results: Path) -> str:
    """The ``adaptlib run`` command line of a run's config, with ``--save-state``."""
    args = ["adaptlib", "run", "--method", config["method"], "--dataset", config["dataset"],
            "--shots", str(config["shots"]), "--seed", str(config["seed"])]
    if config.get("setting", "few_shot") != "few_shot":
        args += ["--setting", config["setting"]]
    args += ["--backbone", config["backbone"], "--pretrained", config.get("pretrained") or "random"]
    if config.get("quick_gelu"):
        args.append("--quick-gelu")
    if config.get("hybrid_parts"):
        args += ["--parts", ",".join(_part_text(name, options) for name, options in config["hybrid_parts"])]
    for part, options in (config.get("part_options") or {}).items():
        args += [a for k, v in options.items() for a in ("--set", f"{part}.{k}={json.dumps(v)}")]
    args += [a for k, v in (config.get("train") or {}).items() for a in ("--train", f"{k}={json.dumps(v)}")]
    if config.get("eval_datasets"):
        args += ["--eval-datasets", ",".join(config["eval_datasets"])]
    if config.get("crop_scale"):
        args += ["--crop-scale", ",".join(f"{x:g}" for x in config["crop_scale"])]
    if config.get("feature_cache") is False:
        args.append("--no-feature-cache")
    if config.get("label"):
        args += ["--label", config["label"]]
    args += ["--results", str(results), "--save-state"]
    return " ".join(shlex.quote(a) for a in args)


def _part_text(name: str, options: dict) -> str:
    return name + (":" + ";".join(f"{k}={json.dumps(v)}" for k, v in options.items()) if options else "")


# ------------------------------------------------------------------------------------------------ the two kinds
def weights_only_reason(state: AdaptedState) -> str | None:
    """None when the adaptation lives entirely in backbone weights; else why not (naming the part)."""
    for name, options in state.parts:
        part = build_part(name, options)
        hooks = [h for h in FORWARD_HOOKS if getattr(type(part), h) is not getattr(Part, h)]
        if hooks or part.is_prompt_learner or part.is_visual_prompt:
            return f"part {name!r} changes the forward pass ({', '.join(hooks) or 'prompts'})"
        if state.extra.get(name):
            return f"part {name!r} keeps values chosen after training ({', '.join(state.extra[name])})"
        tensors = state.part_tensors.get(name, {})
        if tensors and type(part).merged_weights is Part.merged_weights:
            return f"part {name!r} has tensors outside the backbone ({', '.join(sorted(tensors)[:3])})"
    return None


def in_place_names(model: AdaptedCLIP) -> set[str]:
    """Frozen-backbone names of the parameters the parts train in place (not weights merged from inserted modules,
    which the parts' own tensors rebuild)."""
    return {model.frozen_name(p) for part in model.parts for p in part.backbone_parameters(model)}


def check_frozen_backbone(state: AdaptedState, backbone) -> None:
    """The backbone loaded now must be the one the run adapted: the state's frozen copies must match it."""
    weights = dict(backbone.model.named_parameters())
    changed = [name for name, value in state.initial.items()
               if name in weights and not torch.equal(weights[name].detach().cpu(), value)]
    if changed:
        raise ValueError(f"the backbone {state.backbone['name']} ({state.backbone.get('pretrained')}) loaded now is "
                         f"not the one the run adapted ({len(changed)} weights differ, e.g. {changed[0]}); was it "
                         f"pretrained again? Rerun the run on these weights, then export it")


# ------------------------------------------------------------------------------------------------ export
def export_run(result: str | os.PathLike, out: str | os.PathLike, force: bool = False) -> dict[str, Any]:
    """Write the adapted model of run ``result`` to folder ``out`` (atomically); returns its export config."""
    out = Path(out)
    check_out(out, force)
    record, state_path = read_run(result)
    state = load_adapted_state(state_path)
    backbone = load_backbone(state.backbone["name"], state.backbone.get("pretrained"), device="cpu",
                             quick_gelu=state.backbone.get("quick_gelu"), seed=0)
    check_frozen_backbone(state, backbone)
    frozen_weights = {k: v.detach().clone() for k, v in backbone.model.state_dict().items()}
    transform = TransformConfig.for_backbone(backbone)
    model = rebuild_model(state, backbone)
    config = export_config(record, Path(result), state, backbone, transform)
    config["probabilities"] = "sigmoid per class" if getattr(model, "sigmoid_logits", False) else "softmax"
    reason = weights_only_reason(state)

    def fill(folder: Path) -> None:
        nonlocal reason
        if reason is None:
            write_weights(folder, model, state, frozen_weights, config)
            reason = verify_weights(folder, model)
            if reason is None:
                return
            warnings.warn(f"exporting run {record['key']} as adaptlib parts: {reason}", stacklevel=2)
            for path in folder.iterdir():
                path.unlink()
        write_parts(folder, model, state, config, reason)

    write_folder(out, force, fill)
    return json.loads((out / CONFIG_FILE).read_text())


def export_config(record: dict, result: Path, state: AdaptedState, backbone, transform: TransformConfig) -> dict:
    """What both kinds record besides tensors: how to load the backbone, the parts, classes and the run."""
    spec = record["config"]
    return {
        "format": FORMAT,
        "backbone": {"name": backbone.name, "pretrained": state.backbone.get("pretrained"),
                     "quick_gelu": bool(backbone.info.get("quick_gelu")), "weights_id": backbone.weights_id},
        "method": spec.get("label") or spec["method"],
        "parts": [[name, options] for name, options in state.parts],
        "extra": state.extra,
        "classnames": state.classnames,
        "templates": state.templates,
        "preprocess": {"size": transform.size, "mean": list(transform.mean), "std": list(transform.std),
                       "interpolation": transform.interpolation,
                       "resize": "shorter side to size, then centre crop (the run's test transform)"},
        "run": {"key": record["key"], "result_file": str(result.resolve()), "spec": spec,
                "metrics": record["metrics"], "code_version": record.get("code_version")},
    }


def write_weights(folder: Path, model: AdaptedCLIP, state: AdaptedState, frozen: dict[str, torch.Tensor],
                  config: dict) -> None:
    """The weights-only kind: the frozen state dict with every adapted weight in place, open_clip's config, the
    class text features of the adapted model, and the export config."""
    import open_clip
    from safetensors.torch import save_file

    unknown = sorted(set(state.final) - set(frozen))
    if unknown:
        raise ValueError(f"adapted weights {unknown[:3]} are not in the backbone's state dict")
    weights = {**frozen, **{name: value.to(frozen[name].dtype) for name, value in state.final.items()}}
    save_file({k: v.contiguous() for k, v in weights.items()}, str(folder / WEIGHTS_FILE))
    model_cfg = dict(open_clip.get_model_config(config["backbone"]["name"]) or {})
    if config["backbone"]["quick_gelu"]:
        model_cfg["quick_gelu"] = True
    pp = config["preprocess"]
    preprocess = {"size": pp["size"], "mean": pp["mean"], "std": pp["std"], "interpolation": pp["interpolation"],
                  "resize_mode": "shortest"}
    (folder / OPEN_CLIP_CONFIG_FILE).write_text(json.dumps({"model_cfg": model_cfg, "preprocess_cfg": preprocess},
                                                           indent=2))
    with torch.no_grad():
        text = F.normalize(model.text_features_raw().float(), dim=-1)
    save_file({"text_features": text.detach().cpu().contiguous()}, str(folder / TEXT_FEATURES_FILE),
              metadata={"classnames": json.dumps(model.classnames), "templates": json.dumps(model.templates)})
    files = {"weights": WEIGHTS_FILE, "open_clip_config": OPEN_CLIP_CONFIG_FILE, "text_features": TEXT_FEATURES_FILE}
    why = "every part acts only through backbone weights (trained in place or merged)" if state.parts else \
        "no parts: the frozen backbone"
    _write_config(folder, {**config, "kind": WEIGHTS_KIND, "files": files, "why": why})


def verify_weights(folder: Path, adapted: AdaptedCLIP, tolerance: float = 1e-4) -> str | None:
    """None when the plain model in ``folder`` gives ``adapted``'s logits on probe images; else the difference."""
    exported = open_export(folder)
    plain, size = exported.model, exported.transform.size
    images = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(0))
    want, got = image_logits(adapted, images), image_logits(plain, images)
    scale = float(adapted.logit_scale)
    if torch.allclose(got, want, rtol=tolerance, atol=tolerance * max(scale, 1.0)):
        return None
    return f"its backbone weights alone do not give its logits (max difference {float((got - want).abs().max()):.3g})"


def write_parts(folder: Path, model: AdaptedCLIP, state: AdaptedState, config: dict, why: str) -> None:
    """The parts kind: each part's own tensors and the backbone weights trained in place, plus the config."""
    from safetensors.torch import save_file

    tensors = {f"part/{part}/{name}": value for part, named in state.part_tensors.items()
               for name, value in named.items()}
    tensors.update({f"final/{name}": state.final[name] for name in sorted(in_place_names(model))})
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / TENSORS_FILE))
    _write_config(folder, {**config, "kind": PARTS_KIND, "files": {"tensors": TENSORS_FILE}, "why": why})


def _write_config(folder: Path, config: dict) -> None:
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


# ------------------------------------------------------------------------------------------------ the folder
def check_out(out: Path, force: bool) -> None:
    """Refuse an existing ``out`` without ``force``; with it, replace only an earlier export or an empty folder."""
    if not out.exists() and not out.is_symlink():
        return
    if not force:
        raise FileExistsError(f"export folder {out} exists: choose another --out, or pass --force to replace it")
    if not out.is_dir() or out.is_symlink():
        raise FileExistsError(f"--out {out} exists and is not a folder: remove it or choose another --out")
    if any(out.iterdir()) and not (out / CONFIG_FILE).is_file():
        raise FileExistsError(f"--out {out} is a folder that holds no export ({CONFIG_FILE}): --force replaces "
                              f"only an earlier export or an empty folder; choose another --out")


def write_folder(out: Path, force: bool, fill: Callable[[Path], None]) -> None:
    """Fill a temporary folder beside ``out``, then rename it to ``out`` (an earlier export replaced only with
    ``force``): a failed or interrupted export leaves nothing behind."""
    tmp: Path | None = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes a private folder; an export is an ordinary one
        fill(tmp)
        for path in tmp.iterdir():  # safetensors writes private files; an export is ordinary files
            os.chmod(path, 0o666 & ~umask)
        check_out(out, force)  # again: another process may have written it meanwhile
        if out.exists():
            old = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.old"
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
        tmp = None
    except OSError as err:
        if isinstance(err, (FileExistsError, WriteError)):
            raise
        raise WriteError(out, err) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ loading back
def read_export_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The export config of ``folder``, checked: it exists and is of this format."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not an adaptlib export: {CONFIG_FILE} is missing (write one with "
                                f"adaptlib export RESULT --out {folder})")
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not readable JSON ({err}): export the run again") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"{path} is not an export of format {FORMAT!r}: export the run again with this adaptlib")
    return config


def open_export(folder: str | os.PathLike, device: str | torch.device = "cpu") -> ExportedModel:
    """The model of an export (either kind) with its config and the run's test preprocessing."""
    folder = Path(folder)
    config = read_export_config(folder)
    bb = config["backbone"]
    if config["kind"] == WEIGHTS_KIND:
        backbone = load_backbone(bb["name"], str(folder / config["files"]["weights"]), device=device,
                                 quick_gelu=bb["quick_gelu"])
        model = AdaptedCLIP(backbone, config["classnames"], config["templates"], []).to(device)
    elif config["kind"] == PARTS_KIND:
        model = _load_parts(folder, config, device)
    else:
        raise ValueError(f"{folder / CONFIG_FILE}: unknown kind {config['kind']!r}: export the run again")
    model.eval()
    pp = config["preprocess"]
    transform = TransformConfig(size=int(pp["size"]), mean=tuple(pp["mean"]), std=tuple(pp["std"]),
                                interpolation=pp["interpolation"])
    return ExportedModel(model, config, transform)


def load_exported(folder: str | os.PathLike, device: str | torch.device = "cpu") -> AdaptedCLIP:
    """A ready AdaptedCLIP from an export folder, its classes set (``predict`` gives its logits)."""
    return open_export(folder, device).model


def _load_parts(folder: Path, config: dict, device: str | torch.device) -> AdaptedCLIP:
    """Load the frozen backbone from its name and tag, then the parts' tensors and in-place weights."""
    from safetensors.torch import load_file

    bb = config["backbone"]
    backbone = load_backbone(bb["name"], bb.get("pretrained"), device=device, quick_gelu=bb["quick_gelu"], seed=0)
    if backbone.weights_id != bb.get("weights_id"):
        warnings.warn(f"{folder}: the backbone {bb['name']} ({bb.get('pretrained')}) loaded now has weights "
                      f"{backbone.weights_id}, the export was made on {bb.get('weights_id')}: its predictions are "
                      f"wrong if the frozen weights changed", stacklevel=3)
    path = folder / config["files"]["tensors"]
    try:
        tensors = load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise ValueError(f"{path} is not a readable safetensors file ({err}): export the run again") from None
    final, part_tensors = {}, {}
    for key, value in tensors.items():
        kind, _, name = key.partition("/")
        if kind == "final":
            final[name] = value
        else:
            part, _, tensor = name.partition("/")
            part_tensors.setdefault(part, {})[tensor] = value
    state = AdaptedState(dict(bb), [(n, o) for n, o in config["parts"]], config["classnames"], config["templates"],
                         {}, final, part_tensors, config.get("extra", {}), {"spec": config["run"]["spec"]})
    return rebuild_model(state, backbone, device)


# ------------------------------------------------------------------------------------------------ inference
def needs_frozen_features(model: AdaptedCLIP) -> bool:
    """Whether inference reads the frozen model's image features: an ensemble with it, or an untouched encoder."""
    ensembles = any(type(p).ensemble is not Part.ensemble for p in model.active_parts)
    return ensembles or not model.uses_image_encoder


@torch.no_grad()
def image_logits(model: AdaptedCLIP, images: torch.Tensor) -> torch.Tensor:
    """Logits [B, C] (float) of preprocessed images, as the run's evaluation computes them: the frozen encoder's
    features where the image encoder is untouched or an ensemble reads them, the adapted encoder otherwise."""
    from ..training.loop import autocast_for

    model.eval()
    device = model.logit_scale.device
    images = images.to(device)
    with autocast_for(device):
        frozen = None
        if needs_frozen_features(model):
            if model.uses_image_encoder:
                with model.frozen_view():
                    frozen = model.clip.encode_image(images)
            else:
                frozen = model.clip.encode_image(images)
        logits = model.predict(Batch(images=images, features=frozen))
    return logits.float()


def config_summary(config: dict) -> str:
    """One line on what an export holds."""
    return (f"{config['method']} ({config['kind']}: {config['why']}), {len(config['classnames'])} classes, "
            f"backbone {config['backbone']['name']}")


__all__ = ["ExportedModel", "export_run", "load_exported", "open_export", "image_logits", "read_run",
           "weights_only_reason"]
