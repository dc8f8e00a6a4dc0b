"""The ``adaptlib`` command: pretrain, run, params, data, sweep, results, findings."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

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
        options = {}
        for kv in filter(None, opts.split(";")):
            k, _, v = kv.partition("=")
            options[k] = _parse_value(v)
        parts.append((name, options))
    return parts


# ---------------------------------------------------------------------------------------------------- run
def _add_run(sub) -> None:
    p = sub.add_parser("run", help="run one method on one dataset and write its result file")
    p.add_argument("--method", required=True, help="a method (adaptlib params --list) or 'hybrid'")
    p.add_argument("--dataset", required=True, help="embedded task (shape, shape@inter=0.5) or benchmark name")
    p.add_argument("--shots", type=int, default=16)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--setting", default="few_shot", help="few_shot | base_to_new | cross_dataset")
    p.add_argument("--backbone", default="adaptlib-tiny")
    p.add_argument("--pretrained", default="embedded", help="tag, checkpoint path, 'embedded' or 'random'")
    p.add_argument("--quick-gelu", action="store_true", default=None, help="QuickGELU (OpenAI weights from a file)")
    p.add_argument("--parts", help="for --method hybrid: part[:opt=v;opt=v],part,...")
    p.add_argument("--config", help="YAML/JSON file with method, parts, part_options, train (a hybrid recipe)")
    p.add_argument("--set", action="append", metavar="PART.OPTION=VALUE", help="part option override")
    p.add_argument("--train", action="append", metavar="OPTION=VALUE", help="training option override")
    p.add_argument("--eval-datasets", default="", help="comma-separated targets for cross_dataset")
    p.add_argument("--crop-scale", default=None,
                   help="random resized crop scale of training augmentation (default: the method's, 0.08,1)")
    p.add_argument("--no-feature-cache", action="store_true", help="run the frozen image encoder every step")
    p.add_argument("--label", default="", help="name of this variant in result tables")
    p.add_argument("--data-root", default=os.environ.get("ADAPTLIB_DATA_ROOT"))
    p.add_argument("--device", default="auto")
    p.add_argument("--results", default="results/runs", help="folder of result files")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_run)


def _cmd_run(args) -> int:
    from .runs.run import RunContext, execute
    from .runs.spec import RunSpec
    from .runs.store import write_result

    config = {}
    if args.config:
        config = _load_config(Path(args.config))
    part_options = {**config.get("part_options", {}), **parse_assignments(args.set, "--set")}
    train = {**config.get("train", {}), **parse_assignments(args.train, "--train")}
    hybrid_parts = parse_parts(args.parts) if args.parts else [tuple(p) for p in config.get("parts", [])]
    method = config.get("method", args.method) if args.config else args.method
    spec = RunSpec(
        method=method, dataset=args.dataset, shots=args.shots, seed=args.seed, setting=args.setting,
        backbone=args.backbone, pretrained=args.pretrained, quick_gelu=args.quick_gelu,
        hybrid_parts=tuple(hybrid_parts), part_options=part_options, train=train,
        eval_datasets=tuple(filter(None, args.eval_datasets.split(","))),
        crop_scale=tuple(float(x) for x in args.crop_scale.split(",")) if args.crop_scale else None,
        feature_cache=not args.no_feature_cache,
        label=args.label or config.get("label", ""),
    )
    result = execute(spec, RunContext(device=args.device, data_root=args.data_root, progress=not args.quiet))
    path = write_result(Path(args.results), result)
    metrics = {k: (round(100 * v, 2) if isinstance(v, float) else v) for k, v in result["metrics"].items()}
    print(f"{spec.method_label} on {spec.dataset} ({spec.setting}, {spec.shots} shots, seed {spec.seed}): "
          + ", ".join(f"{k} {v}" for k, v in metrics.items()))
    print(f"trainable parameters {result['trainable_parameters']:,}, wall time {result['wall_seconds']:.1f} s, "
          f"result file {path}")
    return 0


def _load_config(path: Path) -> dict:
    import yaml

    if not path.is_file():
        raise SystemExit(f"error: config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SystemExit(f"error: config file {path} is not valid YAML/JSON: {err}") from None
    if not isinstance(data, dict):
        raise SystemExit(f"error: config file {path} must hold a mapping (method, parts, part_options, train)")
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
    p.add_argument("--list", action="store_true", help="list methods and parts")
    p.set_defaults(func=_cmd_params)


def _cmd_params(args) -> int:
    from .methods import PARTS, RECIPES
    from .methods.params import count_parameters

    if args.list or not args.method:
        print("methods:", ", ".join(RECIPES))
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
    from .backbones.pretrain import PretrainConfig, pretrain

    path = embedded_checkpoint(args.model, args.seed)
    if path.is_file() and not args.force:
        print(f"{path} exists (use --force to retrain); model card: {path.parent / 'model_card.md'}")
        return 0
    cfg = PretrainConfig(model=args.model, seed=args.seed)
    if args.steps:
        cfg = replace(cfg, steps=args.steps)
    if args.threads:
        cfg = replace(cfg, threads=args.threads)
    card = pretrain(cfg, path)
    print(f"pretrained {args.model} (seed {args.seed}) in {card['seconds']['total']:.0f} s -> {path}")
    for row in card["zero_shot"]:
        print(f"  {row['task']:12s} zero-shot {100 * row['zero_shot_accuracy']:5.1f}%  "
              f"(chance {100 * row['chance']:.1f}%)")
    return 0


# ---------------------------------------------------------------------------------------------------- data
def _add_data(sub) -> None:
    p = sub.add_parser("data", help="dataset utilities")
    dsub = p.add_subparsers(dest="data_command", required=True)
    c = dsub.add_parser("check", help="report, for each benchmark under ROOT, found/missing, counts and problems")
    c.add_argument("--root", required=True)
    c.add_argument("--datasets", default=None, help="comma-separated subset")
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
    return 0


# ---------------------------------------------------------------------------------------------------- findings
def _add_findings(sub) -> None:
    p = sub.add_parser("findings", help="the notebooks' verdicts as Markdown (and the README's findings section)")
    p.add_argument("--figures", default="figures/embedded", help="a profile's figures folder")
    p.add_argument("--out", default=None, help="Markdown file (default: FIGURES/FINDINGS.md)")
    p.add_argument("--readme", default=None, help="also replace this README's findings block")
    p.set_defaults(func=lambda a: __import__("adaptlib.study.findings", fromlist=["main_findings"]).main_findings(
        a.figures, a.out or str(Path(a.figures) / "FINDINGS.md"), a.readme))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adaptlib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run(sub)
    _add_params(sub)
    _add_pretrain(sub)
    _add_data(sub)
    _add_findings(sub)
    register_sweep(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (KeyError, ValueError, FileNotFoundError, RuntimeError, OSError, ArithmeticError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
