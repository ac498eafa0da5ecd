"""`rnagan train-vae`, `vae-sample`, `vae-shift` and `encode`: the β-VAE and its latent space."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.cli import options
from training.cli.presets import (
    VAE_PRESETS,
    Option,
    add_preset_options,
    build_config,
    int_tuple,
    overrides_from_args,
)
from training.cli.rnagan import CommandError

TRAIN_OPTIONS = (
    Option("epochs", "--epochs", options.COUNT, "most epochs to train (early stopping may end sooner)", "N"),
    Option("batch_size", "--batch-size", options.COUNT, "samples a step", "N"),
    Option("lr", "--lr", options.POSITIVE, "peak Adam learning rate (after warm-up)", "LR"),
    Option("beta", "--beta", options.real(0), "weight of the KL term (paper 0.005)", "B"),
    Option("model.latent_dim", "--latent-dim", options.COUNT, "latent size (the GAN's input size)", "N"),
    Option("model.hidden", "--hidden", int_tuple, "encoder hidden sizes, comma-separated; decoder mirrors", "H1,H2"),
    Option("model.input_dropout", "--input-dropout", options.real(0, 0.99), "dropout on the input genes (default 0)", "P"),
    Option("warmup_epochs", "--warmup-epochs", options.real(0), "linear warm-up length in epochs (applied per step)", "E"),
    Option("patience", "--patience", options.COUNT_OR_ZERO, "early stopping: epochs without validation improvement", "N"),
    Option("device", "--device", str, "auto (CUDA when visible), cpu or cuda", None, ("auto", "cpu", "cuda")),
    Option("seed", "--seed", options.SEED, "random seed (default 0)", "S"),
    Option("embedding", "--embedding", str, "figure of real/reconstructed/generated (default umap)", None,
           ("umap", "pca", "none")),
)

# Library modules are imported inside the commands: `rnagan --help` imports every command module, and
# the library pulls in numpy and torch (start-up time).


def _vae_errors():
    from training.data.genes import ExpressionError
    from training.networks.vae import VAEError
    from training.utils.runs import ConfigError

    return (VAEError, ConfigError, ExpressionError, FileNotFoundError, FileExistsError, FloatingPointError)


def _check_device(name: str) -> None:
    import torch

    if name.startswith("cuda") and not torch.cuda.is_available():
        raise _fail(ValueError(f"--device {name} was asked for, but no CUDA device is visible"))


def _fail(exc: Exception):
    message = exc.args[0] if isinstance(exc, KeyError | FileNotFoundError) and exc.args else str(exc)
    return CommandError(message)


def run_train(args: argparse.Namespace) -> int:
    from training.loops.train_vae import TrainVAEConfig, train_vae
    from training.utils.runs import config_to_dict

    try:
        config = build_config(TrainVAEConfig(data=args.data), VAE_PRESETS, args.preset,
                              overrides_from_args(args, TRAIN_OPTIONS))
        config.preset = args.preset
        config.validate()
        _check_device(config.device)
        if args.dry_run:
            print(json.dumps(config_to_dict(config), indent=2))
            return 0
        train_vae(config, args.out, log=lambda line: print(line, flush=True))
    except _vae_errors() as exc:
        raise _fail(exc) from None
    return 0


def _load(args: argparse.Namespace):
    from training.networks.vae import load_vae

    _check_device(args.device)
    return load_vae(args.run, device=None if args.device == "auto" else args.device)


def _write(path: Path, frame, what: str) -> None:
    from training.inference.latent import write_table

    write_table(path, frame)
    print(f"wrote {path}: {len(frame)} {what}", flush=True)


def run_sample(args: argparse.Namespace) -> int:
    from training.inference.latent import sample_frame

    try:
        vae = _load(args)
        frame = sample_frame(vae, args.tissue, args.n, seed=args.seed, scale=args.scale, units=args.units)
        _write(args.out, frame, f"synthetic {vae.tissue(args.tissue)} samples × {len(vae.genes)} genes")
    except _vae_errors() as exc:
        raise _fail(exc) from None
    return 0


def _source(args: argparse.Namespace, vae, tissue: str | None = None):
    from training.inference.latent import expression_from_prepared, expression_from_table

    if args.table is not None:
        return expression_from_table(vae, args.table, tissue=tissue)
    split = None if args.split == "all" else args.split
    return expression_from_prepared(vae, args.data, split=split, tissue=tissue)


def run_shift(args: argparse.Namespace) -> int:
    from training.inference.latent import shift_frame

    try:
        vae = _load(args)
        source_tissue, target_tissue = vae.tissue(args.from_tissue), vae.tissue(args.to_tissue)
        source = _source(args, vae, tissue=source_tissue)
        frame = shift_frame(vae, source, source_tissue, target_tissue, units=args.units)
        _write(args.out, frame, f"samples shifted {source_tissue} → {target_tissue}")
    except _vae_errors() as exc:
        raise _fail(exc) from None
    return 0


def run_encode(args: argparse.Namespace) -> int:
    from training.inference.latent import encode_frame

    try:
        vae = _load(args)
        frame = encode_frame(vae, _source(args, vae))
        _write(args.out, frame, f"samples × {vae.latent_dim} latent dimensions (μ)")
    except _vae_errors() as exc:
        raise _fail(exc) from None
    return 0


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=Path, required=True, help="a train-vae run folder")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default auto")


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="a prepare-expression folder (genes must match the VAE's)")
    source.add_argument("--table", type=Path,
                        help="Parquet/CSV: sample_id column and one z-score column a gene (the VAE's genes)")
    parser.add_argument("--split", choices=("all", "train", "val", "test"), default="all",
                        help="with --data: which split's samples (default all)")


def _add_units(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--units", choices=("zscore", "log1p", "tpm"), default="zscore",
                        help="output values: z-scores (default, what the GAN reads), log1p(TPM) or TPM, "
                             "using the scaler the VAE was trained with")


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train-vae",
        help="train the β-VAE on a prepared expression folder",
        description="Train the β-VAE (MSE + β·KL, warm-up + cosine LR, early stopping on validation loss). "
        "Writes weights, config, metrics (test RMSE and MAE %), loss curves, a UMAP figure and tissue centroids.",
    )
    train.add_argument("--data", type=Path, required=True, help="a prepare-expression output folder")
    train.add_argument("--out", type=Path, required=True, help="run folder to create (must be new or empty)")
    add_preset_options(train, VAE_PRESETS, TRAIN_OPTIONS, default="paper")
    train.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    train.set_defaults(func=run_train)

    sample = subparsers.add_parser(
        "vae-sample", help="synthetic expression for a tissue: decode(centroid + N(0, I))",
        description="Draw synthetic expression for a tissue from a trained VAE: decode(centroid + scale·ε).",
    )
    _add_run_options(sample)
    sample.add_argument("--tissue", required=True, help="a tissue the VAE was trained on")
    sample.add_argument("--n", type=options.COUNT, required=True, help="how many samples")
    sample.add_argument("--out", type=Path, required=True, help="output table (.parquet or .csv)")
    sample.add_argument("--seed", type=options.SEED, default=0, help="default 0")
    sample.add_argument("--scale", type=options.real(0), default=1.0, help="noise scale around the centroid (default 1)")
    _add_units(sample)
    sample.set_defaults(func=run_sample)

    shift = subparsers.add_parser(
        "vae-shift", help="move samples of one tissue toward another in latent space",
        description="Encode samples of tissue A, add centroid(B) − centroid(A), decode. With --table, rows "
        "whose 'tissue' column names another tissue are skipped (no such column: all rows are used).",
    )
    _add_run_options(shift)
    _add_source_options(shift)
    shift.add_argument("--from", dest="from_tissue", required=True, help="tissue of the input samples")
    shift.add_argument("--to", dest="to_tissue", required=True, help="tissue to move them toward")
    shift.add_argument("--out", type=Path, required=True, help="output table (.parquet or .csv)")
    _add_units(shift)
    shift.set_defaults(func=run_shift)

    encode = subparsers.add_parser(
        "encode", help="latent μ of an expression table or prepared folder",
        description="Write the VAE's latent mean μ of every sample (columns z0…) with its sample ID.",
    )
    _add_run_options(encode)
    _add_source_options(encode)
    encode.add_argument("--out", type=Path, required=True, help="output table (.parquet or .csv)")
    encode.set_defaults(func=run_encode)
