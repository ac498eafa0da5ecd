"""Draw tiles from a trained GAN / RNA-GAN run folder (docs/contracts.md), without the training loop.

`load_generator(run_dir)` rebuilds the EMA generator from `config.json` and `generator_ema.safetensors`
(safetensors and JSON only, no pickles), in eval mode: BatchNorm uses its stored statistics, so a tile
never depends on the batch it was drawn in. `generate(...)` gives tile k noise from its own
`torch.Generator` seeded `seeds[k]` (default `seed + k`) on the CPU, so the same (checkpoint,
expression, seed) gives the same tile on any device and in any batch. On CUDA the generator runs in
bf16 with channels_last (optionally compiled) and every chunk is padded to `batch_size`, so the kernels
see one shape; bitwise equality across different `batch_size` values is promised on CPU only (cuDNN
may pick another convolution algorithm for another batch shape, which can move a pixel by a rounding
step). Keep `batch_size` fixed where tiles must match bit for bit on a GPU.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from training.loops.conditioning import KINDS, check_mode, sampling_input
from training.networks.gan import GANConfig, Generator
from training.utils.io import atomic_path, read_json
from training.utils.runs import config_from_dict, load_weights, pick_device, state_mismatches

GENERATOR_FILE = "generator_ema.safetensors"
CONFIG_FILE = "config.json"


class CheckpointError(ValueError):
    """A run folder whose weights and config do not belong together, or that lacks them."""


@dataclass
class LoadedGenerator:
    model: Generator
    config: GANConfig
    conditioning: str
    tissue: str
    run_dir: Path
    vae_run: Path | None
    expression_dir: Path | None
    device: torch.device
    _vae: object = field(default=None, repr=False)
    _prepared: object = field(default=None, repr=False)
    _order: np.ndarray | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        return KINDS[self.conditioning]

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def input_dim(self) -> int:
        return self.config.input_dim

    # --- RNA-GAN helpers: the VAE and the prepared folder are loaded on first use -------------------
    def _need_rna(self, what: str) -> None:
        if self.conditioning != "rna":
            raise ValueError(f"{what} is for RNA-GAN runs; {self.run_dir} is a {self.kind} run")

    @property
    def vae(self):
        self._need_rna("the VAE")
        if self._vae is None:
            if self.vae_run is None:
                raise CheckpointError(f"{self.run_dir / CONFIG_FILE}: an RNA-GAN run without vae_run")
            from training.networks.vae import load_vae

            self._vae = load_vae(self.vae_run, device=self.device)
        return self._vae

    @property
    def prepared(self):
        self._need_rna("the prepared expression folder")
        if self._prepared is None:
            if self.expression_dir is None:
                raise CheckpointError(f"{self.run_dir / CONFIG_FILE}: an RNA-GAN run without expression_dir")
            from training.data.expression import load_prepared
            from training.networks.vae import gene_order

            self._prepared = load_prepared(self.expression_dir, mmap=True)
            self._order = gene_order(self._prepared.genes, self.vae.genes, source=str(self.expression_dir))
        return self._prepared

    def expression_for_sample(self, sample_id: str) -> np.ndarray:
        """The sample's z-scored expression, in the VAE's gene order, shape (G,)."""
        prepared = self.prepared
        return np.asarray(prepared.matrix[prepared.row_of_sample(sample_id)], dtype=np.float32)[self._order]

    def random_sample_ids(self, n: int, seed: int = 0, *, split: str | None = None) -> list[str]:
        """n sample IDs of this run's tissue (optionally one split), drawn from `seed` (with replacement
        only when n exceeds the samples there)."""
        from training.loops.conditioning import match_tissue

        samples = self.prepared.samples
        names = match_tissue(list(samples["tissue"].unique()), self.tissue)
        keep = samples["tissue"].isin(names)
        if split is not None:
            keep &= samples["split"] == split
        ids = samples.loc[keep, "sample_id"].tolist()
        if not ids:
            raise ValueError(
                f"{self.expression_dir}: no samples of tissue {self.tissue!r}"
                + (f" in split {split!r}" if split else "")
            )
        picks = np.random.default_rng(seed).choice(len(ids), size=n, replace=n > len(ids))
        return [ids[i] for i in picks]

    def vae_sample_expression(self, tissue: str, n: int, seed: int = 0) -> np.ndarray:
        """Synthetic expression of a tissue from the VAE (decode(centroid + noise)), shape (n, G)."""
        return self.vae.sample(tissue, n, seed)

    def encode(self, expression: np.ndarray) -> np.ndarray:
        """VAE μ of z-scored expression (G,) or (n, G) in the VAE's gene order → (n, latent)."""
        return self.vae.encode(np.asarray(expression, dtype=np.float32))


def load_generator(
    run_dir: str | os.PathLike[str], device: str | torch.device | None = None, *, compile: bool = False
) -> LoadedGenerator:
    run = Path(run_dir)
    raw = read_json(run / CONFIG_FILE)
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict) or "conditioning" not in raw:
        raise CheckpointError(f"{run / CONFIG_FILE}: not a GAN run config (no 'model' or 'conditioning')")
    config = config_from_dict(GANConfig, raw["model"], source=f"{run / CONFIG_FILE}")
    conditioning = check_mode(raw["conditioning"])
    dev = pick_device("auto" if device is None else str(device))
    model = Generator(config)
    load_state_checked(model, load_weights(run / GENERATOR_FILE), run / GENERATOR_FILE)
    model = model.to(dev).eval().requires_grad_(False)
    if dev.type == "cuda":
        model = model.use_channels_last()
        if compile:
            model.forward = torch.compile(model.forward, dynamic=False)
    return LoadedGenerator(
        model=model,
        config=config,
        conditioning=conditioning,
        tissue=str(raw.get("tissue", "")),
        run_dir=run,
        vae_run=Path(raw["vae_run"]) if raw.get("vae_run") else None,
        expression_dir=Path(raw["expression_dir"]) if raw.get("expression_dir") else None,
        device=dev,
    )


def save_generator_run(
    run_dir: str | os.PathLike[str], model: Generator, *, conditioning: str = "none", tissue: str = "",
    vae_run: str | None = None, expression_dir: str | None = None,
) -> Path:
    """Write the sampling-only part of a run folder (config.json + generator weights), exactly what
    load_generator reads: for benchmarks and tests that need a generator of some size, not a trained one.
    Training writes the same two files, with its full config, through train_gan."""
    from training.utils.io import write_json
    from training.utils.runs import config_to_dict, save_weights

    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    write_json(run / CONFIG_FILE, {
        "model": config_to_dict(model.config), "conditioning": check_mode(conditioning), "tissue": tissue,
        "vae_run": vae_run, "expression_dir": expression_dir,
    })
    save_weights(run / GENERATOR_FILE, model.state_dict())
    return run


def load_state_checked(module: torch.nn.Module, state: dict[str, torch.Tensor], source: Path | str) -> None:
    """load_state_dict, with a message that names the first differing tensors and says what to check."""
    problems = state_mismatches(module, state)
    if problems:
        raise CheckpointError(f"{source}: checkpoint/config mismatch: " + "; ".join(problems))
    module.load_state_dict(state, strict=True)


def to_uint8_nhwc(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] (N, 3, H, W) → uint8 (N, H, W, 3)."""
    return (
        images.float()
        .add(1)
        .mul(127.5)
        .round_()
        .clamp_(0, 255)
        .to(torch.uint8)
        .permute(0, 2, 3, 1)
        .contiguous()
    )


@torch.no_grad()
def render(
    model: torch.nn.Module,
    inputs: torch.Tensor | Callable[[int, int], torch.Tensor],
    *,
    n: int | None = None,
    batch_size: int = 256,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Run a generator in eval mode over inputs (n, dim) in chunks → uint8 (n, H, W, 3) on the CPU.

    `inputs` may be a function (start, stop) → rows start..stop; on CUDA the next chunk's rows are then
    built on a CPU thread while the GPU draws the current one.
    """
    device = device or next(model.parameters()).device
    cuda = device.type == "cuda"
    if callable(inputs):
        make, n = inputs, int(n if n is not None else 0)
    else:
        make, n = (lambda start, stop: inputs[start:stop]), inputs.shape[0]
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]

    def prepare(start: int, stop: int) -> torch.Tensor:
        chunk = make(start, stop)
        if cuda and stop - start < batch_size:  # one shape for every call: no recompiles, one kernel choice
            chunk = torch.cat([chunk, chunk[-1:].expand(batch_size - (stop - start), -1)])
        return chunk.pin_memory() if cuda else chunk

    out: torch.Tensor | None = None
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(1)) if cuda else None
        pending = pool.submit(prepare, *bounds[0]) if pool and bounds else None
        for i, (start, stop) in enumerate(bounds):
            chunk = pending.result() if pending else prepare(start, stop)
            if pool and i + 1 < len(bounds):
                pending = pool.submit(prepare, *bounds[i + 1])
            z = chunk.to(device, non_blocking=cuda)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                tiles = to_uint8_nhwc(model(z)[: stop - start])
            if out is None:
                out = torch.empty((n, *tiles.shape[1:]), dtype=torch.uint8, pin_memory=cuda)
            out[start:stop].copy_(tiles, non_blocking=cuda)
    if cuda:
        torch.cuda.synchronize(device)
    if out is None:
        size = getattr(getattr(model, "config", None), "image_size", 0)
        return torch.empty((0, size, size, 3), dtype=torch.uint8)
    return out


def generate(
    checkpoint: LoadedGenerator | str | os.PathLike[str],
    n: int,
    expression: np.ndarray | None = None,
    seed: int = 0,
    *,
    seeds: Sequence[int] | None = None,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    latents: np.ndarray | None = None,
) -> np.ndarray:
    """n tiles as uint8 (n, H, W, 3).

    `expression` (RNA-GAN only): z-scored expression over the VAE's genes, (G,) for every tile or (n, G)
    one per tile. `latents` may replace it with VAE means already computed, (dim,) or (n, dim).
    """
    gen = checkpoint if isinstance(checkpoint, LoadedGenerator) else load_generator(checkpoint, device)
    if n < 0:
        raise ValueError(f"n must be ≥ 0, got {n}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    seeds = [seed + k for k in range(n)] if seeds is None else [int(s) for s in seeds]
    if len(seeds) != n:
        raise ValueError(f"got {len(seeds)} seeds for {n} tiles")
    cond = None
    if gen.conditioning == "rna":
        if latents is None:
            if expression is None:
                raise ValueError("an RNA-GAN run needs an expression profile for each tile (expression=...)")
            latents = gen.encode(expression)
        cond = torch.from_numpy(_per_tile(np.asarray(latents, dtype=np.float32), n, gen.input_dim, "latents"))
    elif expression is not None or latents is not None:
        raise ValueError(f"{gen.run_dir} is a {gen.kind} run: it takes no expression")
    # On a GPU the noise of the next chunk is drawn on CPU threads while the current chunk renders.
    threads = min(8, max(1, (os.cpu_count() or 2) // 2)) if gen.device.type == "cuda" else 1

    def inputs(start: int, stop: int) -> torch.Tensor:
        part = None if cond is None else cond[start:stop]
        return sampling_input(gen.conditioning, seeds[start:stop], gen.input_dim, part, threads=threads)

    return render(gen.model, inputs, n=n, batch_size=batch_size, device=gen.device).numpy()


def _per_tile(values: np.ndarray, n: int, width: int, what: str) -> np.ndarray:
    if values.ndim == 1:
        values = values[None, :]
    if values.ndim != 2 or values.shape[1] != width or values.shape[0] not in (1, n):
        raise ValueError(
            f"{what} must have shape ({width},), (1, {width}) or ({n}, {width}); got {values.shape}"
        )
    return np.broadcast_to(values, (n, width)).copy()


def tile_grid(tiles: np.ndarray, columns: int) -> np.ndarray:
    """uint8 (n, H, W, 3) → one (rows·H, columns·W, 3) image, row-major, blank cells white."""
    n, h, w, _ = tiles.shape
    rows = max(1, -(-n // columns))
    grid = np.full((rows * h, columns * w, 3), 255, dtype=np.uint8)
    for k in range(n):
        r, c = divmod(k, columns)
        grid[r * h : (r + 1) * h, c * w : (c + 1) * w] = tiles[k]
    return grid


def save_png(image: np.ndarray, path: str | os.PathLike[str]) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
