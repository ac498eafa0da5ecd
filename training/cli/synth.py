"""`rnagan synth-cohort`: write a synthetic paired cohort (expression, attributes, slides, ground truth)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from training.cli import options
from training.cli.rnagan import CommandError
from training.synthetic.paths import DEFAULT_GENE_LIST, DEFAULT_TISSUES

# Library modules are imported inside the commands: `rnagan --help` imports every command module, and
# the library pulls in numpy and torch (start-up time).

DESCRIPTION = """\
Write a synthetic cohort in GTEx's formats into OUT: expression.gct.gz (GCT 1.2, TPM-like, real gene IDs),
sample_attributes.txt (SAMPID, SMTS, SMTSD), slides/<tissue sample ID>.tiff (pyramidal, 20x, 0.5 um/px),
and the ground truth: programs.csv (the morphology programs of each sample) and gene_modules.csv (the genes
each program and each tissue moves). Same seed and options, same files. Tissues are GTEx SMTSD names:
Lung, Brain - Cortex, Liver, Pancreas and Stomach have their own look; others are drawn generically.
"""


def run(args: argparse.Namespace) -> int:
    from training.synthetic.cohort import write_cohort
    from training.synthetic.design import CohortConfig

    config = CohortConfig(
        samples_per_tissue=args.samples_per_tissue,
        tissues=tuple(args.tissues),
        genes=args.genes,
        gene_list=Path(args.gene_list),
        slide_size=args.slide_size,
        seed=args.seed,
    )
    try:
        config.validate()
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    total = config.samples_per_tissue * len(config.tissues)
    print(f"synth-cohort: {total} samples ({config.samples_per_tissue} × {', '.join(config.tissues)}), "
          f"{config.slide_size}² slides, seed {config.seed} → {args.out}", flush=True)
    log = (lambda message: print(f"  {message}", flush=True)) if args.verbose else None
    try:
        summary = write_cohort(args.out, config, workers=args.workers, overwrite=args.overwrite, log=log)
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    seconds = summary.seconds
    print(f"wrote {summary.samples} samples × {summary.genes} genes and {summary.samples} slides to {summary.path} "
          f"in {seconds['total']:.1f} s ({summary.workers} worker{'s' if summary.workers > 1 else ''}; "
          f"{seconds['total'] / summary.samples:.2f} s a sample)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth-cohort", help="write a synthetic GTEx-format cohort with slides and known ground truth",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="output folder (must not hold a cohort unless --overwrite)")
    parser.add_argument("--samples-per-tissue", type=options.COUNT, default=20, metavar="N", help="samples a tissue (default 20)")
    parser.add_argument("--tissues", nargs="+", default=list(DEFAULT_TISSUES), metavar="SMTSD",
                        help="GTEx SMTSD tissue names; quote names with spaces (default: Lung 'Brain - Cortex')")
    parser.add_argument("--genes", type=options.COUNT, default=None, metavar="N",
                        help="keep only the first N genes of the gene list (default: all)")
    parser.add_argument("--gene-list", default=str(DEFAULT_GENE_LIST), metavar="PATH",
                        help="protein-coding gene list, header 'Gene', rows 'rna_<Ensembl ID>' "
                             "(default: ../shared/data/protein_coding_genes.csv beside the repository)")
    parser.add_argument("--slide-size", type=options.COUNT, default=2048, metavar="PX", help="slide width and height (default 2048)")
    parser.add_argument("--seed", type=options.SEED, default=0, help="random seed (default 0)")
    parser.add_argument("--workers", type=options.COUNT, default=os.cpu_count() or 1,
                        help="processes that render slides (default: the number of CPUs)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing complete cohort in --out")
    parser.add_argument("--verbose", action="store_true", help="print each slide as it is written")
    parser.set_defaults(func=run)
