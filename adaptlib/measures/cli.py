"""``adaptlib measures --profile P --results DIR`` (and ``python -m adaptlib.measures``): the measures stage from
the command line. Nothing heavy is imported until the command runs, so ``adaptlib --help`` stays fast."""

from __future__ import annotations

import argparse
import os
import sys


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--profile", required=True, help="profile file or name (smoke, embedded, paper)")
    p.add_argument("--results", required=True, help="results folder holding results.csv (adaptlib results)")
    p.add_argument("--data-root", default=os.environ.get("ADAPTLIB_DATA_ROOT") or None,
                   help="folder of the real benchmarks (paper profile)")
    p.add_argument("--device", default="cpu",
                   help="device of the frozen backbone for the task measures (default cpu, as the study's numbers; "
                        "cuda encodes under bf16 autocast, so its numbers differ slightly); drift and CKA run on cpu")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def run(args) -> int:
    from .stage import measure

    out = measure(args.profile, args.results, args.data_root or None, args.device, progress=not args.quiet)
    rows = ", ".join(f"{name} {n}" for name, n in out["manifest"]["tables"].items())
    print(f"measures -> {out['folder']} ({'written' if out['changed'] else 'unchanged'}): {rows}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from .stage import __doc__ as doc

    parser = add_arguments(argparse.ArgumentParser(prog="python -m adaptlib.measures", description=doc,
                                                   formatter_class=argparse.RawDescriptionHelpFormatter))
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (KeyError, ValueError, FileNotFoundError, RuntimeError, OSError) as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) and err.args else err}", file=sys.stderr)
        return 2
