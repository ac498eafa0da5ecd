"""`rnagan evaluate` and `rnagan report`: the evaluation suite of training.metrics from the command line.

Every path and number is checked before any model is loaded or any tile generated, so a typo fails in
a second, not after minutes of work.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from training.cli import options
from training.cli.rnagan import CommandError

USER_ERRORS = (ValueError, FileNotFoundError, KeyError)
_AT_LEAST_TWO = options.integer(2, options.COUNT_MAX)  # a variance, a fold split: one is not enough


def validate_evaluate(args: argparse.Namespace) -> None:
    for run in args.runs:
        for name in ("config.json", "generator_ema.safetensors"):
            if not (Path(run) / name).is_file():
                raise CommandError(f"--runs {run}: no {name} (not a train-gan run folder)")
    if not Path(args.tiles).is_dir():
        raise CommandError(f"--tiles {args.tiles}: no such tile store")
    if not (Path(args.expression) / "splits.csv").is_file():
        raise CommandError(f"--expression {args.expression}: not a prepared expression folder (no splits.csv)")
    if args.programs and not Path(args.programs).is_file():
        raise CommandError(f"--programs {args.programs}: no such file")
    if args.inception_weights:
        from training.metrics.features import InceptionWeightsError, load_inception

        try:  # checked here, before the long work, and loaded again inside (cheap beside the rest)
            load_inception(args.inception_weights)
        except InceptionWeightsError as exc:
            raise CommandError(str(exc)) from None


def run_evaluate(args: argparse.Namespace) -> int:
    validate_evaluate(args)
    from dataclasses import replace

    from training.metrics.evaluate import EvalConfig, evaluate

    try:
        settings = {"tiles_per_sample": args.tiles_per_sample, "split": args.split,
                    "real_per_slide": args.real_per_slide, "seed": args.seed}
        config = EvalConfig.fast(**settings) if args.fast else EvalConfig(**settings)
        if args.generated:
            config = replace(config, generated=args.generated)
        if args.folds:
            config = replace(config, detect=replace(config.detect, folds=args.folds))
        evaluate(args.runs, tiles=args.tiles, expression=args.expression, out=args.out, programs=args.programs,
                 inception_weights=args.inception_weights, config=config, progress=not args.no_progress)
    except USER_ERRORS as exc:
        raise CommandError(str(exc)) from None
    print(f"wrote {Path(args.out) / 'metrics.json'}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from training.metrics.report import write_report

    for folder in args.eval:
        if not (Path(folder) / "metrics.json").is_file():
            raise CommandError(f"--eval {folder}: no metrics.json (run `rnagan evaluate --out {folder}` first)")
    try:
        out = write_report(args.eval, args.out)
    except USER_ERRORS as exc:
        raise CommandError(str(exc)) from None
    print(f"wrote {out} and {out.with_name('metrics.json')}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    ev = subparsers.add_parser(
        "evaluate",
        help="conditioning fidelity, FD/KID/precision/recall, detectability, usefulness of GAN runs",
        description=(
            "Evaluate run folders against the real tiles of their tissue: conditioning fidelity (with "
            "--programs: per-program Pearson/Spearman r and retrieval, real tiles as the ceiling; always: "
            "sample retrieval in feature space), FD/KID/precision/recall in an in-domain encoder's features "
            "(and FID only with --inception-weights, the pytorch-fid weights file; nothing is downloaded), "
            "detectability, usefulness (runs of ≥ 2 tissues per arm), epochs to quality and a UMAP. Writes "
            "metrics.json, epochs.csv, umap.csv and the encoder into --out."
        ),
    )
    ev.add_argument("--runs", nargs="+", required=True, metavar="RUN", help="train-gan run folders")
    ev.add_argument("--tiles", required=True, help="the tile store the runs were trained from")
    ev.add_argument("--expression", required=True, help="prepared expression folder (its splits.csv)")
    ev.add_argument("--programs", help="programs.csv of a synthetic cohort (known morphology programs)")
    ev.add_argument("--inception-weights", metavar="FILE",
                    help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth, for FID")
    ev.add_argument("--out", required=True, help="output folder")
    ev.add_argument("--split", default="test", choices=("val", "test", "held_out"),
                    help="held-out samples whose real tiles the quality metrics compare against (default test)")
    ev.add_argument("--tiles-per-sample", type=_AT_LEAST_TWO, default=16, metavar="K",
                    help="generated and real tiles a sample for fidelity (default 16)")
    ev.add_argument("--generated", type=_AT_LEAST_TWO, default=None, metavar="N",
                    help="generated tiles for the quality metrics (default 1000; 300 with --fast)")
    ev.add_argument("--real-per-slide", type=_AT_LEAST_TWO, default=64, metavar="N",
                    help="real tiles read a slide (default 64)")
    ev.add_argument("--folds", type=_AT_LEAST_TWO, default=None,
                    help="detectability cross-validation folds (default 5; 3 with --fast)")
    ev.add_argument("--fast", action="store_true",
                    help="lighter encoder, detector, curve and UMAP (pilots, the demo); fidelity as in full")
    ev.add_argument("--seed", type=options.SEED, default=0)
    ev.add_argument("--no-progress", action="store_true", help="no progress bars")
    ev.set_defaults(func=run_evaluate)

    rep = subparsers.add_parser(
        "report",
        help="one self-contained HTML page comparing evaluated runs",
        description="Write --out (HTML, every figure inline, no network) and metrics.json beside it from "
        "one or more `rnagan evaluate` folders.",
    )
    rep.add_argument("--eval", nargs="+", required=True, metavar="DIR", help="rnagan evaluate output folders")
    rep.add_argument("--out", required=True, help="report.html to write (not inside an evaluate folder)")
    rep.set_defaults(func=run_report)
