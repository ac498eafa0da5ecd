"""Train a GAN (`--conditioning none`), RNA-GAN (`rna`) or the noise-only ablation (`noise`) with WGAN-GP.

Every arm uses the same loss, optimiser and schedule (training.loops.wgan); only the generator input differs
(training.loops.conditioning). Batches are drawn across all slides of the tissue in a shuffled order.

A run folder (`--out`) holds config.json (this module's GANTrainConfig), `latents.safetensors` (RNA-GAN:
the VAE means of every expression row, computed once), `checkpoints/` (step-NNNNNNNN.safetensors with
every tensor + step-NNNNNNNN.json with step, epoch, position in the data order, optimiser settings, RNG
states and the config; `latest.json` names the newest), `generator_ema.safetensors` (what sampling and
the web workers load, with BatchNorm statistics re-measured for the EMA weights), `losses.csv` and
`samples/epoch-NNNN.png` grids from fixed seeds (RNA-GAN: rows are held-out samples of the tissue).

Exact resume: the data order of epoch e is DistributedSampler's permutation for (seed, e); every random
draw of a step (augmentation, noise, penalty mixing) comes from a generator seeded by (seed, rank, step);
models, EMA and optimiser states are restored bit for bit. So 2 steps + `--resume` + 2 steps equals 4
uninterrupted steps. `--resume` on a folder without a checkpoint starts the run, so one command line
serves a preemptible job from its first start to its last restart.

CUDA: bf16 autocast (no grad scaler), channels_last, fused Adam, TF32, the generator forward compiled
(`--compile auto`); critic and gradient penalty stay eager (the double backward cannot be compiled).
Several GPUs, one process each, batch size per process:

    torchrun --standalone --nproc_per_node 8 -m training.cli train-gan --tiles T.lmdb --tissue lung \\
        --conditioning rna --vae runs/vae --expression prepared/ --out runs/rnagan-lung --resume

(DistributedDataParallel over NCCL, each rank reading its DistributedSampler shard; on CPU, gloo.)
"""

from __future__ import annotations

import csv
import functools
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from tqdm import tqdm

from training.data.dataset import TileDataset
from training.data.expression import load_prepared
from training.data.samples import match_tissue
from training.data.tile_store import TileStore
from training.loops.augment import augment
from training.loops.conditioning import (
    ConditioningData,
    LatentTable,
    describe_rows,
    load_rna_conditioning,
    training_input,
)
from training.loops.gan_checkpoint import load_checkpoint, prune_checkpoints, save_checkpoint
from training.loops.gan_config import GANTrainConfig, Runtime
from training.loops.wgan import StepLosses, train_step
from training.networks.gan import Critic, Generator, init_weights
from training.networks.inputs import sampling_input
from training.utils.checkpoints import GENERATOR_FILE
from training.utils.device import autocast, pick_device, seed_everything
from training.utils.ema import EMA, recalibrate_batchnorm
from training.utils.images import render, save_png, tile_grid
from training.utils.io import append_csv_row, write_csv
from training.utils.runs import make_run_dir, save_weights

LATENTS_FILE = "latents.safetensors"
LOSSES_FILE = "losses.csv"
LOSS_COLUMNS = ("step", "epoch", *StepLosses.FIELDS, "images_per_s", "elapsed_s")


class EpochBatches(Sampler[list[int]]):
    """Batches of one epoch of a DistributedSampler order, from a given position on (for resume)."""

    def __init__(self, sampler: DistributedSampler, batch_size: int):
        self.sampler, self.batch_size = sampler, batch_size
        self.epoch, self.start = 0, 0

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size - self.start

    def __iter__(self):
        self.sampler.set_epoch(self.epoch)
        order = list(self.sampler)
        for b in range(self.start, len(order) // self.batch_size):
            yield order[b * self.batch_size : (b + 1) * self.batch_size]


def step_seed(seed: int, rank: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1, dtype=np.uint64)[0] >> 1)


def init_distributed(requested: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device); starts the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, pick_device(requested)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = requested in ("auto", "cuda") and torch.cuda.is_available()
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return dist.get_rank(), world, device


def build_dataset(config: GANTrainConfig, prepared: Any = None) -> Dataset:
    """The tissue's tiles (with an expression folder: of the slides in `config.split` that have a row)."""
    with TileStore(config.tiles, lock=False) as store:
        records = store.slides()
    tissues = match_tissue([str(r.get("tissue")) for r in records.values() if r.get("tissue")], config.tissue)
    if not tissues:
        known = ", ".join(sorted({str(r.get("tissue")) for r in records.values() if r.get("tissue")}))
        raise ValueError(f"{config.tiles}: no slides of tissue {config.tissue!r} (there: {known or 'none'})")
    slides = None
    if prepared is not None and config.split != "all":
        in_split = set(prepared.samples.loc[prepared.samples["split"] == config.split, "slide_id"])
        slides = sorted(in_split & set(records))
    dataset = TileDataset(
        config.tiles,
        tissue=tissues,
        slides=slides,
        expression=prepared,
        image_size=config.model.image_size,
        max_tiles_per_slide=config.tiles_per_slide,
        seed=config.seed,
    )
    if len(dataset) == 0:
        raise ValueError(
            f"{config.tiles}: no tiles of tissue {config.tissue!r}"
            + (
                f" on slides of the {config.split!r} split with an expression row"
                if prepared is not None
                else ""
            )
        )
    return dataset


def prepare_run_inputs(
    config: GANTrainConfig, run: Path, device: torch.device
) -> tuple[Dataset, ConditioningData]:
    """The tile dataset and conditioning data of a real run (the loop itself takes any dataset)."""

    if config.conditioning != "rna":
        prepared = load_prepared(config.expression_dir) if config.expression_dir else None
        return build_dataset(config, prepared), ConditioningData()
    if not (config.vae_run and config.expression_dir):
        raise ValueError("RNA-GAN (--conditioning rna) needs --vae RUN and --expression FOLDER")
    cached = run / LATENTS_FILE
    if cached.exists():  # a resumed run keeps the table it started with
        prepared = load_prepared(config.expression_dir)
        data = describe_rows(prepared.samples, LatentTable.load(cached), tissue=config.tissue,
                             split=config.split, n_grid=config.grid_rows, source=config.expression_dir)
    else:
        data, prepared = load_rna_conditioning(config.vae_run, config.expression_dir, tissue=config.tissue,
                                               split=config.split, n_grid=config.grid_rows, device=device)
    if data.table.dim != config.model.input_dim:
        raise ValueError(
            f"the VAE latent has {data.table.dim} dimensions but the generator input is "
            f"{config.model.input_dim} (the command takes it from the VAE; check config.json)"
        )
    if len(data.table) != len(prepared.samples):
        raise ValueError(
            f"{cached}: {len(data.table)} latent rows for {len(prepared.samples)} expression rows"
        )
    return build_dataset(config, prepared), data


def train_gan(
    config: GANTrainConfig,
    out: str | os.PathLike[str],
    runtime: Runtime | None = None,
    *,
    resume: bool = False,
    dataset: Dataset | None = None,
    conditioning: ConditioningData | None = None,
) -> Path:
    """Train (or resume) into run folder `out`; `dataset`/`conditioning` replace the LMDB/VAE inputs."""
    runtime = runtime or Runtime()
    rank, world, device = init_distributed(runtime.device)
    main = rank == 0
    run = Path(out)
    start = load_checkpoint(run, config) if resume else None
    if main:
        make_run_dir(run, config, resume=resume)
    if dataset is None:
        dataset, conditioning = prepare_run_inputs(config, run, device)
    conditioning = conditioning or ConditioningData()
    mode, dim = config.conditioning, config.model.input_dim
    if mode == "rna":
        if conditioning.table is None:
            raise ValueError(
                "RNA-GAN (--conditioning rna) needs the VAE latent table (--vae and --expression)"
            )
        if main and not (run / LATENTS_FILE).exists():
            conditioning.table.save(run / LATENTS_FILE)
    table = conditioning.table.to(device) if conditioning.table is not None else None

    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    seed_everything(config.seed)
    g_raw, d_raw = Generator(config.model), Critic(config.model)
    init_weights(g_raw)
    init_weights(d_raw)
    g_raw, d_raw = g_raw.to(device), d_raw.to(device)
    if cuda:
        g_raw = g_raw.use_channels_last()
        d_raw = d_raw.to(memory_format=torch.channels_last)
    ema = EMA(g_raw, config.optim.ema_decay)
    adam = {"betas": tuple(config.optim.betas), **({"fused": True} if cuda else {})}
    opt_g = torch.optim.Adam(g_raw.parameters(), lr=config.optim.lr_g, **adam)
    opt_d = torch.optim.Adam(d_raw.parameters(), lr=config.optim.lr_d, **adam)
    step, epoch, position = 0, 0, 0
    if start is not None:
        step, epoch, position = start.restore(g_raw, d_raw, ema, opt_g, opt_d, device)
        if main:
            _truncate_losses(run / LOSSES_FILE, step)

    g_run, d_run = g_raw, d_raw
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if cuda else None
        g_run, d_run = DDP(g_raw, device_ids=ids), DDP(d_raw, device_ids=ids)
    if runtime.compile == "on" or (runtime.compile == "auto" and cuda):
        g_run = torch.compile(g_run)

    sampler = DistributedSampler(
        dataset, num_replicas=world, rank=rank, shuffle=True, seed=config.seed, drop_last=True
    )
    batches = EpochBatches(sampler, config.batch_size)
    workers = runtime.workers if runtime.workers is not None else (min(8, os.cpu_count() or 1) if cuda else 0)
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=workers, pin_memory=cuda,
                        persistent_workers=workers > 0, prefetch_factor=4 if workers else None)
    n_critic = config.wgan.n_critic
    steps_per_epoch = len(sampler) // config.batch_size // n_critic
    if steps_per_epoch == 0:
        raise ValueError(
            f"{len(dataset)} tiles over {world} process(es) do not fill one step of "
            f"{n_critic} × {config.batch_size} tiles: lower --batch-size or --n-critic"
        )
    rng = torch.Generator(device=device)
    log = _LossLog(run / LOSSES_FILE, enabled=main)
    images_per_step = config.batch_size * n_critic * world
    stop = runtime.max_steps

    def export(tag: str) -> None:
        if main:
            _export(config, run, ema.model, table, conditioning, device, step, tag)

    saved_at = [step if start is not None else -1]

    def checkpoint(next_epoch: int, next_position: int) -> None:
        if main and saved_at[0] != step:
            saved_at[0] = step
            save_checkpoint(run, config, step, next_epoch, next_position, g_raw, d_raw, ema, opt_g, opt_d)
            prune_checkpoints(run, config.keep_checkpoints)

    while epoch < config.epochs and (stop is None or step < stop):
        batches.epoch, batches.start = epoch, position
        first = position // n_critic
        desc = f"epoch {epoch + 1}/{config.epochs}"
        bar = tqdm(total=steps_per_epoch, initial=first, desc=desc, unit="step", leave=False,
                   disable=not (main and runtime.progress), dynamic_ncols=True)
        it = iter(loader)
        for _ in range(first, steps_per_epoch):
            reals, rows = [], []
            for _k in range(n_critic):
                batch = next(it)
                image = batch["image"].to(device, non_blocking=True)
                if cuda:
                    image = image.contiguous(memory_format=torch.channels_last)
                rows.append(batch["expression_row"])
                reals.append(image)
            rng.manual_seed(step_seed(config.seed, rank, step))
            reals = [augment(x, config.augment, rng) for x in reals]
            losses = train_step(
                generator=g_run, critic=d_run, critic_module=d_raw, opt_g=opt_g, opt_d=opt_d, reals=reals,
                make_input=lambda k, rows=rows: training_input(
                    mode, config.batch_size, dim, generator=rng, device=device, rows=rows[k], table=table
                ),
                config=config.wgan, rng=rng, autocast=functools.partial(autocast, device),
            )
            ema.update(g_raw, step)
            step += 1
            position += n_critic
            bar.update(1)
            if log.add(losses, step, epoch, images_per_step, every=config.log_every):
                bar.set_postfix(img_s=f"{log.last_rate:,.0f}", d=f"{log.last[0]:.3f}", g=f"{log.last[3]:.3f}")
            # An epoch's last step is saved below, with the next epoch's position.
            epoch_done = position >= steps_per_epoch * n_critic
            if config.checkpoint_every and step % config.checkpoint_every == 0 and not epoch_done:
                checkpoint(epoch, position)
            if stop is not None and step >= stop:
                break
        bar.close()
        del it
        log.flush(step, epoch, images_per_step)
        if position >= steps_per_epoch * n_critic:
            epoch, position = epoch + 1, 0
            tag = f"epoch-{epoch:04d}"
        else:
            tag = f"step-{step:08d}"
        checkpoint(epoch, position)
        export(tag)
    if world > 1:
        dist.barrier()
    return run


def _export(config, run, ema_model, table, conditioning, device, step, tag) -> None:
    """generator_ema.safetensors (BatchNorm re-measured for the EMA weights) and a sample grid."""
    gen = torch.Generator(device=device).manual_seed(step_seed(config.seed, 1 << 20, step))
    rows = torch.as_tensor(
        conditioning.train_rows if conditioning.train_rows else range(len(table) if table is not None else 1)
    )
    calib = []
    for _ in range(config.bn_batches):
        pick = rows[torch.randint(len(rows), (config.batch_size,), generator=gen, device=device).cpu()]
        calib.append(training_input(config.conditioning, config.batch_size, config.model.input_dim,
                                    generator=gen, device=device, rows=pick, table=table))
    model = recalibrate_batchnorm(ema_model, calib)
    metadata = {"format": "rnagan-generator-1", "conditioning": config.conditioning, "step": str(step)}
    save_weights(run / GENERATOR_FILE, model.state_dict(), metadata=metadata)
    seeds = list(range(config.grid_columns))
    if config.conditioning == "rna" and table is not None:
        grid_rows = conditioning.grid_rows or list(range(min(config.grid_rows, len(table))))
        latents = table.latents[torch.as_tensor(grid_rows, device=table.latents.device)].cpu()
        rows_in = [latents[r].expand(len(seeds), -1) for r in range(len(grid_rows))]
        inputs = torch.cat([sampling_input("rna", seeds, config.model.input_dim, row) for row in rows_in])
    else:
        inputs = sampling_input(
            config.conditioning, range(config.grid_rows * len(seeds)), config.model.input_dim
        )
    tiles = render(model, inputs, batch_size=config.batch_size, device=device).numpy()
    save_png(tile_grid(tiles, len(seeds)), run / "samples" / f"{tag}.png")


class _LossLog:
    """Means of the step losses over `every` steps, appended to losses.csv; syncs the device only then."""

    def __init__(self, path: Path, *, enabled: bool):
        self.path, self.enabled = path, enabled
        self.total: torch.Tensor | None = None
        self.count, self.last, self.last_rate = 0, [math.nan] * 4, 0.0
        self.t0 = self.started = time.perf_counter()

    def add(self, losses: StepLosses, step: int, epoch: int, images_per_step: int, *, every: int) -> bool:
        values = losses.as_tensor()
        self.total = values if self.total is None else self.total + values
        self.count += 1
        if self.count >= every:
            self.flush(step, epoch, images_per_step)
            return True
        return False

    def flush(self, step: int, epoch: int, images_per_step: int) -> None:
        if not self.count:
            return
        now = time.perf_counter()
        self.last = (self.total / self.count).tolist()
        self.last_rate = self.count * images_per_step / max(now - self.t0, 1e-9)
        if self.enabled:
            values = [f"{v:.6g}" for v in self.last]
            append_csv_row(self.path, LOSS_COLUMNS,
                           [step, epoch, *values, f"{self.last_rate:.1f}", f"{now - self.started:.1f}"])
        self.total, self.count, self.t0 = None, 0, now


def _truncate_losses(path: Path, step: int) -> None:
    """Drop rows logged after the checkpoint being resumed: those steps are about to be redone."""
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    # A row cut short by a crash has fewer fields; drop it with the rows after the checkpoint.
    kept = [r for r in rows[1:] if len(r) == len(LOSS_COLUMNS) and r[0].isdigit() and int(r[0]) <= step]
    write_csv(path, LOSS_COLUMNS, kept)
