"""`rnagan prepare-expression` and `rnagan align-expression`."""

from __future__ import annotations

import argparse
from pathlib import Path

from training.cli import options
from training.cli.rnagan import CommandError
from training.utils.constants import DEFAULT_SD_FLOOR

# Library modules are imported inside the commands: `rnagan --help` imports every command module.


def user_errors() -> tuple[type[Exception], ...]:
    """Errors that describe bad input (printed as `rnagan COMMAND: error: ...`), not bugs."""
    from training.data.gct import GctFormatError
    from training.data.genes import ExpressionError

    return (FileNotFoundError, GctFormatError, ExpressionError)


def run_prepare(args: argparse.Namespace) -> int:
    from training.data.expression import PrepareConfig, prepare_expression

    config = PrepareConfig(
        gct=args.gct,
        attributes=args.attributes,
        tissues=tuple(args.tissues),
        genes=args.genes,
        out=args.out,
        seed=args.seed,
        split=tuple(args.split),
        force=args.force,
        overwrite=args.overwrite,
        sd_floor=args.sd_floor,
        duplicate_genes=args.duplicate_genes,
    )
    try:
        report = prepare_expression(config, log=print)
    except user_errors() as exc:
        raise CommandError(str(exc)) from None
    genes = report["genes"]
    print(
        f"genes: {genes['matched']} of {genes['listed']} listed matched "
        f"({genes['matched_exact']} exactly, {genes['matched_without_version']['count']} without version), "
        f"{genes['missing']['count']} missing"
    )
    for tissue, counts in report["samples"]["by_tissue"].items():
        print(f"  {tissue}: train {counts['train']}, val {counts['val']}, test {counts['test']}")
    return 0


def run_align(args: argparse.Namespace) -> int:
    from training.data.align import (
        align_expression,
        coverage_path,
        read_table,
        symbols_from_gct,
        write_aligned,
    )
    from training.data.expression import load_prepared
    from training.data.genes import ExpressionError
    from training.data.scaler import load_scaler

    try:
        if args.prepared:
            scaler = load_prepared(args.prepared, mmap=True).scaler
        else:
            try:
                scaler = load_scaler(args.scaler)
            except ValueError as exc:  # not a readable or valid scaler.npz
                raise ExpressionError(str(exc)) from None
        symbols = symbols_from_gct(args.gct) if args.gct else None
        table = read_table(args.table)
        aligned = align_expression(
            table, scaler, orientation=args.orientation, symbols=symbols, source=str(args.table)
        )
        write_aligned(aligned, args.out)
    except user_errors() as exc:
        raise CommandError(str(exc)) from None
    cov = aligned.coverage
    how = cov["matched"]
    print(
        f"aligned {cov['samples']} samples ({cov['orientation']}): "
        f"{cov['found']} of {cov['genes']} genes found ({cov['fraction_found']:.1%}; "
        f"{how['exact']} by ID, {how['without_version']} without version, "
        f"{how['symbol']} by symbol); {cov['missing']['count']} set to the training mean"
    )
    print(f"wrote {args.out} and {coverage_path(args.out)}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    prepare = subparsers.add_parser(
        "prepare-expression",
        help="GTEx GCT + sample attributes → z-scored expression matrix with stratified splits",
        description=(
            "Stream a GCT 1.2 of TPM values (plain or .gz), keep the samples of the given tissues "
            "(SMTSD names) and the listed genes, transform log1p, z-score with training-split statistics "
            "and write matrix.npy, splits.csv, genes.txt, scaler.npz and report.json into --out (atomically)."
        ),
    )
    prepare.add_argument("--gct", type=Path, required=True, help="gene TPM matrix, GCT 1.2 (plain or .gz)")
    prepare.add_argument(
        "--attributes",
        type=Path,
        required=True,
        help="GTEx sample attributes (tab-separated, SAMPID and SMTSD)",
    )
    prepare.add_argument(
        "--tissues",
        nargs="+",
        required=True,
        metavar="TISSUE",
        help="SMTSD names, e.g. Lung 'Brain - Cortex'",
    )
    prepare.add_argument(
        "--genes", type=Path, required=True, help="gene list: CSV with a Gene column, or one ID a line"
    )
    prepare.add_argument("--out", type=Path, required=True, help="output folder (must not exist or be empty)")
    prepare.add_argument("--seed", type=options.SEED, default=0, help="seed of the split (default 0)")
    prepare.add_argument(
        "--split",
        type=options.FRACTION,
        nargs=3,
        default=[0.6, 0.2, 0.2],
        metavar=("TRAIN", "VAL", "TEST"),
        help="split fractions per tissue (default 0.6 0.2 0.2)",
    )
    prepare.add_argument(
        "--force",
        action="store_true",
        help="accept a gene list of which < 90%% is in the GCT (missing genes get the training mean)",
    )
    prepare.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    prepare.add_argument(
        "--sd-floor",
        type=options.POSITIVE,
        default=DEFAULT_SD_FLOOR,
        help=f"smallest sd of log1p values used to scale (default {DEFAULT_SD_FLOOR})",
    )
    prepare.add_argument(
        "--duplicate-genes",
        choices=("error", "sum"),
        default="error",
        help="a listed gene on several GCT rows: refuse, naming the lines (default), or add the rows' TPMs "
        "(a gene's TPM is the sum over its pieces); the rule and the merged lines go into report.json",
    )
    prepare.set_defaults(func=run_prepare)

    align = subparsers.add_parser(
        "align-expression",
        help="normalise an external cohort's TPM table with a saved scaler, in the prepared gene order",
        description=(
            "Read a cohort table (CSV, TSV, Parquet or GCT; genes as rows or columns; Ensembl IDs with or "
            "without version, or gene symbols with --gct), apply log1p and the training mean/sd, set genes "
            "the cohort lacks to the training mean (0), and write samples × genes plus <out>.coverage.json."
        ),
    )
    align.add_argument("--table", type=Path, required=True, help="cohort TPM table")
    source = align.add_mutually_exclusive_group(required=True)
    source.add_argument("--prepared", type=Path, help="prepared expression folder (its scaler.npz)")
    source.add_argument("--scaler", type=Path, help="scaler.npz, or a folder holding one (e.g. a VAE run)")
    align.add_argument(
        "--out", type=Path, required=True, help="output table: .parquet, .csv or .tsv (.gz allowed)"
    )
    align.add_argument("--gct", type=Path, help="GCT whose Name/Description columns map gene symbols to IDs")
    align.add_argument("--orientation", choices=("auto", "genes-rows", "genes-columns"), default="auto")
    align.set_defaults(func=run_align)
