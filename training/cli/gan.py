"""`rnagan train-gan` and `rnagan generate`."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from training.cli import options
from training.cli.presets import (
    VAE_LATENT_DIM,
    Option,
    add_preset_options,
    apply_overrides,
    build_config,
    overrides_from_args,
)
from training.cli.rnagan import CommandError
from training.utils.constants import IMAGE_SIZES

# Library modules are imported inside the commands: `rnagan --help` imports every command module, and
# the library pulls in numpy and torch (start-up time).

# Dotted GANTrainConfig fields → values; single options override them (training.cli.presets); the
# loss, optimiser and schedule are not in any preset: every arm and size trains the same way.
GAN_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "model.input_dim": 2048,
        "model.image_size": 256,
        "model.g_width": 64,
        "model.g_max_width": 2048,
        "model.d_width": 64,
        "model.d_max_width": 2048,
        "epochs": 40,
        "batch_size": 64,
        "tiles_per_slide": 600,
    },
    "small": {
        "model.input_dim": VAE_LATENT_DIM["small"],
        "model.image_size": 128,
        "model.g_width": 32,
        "model.g_max_width": 1024,
        "model.d_width": 32,
        "model.d_max_width": 1024,
        "epochs": 30,
        "batch_size": 128,
        "tiles_per_slide": 600,
    },
    "tiny": {
        "model.input_dim": VAE_LATENT_DIM["tiny"],
        "model.image_size": 64,
        "model.g_width": 8,
        "model.g_max_width": 64,
        "model.d_width": 8,
        "model.d_max_width": 64,
        "epochs": 2,
        "batch_size": 16,
        "tiles_per_slide": 32,
        # The paper's rates (G 1e-3, D 4e-3) diverged late in every arm at this size (issue #13); these raised
        # no divergence alarm in the 1,000-step pilot; the 30-minute benchmark (bench/eval_conditioning.py) decides.
        "optim.lr_g": 2.5e-4,
        "optim.lr_d": 1e-3,
    },
}

OPTIONS = (
    Option("epochs", "--epochs", options.COUNT, "training epochs (may be raised on --resume)", "N"),
    Option("batch_size", "--batch-size", options.COUNT, "tiles per step and per process", "N"),
    Option("wgan.n_critic", "--n-critic", options.COUNT, "critic updates per generator update (default 1)", "N"),
    Option("optim.lr_g", "--lr-g", options.POSITIVE, "generator Adam learning rate (default 1e-3)", "LR"),
    Option("optim.lr_d", "--lr-d", options.POSITIVE, "critic Adam learning rate (default 4e-3)", "LR"),
    Option("model.image_size", "--image-size", options.COUNT, "tile size in pixels", "PX", IMAGE_SIZES),
    Option(
        "model.input_dim", "--input-dim", options.COUNT, "generator input size (rna: always the VAE's latent size)", "D"
    ),
    Option("tiles_per_slide", "--tiles-per-slide", options.COUNT, "at most this many tiles of each slide", "N"),
    Option("model.noise_dim", "--noise-dim", options.COUNT_OR_ZERO,
           "rna-proj: standard-normal noise values concatenated after the latent (0: the paper's narrow "
           "additive noise; default: as many as the latent has)", "N"),
    Option("wgan.aux_weight", "--aux-weight", options.real(0), "rna-proj: critic's latent regression weight", "W"),
    Option("wgan.diversity_weight", "--diversity-weight", options.real(0), "mode-seeking term weight (default 0)", "W"),
    Option("seed", "--seed", options.SEED, "seed of the initialisation, data order and every random draw", "N"),
    Option(
        "checkpoint_every",
        "--checkpoint-every",
        options.COUNT_OR_ZERO,
        "also checkpoint every K steps (0: per epoch only)",
        "K",
    ),
    Option(
        "optim.ema_decay",
        "--ema-decay",
        options.FRACTION,
        "decay of the generator's weight average (default 0.999)",
        "B",
    ),
    Option(
        "split",
        "--split",
        str,
        "with --expression: train on this split's slides (default train)",
        None,
        ("train", "val", "test", "all"),
    ),
)
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, KeyError)


def _abs(path: str | None) -> str | None:
    return str(Path(path).resolve()) if path else None


def build_train_config(args: argparse.Namespace):
    """The run's GANTrainConfig: preset → options; on --resume, the saved config (options must agree)."""
    from training.loops.gan_checkpoint import RESUMABLE_CHANGES, config_differences
    from training.loops.gan_config import GANTrainConfig
    from training.utils.runs import config_to_dict, load_config

    overrides = overrides_from_args(args, OPTIONS)
    given = {
        "tiles": _abs(args.tiles),
        "tissue": args.tissue,
        "conditioning": args.conditioning,
        "vae_run": _abs(args.vae),
        "expression_dir": _abs(args.expression),
    }
    given = {k: v for k, v in given.items() if v is not None}
    saved_path = Path(args.out) / "config.json"
    if args.resume and saved_path.exists():
        saved = load_config(GANTrainConfig, saved_path)
        wanted = apply_overrides(saved, {**given, **overrides}, source="command line")
        differences = config_differences(config_to_dict(saved), config_to_dict(wanted), where="in the run")
        if differences:
            raise CommandError(
                f"{saved_path}: --resume with other settings than the run's: " + "; ".join(differences[:5])
            )
        return apply_overrides(saved, {k: v for k, v in overrides.items() if k in RESUMABLE_CHANGES})

    missing = [
        flag
        for flag, key in (("--tiles", "tiles"), ("--tissue", "tissue"), ("--conditioning", "conditioning"))
        if key not in given
    ]
    if missing:
        raise CommandError(
            f"{', '.join(missing)} required (only --resume of an existing run can leave them out)"
        )
    if args.conditioning in ("rna", "rna-proj"):
        if "vae_run" not in given or "expression_dir" not in given:
            raise CommandError(
                f"RNA-GAN (--conditioning {args.conditioning}) needs a trained VAE (--vae RUN) and the prepared "
                "expression folder it was trained on (--expression FOLDER)"
            )
        latent_dim = _vae_latent_dim(Path(given["vae_run"]))
        noise_dim = overrides.get("model.noise_dim", latent_dim if args.conditioning == "rna-proj" else 0)
        if args.conditioning == "rna" and noise_dim:
            raise CommandError("--noise-dim is for --conditioning rna-proj; rna adds the paper's narrow noise")
        if overrides.get("model.input_dim", latent_dim + noise_dim) != latent_dim + noise_dim:
            raise CommandError(
                f"--input-dim {overrides['model.input_dim']} differs from the VAE's latent size {latent_dim}"
                + (f" + --noise-dim {noise_dim}" if noise_dim else "")
            )
        overrides["model.input_dim"] = latent_dim + noise_dim
        if args.conditioning == "rna-proj":
            overrides["model.noise_dim"] = noise_dim
            overrides["model.cond_dim"] = latent_dim
            overrides["model.aux_head"] = overrides.get("wgan.aux_weight", 0.0) > 0
    elif "vae_run" in given:
        raise CommandError(f"--vae is only used by the RNA arms (this is --conditioning {args.conditioning})")
    if args.conditioning != "rna-proj" and ("model.noise_dim" in overrides or "wgan.aux_weight" in overrides):
        raise CommandError("--noise-dim and --aux-weight are options of --conditioning rna-proj")
    split = overrides.get("split", "train")
    if split != "all" and "expression_dir" not in given:
        raise CommandError(
            f"--split {split} needs --expression FOLDER (its splits.csv names the slides), for every arm alike, "
            "so GAN, RNA-GAN and the ablation train on the same slides; --split all trains on every slide"
        )
    for key in ("tiles", "expression_dir"):
        if key in given and not Path(given[key]).exists():
            raise CommandError(f"{given[key]}: not found")
    base = GANTrainConfig(preset=args.preset, **given)
    return build_config(base, GAN_PRESETS, args.preset, overrides)


def _vae_latent_dim(vae_run: Path) -> int:
    from training.utils.io import read_json

    try:
        return int(read_json(vae_run / "config.json")["model"]["latent_dim"])
    except (FileNotFoundError, KeyError, TypeError) as exc:
        raise CommandError(
            f"{vae_run}: not a VAE run folder (config.json with model.latent_dim: {exc})"
        ) from None


def run_train(args: argparse.Namespace) -> int:
    from training.loops.gan_config import Runtime
    from training.loops.train_gan import train_gan
    from training.utils.checkpoints import CheckpointError
    from training.utils.runs import ConfigError, config_to_dict

    try:
        config = build_train_config(args)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    if args.dry_run:
        print(json.dumps(config_to_dict(config), indent=2))
        return 0
    runtime = Runtime(
        device=args.device,
        workers=args.workers,
        compile=args.compile,
        progress=not args.no_progress,
        max_steps=args.max_steps,
        max_seconds=None if args.max_minutes is None else args.max_minutes * 60,
    )
    try:
        run = train_gan(config, args.out, runtime, resume=args.resume)
        rank = 0
        if torch_distributed_initialized():
            import torch.distributed as dist

            rank = dist.get_rank()
            dist.destroy_process_group()
    except (*USER_ERRORS, CheckpointError, ConfigError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and "CUDA" not in str(exc):
            raise
        raise CommandError(str(exc).strip("'\"")) from None
    if rank == 0:
        print(f"wrote {run}: generator_ema.safetensors, checkpoints/, losses.csv, samples/")
    return 0


def torch_distributed_initialized() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def read_expression_file(path: Path, row: int, genes: list[str]) -> tuple:
    """(expression in the VAE's gene order, sample label) from a .npy matrix or a prepared folder."""
    import numpy as np

    if path.is_dir():
        from training.data.expression import load_prepared
        from training.networks.vae import gene_order

        prepared = load_prepared(path, mmap=True)
        if not 0 <= row < len(prepared.samples):
            raise CommandError(f"{path}: row {row} is outside 0..{len(prepared.samples) - 1}")
        order = gene_order(prepared.genes, genes, source=str(path))
        return np.asarray(prepared.matrix[row], dtype=np.float32)[order], str(
            prepared.samples["sample_id"].iloc[row]
        )
    try:
        matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CommandError(f"{path}: not a .npy matrix or a prepared expression folder ({exc})") from None
    if matrix.ndim != 2 or matrix.shape[1] != len(genes):
        raise CommandError(
            f"{path}: expected rows × {len(genes)} genes (the VAE's, in its order), got {matrix.shape}"
        )
    if not 0 <= row < matrix.shape[0]:
        raise CommandError(f"{path}: row {row} is outside 0..{matrix.shape[0] - 1}")
    return np.asarray(matrix[row], dtype=np.float32), f"{path.name}:{row}"


def run_generate(args: argparse.Namespace) -> int:
    import numpy as np

    from training.inference.generate import generate, load_generator
    from training.utils.checkpoints import CheckpointError
    from training.utils.device import pick_device
    from training.utils.images import save_png
    from training.utils.io import atomic_folder, refuse_existing_output

    # Before any work: an --out that holds something is not written over, a GPU asked for must be there.
    refuse_existing_output(Path(args.out))
    pick_device(args.device or "auto")
    try:
        gen = load_generator(args.run, device=args.device)
    except (FileNotFoundError, ValueError, CheckpointError) as exc:
        raise CommandError(str(exc)) from None
    chosen = [args.sample is not None, args.random_sample, args.expression_file is not None]
    if args.expression_file is not None and args.row is None:
        raise CommandError("--expression-file needs --row R")
    if gen.kind != "rnagan" and any(chosen):
        raise CommandError(
            f"{args.run} is a {gen.kind} run: --sample/--random-sample/--expression-file are for RNA-GAN"
        )
    if gen.kind == "rnagan" and sum(chosen) != 1:
        raise CommandError(
            "an RNA-GAN run needs one of --sample SAMPID, --random-sample, --expression-file F --row R"
        )
    seeds = [args.seed + k for k in range(args.n)]
    try:
        if gen.kind != "rnagan":
            labels, tiles = [""] * args.n, generate(gen, args.n, seeds=seeds, batch_size=args.batch_size)
        elif args.random_sample:
            labels = gen.random_sample_ids(args.n, args.seed)
            expression = np.stack([gen.expression_for_sample(s) for s in labels]) if args.n else None
            tiles = generate(gen, args.n, expression, seeds=seeds, batch_size=args.batch_size)
        else:
            if args.sample is not None:
                expression, label = gen.expression_for_sample(args.sample), args.sample
            else:
                expression, label = read_expression_file(Path(args.expression_file), args.row, gen.vae.genes)
            labels = [label] * args.n
            tiles = generate(gen, args.n, expression, seeds=seeds, batch_size=args.batch_size)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        raise CommandError(str(exc).strip("'\"")) from None
    out = Path(args.out)
    rows = []
    with atomic_folder(out) as folder:  # a run killed midway leaves no --out, not a partial one
        for k, (tile, seed, label) in enumerate(zip(tiles, seeds, labels, strict=True)):
            name = f"tile-{k:05d}.png"
            save_png(tile, folder / name)
            rows.append((name, seed, label))
        with open(folder / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(("file", "seed", "sample"))
            writer.writerows(rows)
    print(f"wrote {len(rows)} {gen.image_size}×{gen.image_size} tiles and manifest.csv to {out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train-gan",
        help="train a GAN, RNA-GAN or noise-only generator with WGAN-GP on an LMDB of tiles",
        description=(
            "Train one tissue's generator. --conditioning none: GAN from z ~ N(0, I); rna: RNA-GAN from "
            "the VAE mean of the tile's own sample + uniform noise in [-0.3, 0.3]; noise: that noise alone "
            "(the paper's ablation); rna-proj: the VAE mean + concatenated noise, and a critic that sees the latent too "
            "(projection critic, optional auxiliary latent regression), so tiles are rewarded for following "
            "their sample. All arms share loss, optimiser, schedule and training slides. Writes config.json, "
            "checkpoints/, generator_ema.safetensors, losses.csv and samples/ into --out. Several GPUs: "
            "torchrun --standalone --nproc_per_node N -m training.cli train-gan ..."
        ),
    )
    train.add_argument("--tiles", help="tile store (LMDB folder from rnagan tile-slides)")
    train.add_argument("--tissue", help="tissue to train on")
    train.add_argument("--conditioning", choices=("none", "rna", "noise", "rna-proj"),
                       help="generator input (see above)")
    train.add_argument("--vae", help="trained VAE run folder (rna, rna-proj)")
    train.add_argument(
        "--expression",
        help="prepared expression folder the VAE was trained on; every arm needs it to train on the "
        "training split's slides (unless --split all)",
    )
    train.add_argument("--out", required=True, help="run folder to create (or to continue with --resume)")
    train.add_argument("--resume", action="store_true",
                       help="continue from the run's latest checkpoint exactly (starts the run if it has none)")
    add_preset_options(train, GAN_PRESETS, OPTIONS)
    train.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    train.add_argument(
        "--workers", type=options.WORKERS, default=None, help="data loader processes (default 8 on CUDA, 0 on CPU)"
    )
    train.add_argument("--compile", choices=("auto", "on", "off"), default="auto",
                       help="torch.compile the generator forward (auto: on CUDA)")
    train.add_argument(
        "--max-steps", type=options.COUNT, default=None, help="stop (with a checkpoint) after this many steps"
    )
    train.add_argument("--max-minutes", type=options.POSITIVE, default=None,
                       help="stop (with a checkpoint) after this many minutes of training (equal budgets per arm)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--dry-run", action="store_true", help="print the config that would be used and stop")
    train.set_defaults(func=run_train)

    gen = subparsers.add_parser(
        "generate",
        help="draw tiles from a trained GAN / RNA-GAN run as PNGs (plus manifest.csv)",
        description="Tile k uses seed --seed + k; an RNA-GAN run also needs the expression to draw from.",
    )
    gen.add_argument("--run", required=True, help="GAN / RNA-GAN run folder")
    gen.add_argument("--n", type=options.COUNT, required=True, help="number of tiles")
    which = gen.add_mutually_exclusive_group()
    which.add_argument(
        "--sample", help="RNA-GAN: expression of this sample ID (from the run's prepared folder)"
    )
    which.add_argument(
        "--random-sample", action="store_true", help="RNA-GAN: each tile from a random sample of the tissue"
    )
    which.add_argument(
        "--expression-file", help="RNA-GAN: a .npy matrix (z-scores, VAE gene order) or a prepared folder"
    )
    gen.add_argument("--row", type=options.COUNT_OR_ZERO, help="row of --expression-file")
    gen.add_argument("--seed", type=options.SEED, default=0, help="seed of the first tile (default 0)")
    gen.add_argument("--batch-size", type=options.COUNT, default=256, help="tiles per forward pass (default 256)")
    gen.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default auto)")
    gen.add_argument("--out", required=True, help="folder for the PNGs and manifest.csv")
    gen.set_defaults(func=run_generate)
