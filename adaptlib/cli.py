"""The ``adaptlib`` command: pretrain, run, params, data, sweep, results, measures, findings, export, predict."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .runs.export_cli import register as register_export
from .runs.sweep_cli import register as register_sweep


def _parse_value(text: str):
    """Option values on the command line: JSON when it parses (numbers, lists, true/false), else a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignments(items: list[str] | None, what: str) -> dict:
    """``["coop_prompt.n_ctx=4", "lr=0.01"]`` -> nested dict; ``what`` names the flag in errors."""
    out: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: {what} expects KEY=VALUE, got {item!r}")
        if what == "--set" and (key.count(".") != 1 or not all(key.split("."))):
            raise SystemExit(f"error: --set expects PART.OPTION=VALUE (e.g. --set coop_prompt.n_ctx=4), got {item!r}")
        node = out
        *path, leaf = key.split(".")
        for p in path:
            node = node.setdefault(p, {})
        node[leaf] = _parse_value(value)
    return out


def parse_parts(text: str | None) -> list[tuple[str, dict]]:
    """``coop_prompt,clip_adapter:ratio=0.6,layernorm:tower=image`` -> [(part, options), ...]."""
    parts = []
    for chunk in (text or "").split(","):
        chunk = chunk.strip()
        if not chunk:
            continue
        name, _, opts = chunk.partition(":")
        name = name.strip()
        options = {}
        for kv in filter(None, opts.split(";")):
            k, sep, v = kv.partition("=")
            if not sep or not k.strip():
                raise SystemExit(f"error: --parts: option {kv!r} of part {name!r} needs a value: write "
                                 f"{name}:OPTION=VALUE (several: {name}:a=1;b=2)")
            options[k.strip()] = _parse_value(v)
        parts.append((name, options))
    return parts


def _crop_scale(text: str) -> tuple[float, float]:
    """``--crop-scale 0.08,1`` -> (0.08, 1.0); argparse reports anything else under the option's name."""
    from .runs.spec import parse_crop_scale

    try:
        return parse_crop_scale(text, "--crop-scale")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--crop-scale ")) from None


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none to show."""

    def _get_help_string(self, action):
        if action.default in (None, False, "") or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


# ---------------------------------------------------------------------------------------------------- run
def _add_run(sub) -> None:
    p = sub.add_parser(
        "run", help="run one method on one dataset and write its result file", formatter_class=_DefaultsFormatter,
        description="Run one method on one dataset and write its result file. Without --profile the method trains "
                    "with its paper recipe (the paper's optimiser, learning rate, epochs and random resized crop "
                    "0.08-1); --profile embedded runs it with the embedded study's settings (its calibrated "
                    "learning rate and step cap, no crop), as `make sweep` does.")
    p.add_argument("--method", required=True,
                   help="a method (adaptlib params --list), 'hybrid' (with --parts or --config), or with --profile "
                        "a method label of the profile")
    p.add_argument("--dataset", required=True,
                   help="embedded task (shape, shape@inter=0.5), benchmark name, or folder:PATH for your own images "
                        "(README: 'Your own images')")
    p.add_argument("--shots", type=int, default=16, help="K training images per class (>= 1)")
    p.add_argument("--seed", type=int, default=1, help="seed of the few-shot subset, initialisation and data order")
    p.add_argument("--setting", default="few_shot", help="few_shot | base_to_new | cross_dataset")
    p.add_argument("--selection", default="few_shot_val",
                   help="model selection: few_shot_val (choices on min(K, 4) validation images per class), fixed "
                        "(no validation data: published settings), oracle_test (choices on test; labelled oracle)")
    p.add_argument("--profile", default=None,
                   help="take the run's settings (backbone, crop scale, training options) for --method from this "
                        "sweep profile (embedded, smoke, paper or a file), as its sweep runs it (default: the "
                        "method's paper recipe)")
    p.add_argument("--backbone", default=None, help="open_clip model name (default: adaptlib-tiny, or the profile's)")
    p.add_argument("--pretrained", default=None,
                   help="tag, checkpoint path, 'embedded' or 'random' (default: embedded, or the profile's)")
    p.add_argument("--quick-gelu", action="store_true", default=None, help="QuickGELU (OpenAI weights from a file)")
    p.add_argument("--parts", help="for --method hybrid: part[:opt=v;opt=v],part,...")
    p.add_argument("--config", help="YAML/JSON hybrid recipe: method, label, parts, part_options, train "
                                    "(README: 'Hybrids from a config file')")
    p.add_argument("--set", action="append", metavar="PART.OPTION=VALUE", help="part option override")
    p.add_argument("--train", action="append", metavar="OPTION=VALUE",
                   help="training option override (lr, max_steps, epochs, batch_size, ...)")
    p.add_argument("--eval-datasets", default="", help="comma-separated targets (only with --setting cross_dataset)")
    p.add_argument("--crop-scale", type=_crop_scale, default=None, metavar="MIN,MAX",
                   help="random resized crop scale of the training augmentation, e.g. 0.08,1 or 1,1 (default: "
                        "the method's, 0.08,1 for most, 0.5,1 for Tip-Adapter)")
    p.add_argument("--no-feature-cache", action="store_true", help="run the frozen image encoder every step")
    p.add_argument("--save-state", action="store_true",
                   help="keep the trained parameters under RESULTS/_states/ (for adaptlib export; a run that keeps "
                        "its state is a run of its own, with its own result file)")
    p.add_argument("--label", default="", help="name of this variant in result tables")
    p.add_argument("--data-root", default=os.environ.get("ADAPTLIB_DATA_ROOT"), help="folder of the benchmarks")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    p.add_argument("--results", default="results/runs", help="folder of result files")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_run)


CONFIG_KEYS = ("method", "label", "parts", "part_options", "train")


def _cmd_run(args) -> int:
    from dataclasses import replace

    from .runs.run import RunContext, execute
    from .runs.spec import check_spec
    from .runs.store import state_dir, write_result
    from .utils.atomic import writable_problem

    spec, source = _run_spec(args)
    if args.save_state:
        spec = replace(spec, save_state=True)
    check_spec(spec)  # method, parts, every option's name, type and range, dataset names: before anything loads
    problem = writable_problem(args.results)
    if problem:  # found now, not after training
        raise OSError(f"results folder {problem}: choose another with --results DIR or fix its permissions")
    print(_settings_line(spec, source, args), flush=True)
    result = execute(spec, RunContext(device=args.device, data_root=args.data_root, progress=not args.quiet,
                                      state_dir=str(state_dir(Path(args.results)))))
    if result.get("state_file"):  # relative to the results folder, as a sweep stores it
        result["state_file"] = os.path.relpath(result["state_file"], args.results)
    try:
        path = write_result(Path(args.results), result)
    except OSError as err:
        raise OSError(f"{err}; no result written") from None
    for line in _result_lines(spec, result):
        print(line)
    print(f"trainable parameters {result['trainable_parameters']:,}, wall time {result['wall_seconds']:.1f} s, "
          f"result file {path}")
    if result.get("state_file"):
        print(f"state kept: adaptlib export {path} --out DIR")
    return 0


def _run_spec(args):
    """(the RunSpec of ``adaptlib run``'s arguments, where its settings come from), conflicts refused."""
    from .runs.spec import RunSpec

    config = _load_config(Path(args.config)) if args.config else {}
    if config and "method" in config and config["method"] != args.method:
        raise ValueError(f"--method {args.method!r} conflicts with method {config['method']!r} in config file "
                         f"{args.config}: give the same method in both, or leave 'method' out of the file")
    if args.parts and config.get("parts"):
        raise ValueError(f"--parts and the 'parts' of config file {args.config} both list parts: keep one")
    part_options = _merge(config.get("part_options", {}), parse_assignments(args.set, "--set"))
    train = _merge(config.get("train", {}), parse_assignments(args.train, "--train"))
    hybrid_parts = parse_parts(args.parts) if args.parts else [tuple(p) for p in config.get("parts", [])]
    eval_datasets = tuple(filter(None, (d.strip() for d in args.eval_datasets.split(","))))
    label = args.label or config.get("label", "")
    if args.profile:
        return _profile_spec(args, part_options, train, hybrid_parts, eval_datasets, label)
    spec = RunSpec(
        method=args.method, dataset=args.dataset, shots=args.shots, seed=args.seed, setting=args.setting,
        backbone=args.backbone or "adaptlib-tiny", pretrained=args.pretrained or "embedded",
        quick_gelu=args.quick_gelu, hybrid_parts=tuple(hybrid_parts), part_options=part_options, train=train,
        eval_datasets=eval_datasets, crop_scale=args.crop_scale, feature_cache=not args.no_feature_cache,
        label=label, selection=args.selection,
    )
    return spec, "recipe"


def _profile_spec(args, part_options: dict, train: dict, hybrid_parts: list, eval_datasets: tuple, label: str):
    """``--profile P``: the run as profile P's sweep defines method label ``--method``, plus the command line's
    explicit overrides on top."""
    from dataclasses import replace

    from .runs.profile import BackboneChoice, load_profile, resolve_profile_path
    from .utils.names import unknown_name_error

    if hybrid_parts:
        raise ValueError("--profile takes the method's parts from the profile: leave out --parts and the config "
                         "file's parts (or leave out --profile)")
    profile = load_profile(resolve_profile_path(args.profile))
    if args.method not in profile.methods:
        raise unknown_name_error(f"method label of profile {profile.name!r}", args.method, profile.methods)
    bb = profile.backbones[0]
    if args.backbone or args.pretrained or args.quick_gelu is not None:
        bb = BackboneChoice(args.backbone or bb.name, args.pretrained or bb.pretrained,
                            bb.quick_gelu if args.quick_gelu is None else args.quick_gelu)
    spec = profile.method_spec(args.method, args.dataset, args.shots, args.seed, args.setting, bb, eval_datasets,
                               selection=args.selection)
    changes: dict = {}
    if part_options:
        changes["part_options"] = _merge(spec.part_overrides(), part_options)
    if train:
        changes["train"] = _merge(spec.to_dict()["train"], train)
    if args.crop_scale is not None:
        changes["crop_scale"] = args.crop_scale
    if args.no_feature_cache:
        changes["feature_cache"] = False
    if label:
        changes["label"] = label
    return (replace(spec, **changes) if changes else spec), f"profile {profile.name}"


def _merge(base: dict, extra: dict) -> dict:
    """``extra`` over ``base``, mapping values merged one level down ({part: {option: value}})."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key].update(value)
        else:
            out[key] = value
    return out


def _settings_line(spec, source: str, args) -> str:
    """Which settings this run trains with, and (for the embedded backbone) how to get the study's."""
    from .runs.spec import recipe_for

    recipe = recipe_for(spec)
    cfg = recipe.train_config(spec.setting, spec.dataset).with_overrides(spec.train_overrides())
    where = f"{source}'s settings for {spec.method_label}" if source != "recipe" else \
        f"{spec.method_label}'s paper recipe"
    if not recipe.parts or (not any(cfg.epochs.values()) and not cfg.iterations_per_shot):
        what = "no gradient training"
    else:
        length = f"{cfg.iterations_per_shot * spec.shots} iterations" if cfg.iterations_per_shot else \
            f"{cfg.epochs_for(spec.shots)} epochs"
        cap = f", at most {cfg.max_steps} steps" if cfg.max_steps else ""
        crop = spec.crop_scale or recipe.crop_scale
        what = (f"{cfg.optimizer} lr {cfg.lr:g}, {length}{cap}, batch {cfg.batch_size}, "
                f"crop scale {crop[0]:g}-{crop[1]:g}")
    line = f"settings: {where} ({what})"
    if source == "recipe" and recipe.parts and spec.backbone == "adaptlib-tiny" and \
            str(spec.pretrained).startswith("embedded"):
        line += (f"; the embedded study runs it with its profile's settings (calibrated lr, step cap, no crop): "
                 f"add --profile embedded")
    return line


def _result_lines(spec, result: dict) -> list[str]:
    """Accuracies in %, drift as it is (1 - cosine), notes as text."""
    metrics = result["metrics"]
    trained = bool(result["recipe"]["parts"])
    shots = f"{spec.shots} shots, seed {spec.seed}" if trained else "zero-shot: no training images"
    scores, calibration, drift, notes = [], [], [], []
    for key, value in metrics.items():
        if "drift" in key:
            drift.append(f"{key.removesuffix('_feature_drift')} {value:.4f}" if isinstance(value, float)
                         else f"{key.removesuffix('_feature_drift')} n/a")
        elif key.endswith(("ece", "nll", "worst_class_accuracy")) and isinstance(value, float):
            calibration.append(f"{key} {value:.3f}" if key.endswith("nll") else f"{key} {100 * value:.2f}%")
        elif isinstance(value, float):
            scores.append(f"{key} {100 * value:.2f}%")
        elif value is None:
            scores.append(f"{key} n/a")
        else:
            notes.append(f"{key}: {value}")
    from .runs.selection import selection_label

    lines = [f"{selection_label(spec.method_label, spec.selection)} on {spec.dataset} ({spec.setting}, {shots}): "
             + ", ".join(scores)]
    if calibration:
        lines.append("calibration (ECE over 15 bins, NLL in nats): " + ", ".join(calibration))
    if drift:
        lines.append("representation drift (1 - cosine to the frozen model's features): " + ", ".join(drift))
    return lines + notes


def _load_config(path: Path) -> dict:
    """A hybrid config file (YAML or JSON): its keys checked (the nearest valid one suggested), its parts in the
    form ``[[part, {options}], part, ...]``, numbers such as ``2e-4`` read as numbers."""
    import yaml

    from .utils.names import unknown_name_message
    from .utils.typed import load_yaml

    if not path.is_file():
        raise SystemExit(f"error: config file {path} does not exist")
    try:
        data = load_yaml(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise SystemExit(f"error: config file {path} is not valid YAML/JSON: {err}") from None
    if not isinstance(data, dict):
        raise SystemExit(f"error: config file {path} must hold a mapping ({', '.join(CONFIG_KEYS)})")
    for key in data:
        if key not in CONFIG_KEYS:
            raise SystemExit("error: " + unknown_name_message(f"config file {path}: unknown key", key, CONFIG_KEYS))
    for key in ("part_options", "train"):
        if not isinstance(data.get(key, {}), dict):
            raise SystemExit(f"error: config file {path}: {key!r} must be a mapping, got {data[key]!r}")
    for name, options in data.get("part_options", {}).items():
        if not isinstance(options, dict):
            raise SystemExit(f"error: config file {path}: part_options.{name} must be a mapping of options, "
                             f"got {options!r}")
    parts = []
    items = data.get("parts") or []
    if not isinstance(items, list):
        raise SystemExit(f"error: config file {path}: 'parts' must be a list of [part, {{options}}] or part names")
    for i, item in enumerate(items):
        if isinstance(item, str):
            item = [item, {}]
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)
                and isinstance(item[1] or {}, dict)):
            raise SystemExit(f"error: config file {path}: parts[{i}] must be [part name, {{options}}] or a part "
                             f"name, got {item!r}")
        parts.append((item[0], dict(item[1] or {})))
    if "parts" in data:
        data["parts"] = parts
    if "label" in data and not isinstance(data["label"], str):
        raise SystemExit(f"error: config file {path}: 'label' must be a string, got {data['label']!r}")
    return data


# ---------------------------------------------------------------------------------------------------- params
def _add_params(sub) -> None:
    p = sub.add_parser("params", help="trainable parameter count of a method on a backbone (no weights needed)")
    p.add_argument("--method", help="method name, or 'hybrid' with --parts")
    p.add_argument("--parts", help="for hybrid: part[:opt=v],...")
    p.add_argument("--set", action="append", metavar="PART.OPTION=VALUE")
    p.add_argument("--backbone", default="ViT-B-16")
    p.add_argument("--classes", type=int, default=10, help="classes (class-specific parts scale with it)")
    p.add_argument("--shots", type=int, default=16, help="shots (Tip-Adapter-F's cache scales with it)")
    p.add_argument("--list", action="store_true", help="list methods (paper, reference source) and parts")
    p.add_argument("--families", action="store_true",
                   help="a Markdown table: every method's count on each backbone family's ViT-B/16, or why it does "
                        "not run there (builds each model with random weights: minutes)")
    p.set_defaults(func=_cmd_params)


def _cmd_params(args) -> int:
    from .methods import PARTS, RECIPES
    from .methods.params import count_parameters

    if args.families:
        from .methods.params import family_table

        table = family_table([args.method] if args.method else list(RECIPES), classes=args.classes,
                             shots=args.shots)
        from .reporting import markdown_table

        wide = table.set_index("family").drop(columns="backbone").T.rename_axis("method")
        print(markdown_table(wide))
        return 0
    if args.list or not args.method:
        print("methods (paper; source: the reference files its defaults come from):")
        for name, recipe in RECIPES.items():
            print(f"  {name:16s} {recipe.paper or '-'}; source: {recipe.source or '-'}")
        print("parts:  ", ", ".join(PARTS))
        return 0
    counts = count_parameters(args.method, args.backbone, parse_parts(args.parts),
                              parse_assignments(args.set, "--set"), args.classes, args.shots)
    print(f"{counts['method']} on {args.backbone}: {counts['trainable']:,} trainable parameters")
    for name, n in counts["per_part"].items():
        print(f"  {name:20s} {n:>12,}")
    return 0


# ---------------------------------------------------------------------------------------------------- pretrain
def _add_pretrain(sub) -> None:
    p = sub.add_parser("pretrain", help="pretrain the embedded backbone on the embedded corpus (CPU, minutes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--model", default="adaptlib-tiny")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--force", action="store_true", help="retrain even if the checkpoint exists")
    p.set_defaults(func=_cmd_pretrain)


def _cmd_pretrain(args) -> int:
    from dataclasses import replace

    from .backbones import embedded_checkpoint
    from .backbones.pretrain import PretrainConfig, pretrain, released_sha256

    path = embedded_checkpoint(args.model, args.seed)
    if path.is_file() and not args.force:
        print(f"{path} exists (use --force to retrain); model card: {path.parent / 'model_card.md'}")
        return 0
    cfg = PretrainConfig(model=args.model, seed=args.seed)
    if args.steps:
        cfg = replace(cfg, steps=args.steps)
    if args.threads:
        cfg = replace(cfg, threads=args.threads)
    before = released_sha256(path.parent) if path.is_file() else None
    card = pretrain(cfg, path)
    print(f"pretrained {args.model} (seed {args.seed}) in {card['seconds']['total']:.0f} s -> {path}")
    print(f"  sha256 {card['sha256']}")
    if before and before != card["sha256"]:
        print(f"  differs from the checkpoint it replaced (sha256 {before}): pretraining gives other bits on another "
              f"CPU or torch build, and every number of the study moves with them; 'git checkout {path.parent}' "
              f"restores the released checkpoint that the committed figures and calibration came from")
    elif before:
        print("  identical to the checkpoint it replaced")
    for row in card["zero_shot"]:
        print(f"  {row['task']:12s} zero-shot {100 * row['zero_shot_accuracy']:5.1f}%  "
              f"(chance {100 * row['chance']:.1f}%)")
    return 0


# ---------------------------------------------------------------------------------------------------- data
def _add_data(sub) -> None:
    p = sub.add_parser("data", help="dataset utilities")
    dsub = p.add_subparsers(dest="data_command", required=True)
    c = dsub.add_parser("check", help="report, for each benchmark under ROOT (or ROOT as a folder of your own "
                                      "images), found/missing, counts and problems")
    c.add_argument("--root", default=None, help="folder of the benchmarks, or a folder of your own images")
    c.add_argument("--datasets", default=None, help="comma-separated subset; folder:PATH checks a folder of images")
    c.add_argument("--quick", action="store_true", help="check that files exist without opening them")
    c.set_defaults(func=lambda a: __import__("adaptlib.data.check", fromlist=["main_check"]).main_check(
        a.root, a.datasets, a.quick))
    lst = dsub.add_parser("list", help="list embedded tasks and benchmarks")
    lst.set_defaults(func=_cmd_data_list)


def _cmd_data_list(args) -> int:
    from .data.embedded import TASKS
    from .data.registry import benchmark_names

    for name, spec in TASKS.items():
        print(f"{name:12s} {len(spec.classes):3d} classes  {spec.description}")
    print("benchmarks:", ", ".join(benchmark_names()))
    print("your own images: folder:PATH (README: 'Your own images')")
    return 0


# ---------------------------------------------------------------------------------------------------- findings
def _add_findings(sub) -> None:
    p = sub.add_parser("findings", help="the notebooks' verdicts as Markdown (and the README's findings section)")
    p.add_argument("--figures", default="figures/embedded", help="a profile's figures folder")
    p.add_argument("--out", default=None, help="Markdown file (default: FIGURES/FINDINGS.md)")
    p.add_argument("--readme", default=None, help="also replace this README's findings block")
    p.set_defaults(func=lambda a: __import__("adaptlib.study.findings", fromlist=["main_findings"]).main_findings(
        a.figures, a.out or str(Path(a.figures) / "FINDINGS.md"), a.readme))


# ---------------------------------------------------------------------------------------------------- measures
def _add_measures(sub) -> None:
    p = sub.add_parser("measures", help="the tables the notebooks compute from data and models, into RESULTS/measures")
    from .measures.cli import add_arguments, run  # light: the stage (torch, models) loads when the command runs

    add_arguments(p)
    p.set_defaults(func=run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adaptlib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run(sub)
    _add_params(sub)
    _add_pretrain(sub)
    _add_data(sub)
    _add_findings(sub)
    _add_measures(sub)
    register_sweep(sub)
    register_export(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe (| head) shows here, not as a traceback at exit
        return code
    except KeyboardInterrupt:
        print(INTERRUPTED.get(args.command, "interrupted"), file=sys.stderr, flush=True)
        return 130
    except BrokenPipeError:  # the reader went away (adaptlib sweep --dry-run | head -1): nothing more to say
        _discard_stdout()
        return 0
    except (KeyError, ValueError, FileNotFoundError, RuntimeError, OSError, ArithmeticError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"error: {message}", file=sys.stderr)
        return 2


INTERRUPTED = {
    "run": "interrupted; no result written",
    "sweep": "interrupted; the runs finished so far are kept (start the sweep again to go on)",
}


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that Python's flush at exit does not fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
