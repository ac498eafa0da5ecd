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

import functools
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
from training.loops.loss_log import LOSSES_FILE, LossLog, truncate_losses
from training.loops.wgan import train_step
from training.networks.gan import Critic, Generator, init_weights
from training.networks.inputs import latent_dim_of, sampling_input, takes_expression
from training.utils.checkpoints import CONFIG_FILE, GENERATOR_FILE
from training.utils.device import autocast, pick_device, seed_everything
from training.utils.ema import EMA, recalibrate_batchnorm
from training.utils.images import render, save_png, tile_grid
from training.utils.runs import discard_staged, make_run_dir, publish_run_dir, save_weights, stage_run_dir

LATENTS_FILE = "latents.safetensors"


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
    if prepared is None and config.split != "all":
        # Every arm trains on the same slides: without the prepared folder the split is unknown, and
        # training on every slide would put the test slides into the GAN arm alone.
        raise ValueError(f"training on the {config.split!r} split needs the prepared expression folder "
                         "(--expression) to know its slides, for every arm; --split all trains on every slide")
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

    if not takes_expression(config.conditioning):
        prepared = load_prepared(config.expression_dir) if config.expression_dir else None
        return build_dataset(config, prepared), ConditioningData()
    if not (config.vae_run and config.expression_dir):
        raise ValueError(f"RNA-GAN (--conditioning {config.conditioning}) needs --vae RUN and --expression FOLDER")
    cached = run / LATENTS_FILE
    if cached.exists():  # a resumed run keeps the table it started with
        prepared = load_prepared(config.expression_dir)
        data = describe_rows(prepared.samples, LatentTable.load(cached), tissue=config.tissue,
                             split=config.split, n_grid=config.grid_rows, source=config.expression_dir)
    else:
        data, prepared = load_rna_conditioning(config.vae_run, config.expression_dir, tissue=config.tissue,
                                               split=config.split, n_grid=config.grid_rows, device=device)
    width = latent_dim_of(config.conditioning, config.model.input_dim, config.model.noise_dim)
    if data.table.dim != width:
        raise ValueError(
            f"the VAE latent has {data.table.dim} dimensions but the generator's latent input is "
            f"{width} (the command takes it from the VAE; check config.json)"
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
    # A new run is built under a hidden name and appears as `out` only once training has started: a
    # start that fails (unknown tissue, a corrupt store) leaves nothing that blocks the next try.
    staging = stage_run_dir(run, config) if main and not (resume and (run / CONFIG_FILE).exists()) else None
    try:
        if main and staging is None:
            make_run_dir(run, config, resume=resume)
        return _train(config, run, staging, runtime, rank, world, device, start, dataset, conditioning)
    finally:
        discard_staged(staging)


def _train(config, run, staging, runtime, rank, world, device, start, dataset, conditioning) -> Path:
    main = rank == 0
    if dataset is None:
        dataset, conditioning = prepare_run_inputs(config, run, device)
    conditioning = conditioning or ConditioningData()
    mode, dim = config.conditioning, config.model.input_dim
    if takes_expression(mode):
        if conditioning.table is None:
            raise ValueError(
                f"RNA-GAN (--conditioning {mode}) needs the VAE latent table (--vae and --expression)"
            )
        if main and not ((staging or run) / LATENTS_FILE).exists():
            conditioning.table.save((staging or run) / LATENTS_FILE)
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
            truncate_losses(run / LOSSES_FILE, step)

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
    if staging is not None:
        publish_run_dir(staging, run)  # everything that can refuse the run has run: training starts
    rng = torch.Generator(device=device)
    log = LossLog(run / LOSSES_FILE, enabled=main)
    images_per_step = config.batch_size * n_critic * world
    stop = runtime.max_steps
    if runtime.max_seconds is not None and world > 1:
        raise ValueError("a time budget (--max-minutes) stops ranks at different steps: use --max-steps with torchrun")
    deadline = None if runtime.max_seconds is None else time.perf_counter() + runtime.max_seconds

    def export(tag: str) -> None:
        if main:
            _export(config, run, ema.model, table, conditioning, device, step, tag)

    saved_at = [step if start is not None else -1]

    def checkpoint(next_epoch: int, next_position: int) -> None:
        if main and saved_at[0] != step:
            saved_at[0] = step
            save_checkpoint(run, config, step, next_epoch, next_position, g_raw, d_raw, ema, opt_g, opt_d)
            prune_checkpoints(run, config.keep_checkpoints)

    out_of_time = False
    while epoch < config.epochs and (stop is None or step < stop) and not out_of_time:
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
                    mode, config.batch_size, dim, generator=rng, device=device, rows=rows[k], table=table,
                    noise_dim=config.model.noise_dim,
                ),
                make_cond=(lambda k, rows=rows: table.lookup(rows[k])) if config.model.cond_dim else None,
                augment_fake=(lambda x: augment((x + 1) / 2, config.augment, rng)) if config.augment.fakes else None,
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
            if deadline is not None and time.perf_counter() >= deadline:
                out_of_time = True  # an equal wall-clock budget per arm (bench/eval_conditioning.py)
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
                                    generator=gen, device=device, rows=pick, table=table,
                                    noise_dim=config.model.noise_dim))
    model = recalibrate_batchnorm(ema_model, calib)
    metadata = {"format": "rnagan-generator-1", "conditioning": config.conditioning, "step": str(step)}
    save_weights(run / GENERATOR_FILE, model.state_dict(), metadata=metadata)
    seeds = list(range(config.grid_columns))
    if takes_expression(config.conditioning) and table is not None:
        grid_rows = conditioning.grid_rows or list(range(min(config.grid_rows, len(table))))
        latents = table.latents[torch.as_tensor(grid_rows, device=table.latents.device)].cpu()
        rows_in = [latents[r].expand(len(seeds), -1) for r in range(len(grid_rows))]
        inputs = torch.cat([sampling_input(config.conditioning, seeds, config.model.input_dim, row,
                                           noise_dim=config.model.noise_dim) for row in rows_in])
    else:
        inputs = sampling_input(
            config.conditioning, range(config.grid_rows * len(seeds)), config.model.input_dim
        )
    tiles = render(model, inputs, batch_size=config.batch_size, device=device).numpy()
    save_png(tile_grid(tiles, len(seeds)), run / "samples" / f"{tag}.png")
