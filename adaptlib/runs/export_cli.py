"""``adaptlib export RESULT --out DIR`` and ``adaptlib predict DIR --images PATH``: the command-line side of
exporting a run's adapted model and classifying images with it.

The commands import torch and the models when they run, so that ``adaptlib --help`` stays light.
"""

from __future__ import annotations


def register(sub) -> None:
    """Add the ``export`` and ``predict`` subcommands to ``adaptlib``'s subparsers."""
    p = sub.add_parser("export", help="write the adapted model of a run that kept its state to a folder",
                       description="Write the adapted model of a run that kept its state (adaptlib run --save-state, "
                                   "or save_state: true in a profile) to DIR: plain open_clip weights when the "
                                   "method only changes backbone weights, else the backbone's name and tag plus "
                                   "the method's own tensors. adaptlib predict and "
                                   "adaptlib.runs.export.load_exported read both.")
    p.add_argument("result", metavar="RESULT", help="the run's result JSON file")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write (must not exist, unless --force)")
    p.add_argument("--force", action="store_true", help="replace DIR when it holds an earlier export")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="classify image files with an exported model and write a CSV")
    p.add_argument("export", metavar="DIR", help="a folder written by adaptlib export")
    p.add_argument("--images", required=True, metavar="PATH",
                   help="an image file, a folder of images (recursive) or a .txt file listing image paths")
    p.add_argument("--out", default="predictions.csv",
                   help="CSV: path, predicted, error, one p:<class> column per class (softmax of the logits); "
                        "default predictions.csv")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default 64)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available, the default), cpu, cuda, cuda:1, ...")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_predict)


def cmd_export(args) -> int:
    from .export import config_summary, export_run

    config = export_run(args.result, args.out, force=args.force)
    print(f"exported {config_summary(config)} -> {args.out}")
    print(f"classify images: adaptlib predict {args.out} --images PATH")
    return 0


def cmd_predict(args) -> int:
    from .export import open_export
    from .predict import list_images, predict_images, write_predictions
    from .run import resolve_device

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    paths = list_images(args.images)
    exported = open_export(args.export, resolve_device(args.device))
    rows = predict_images(exported, paths, args.batch_size, progress=not args.quiet)
    out = write_predictions(rows, exported.model.classnames, args.out)
    failed = sum(1 for r in rows if r.error)
    print(f"{len(rows) - failed} images classified, {failed} unreadable (see the error column) -> {out}")
    return 0
