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

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from training.data.expression import load_prepared
from training.data.samples import match_tissue
from training.networks.gan import GANConfig, Generator
from training.networks.inputs import KINDS, check_mode, latent_dim_of, sampling_input, takes_expression
from training.networks.vae import gene_order, load_vae
from training.utils.checkpoints import CONFIG_FILE, GENERATOR_FILE, CheckpointError
from training.utils.device import pick_device
from training.utils.images import render
from training.utils.io import read_json, write_json
from training.utils.runs import (
    config_from_dict,
    config_to_dict,
    load_state_checked,
    load_weights,
    save_weights,
)


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

    @property
    def latent_dim(self) -> int:
        """Size of the VAE latent an RNA arm takes (the input less any concatenated noise)."""
        return latent_dim_of(self.conditioning, self.config.input_dim, self.config.noise_dim)

    # --- RNA-GAN helpers: the VAE and the prepared folder are loaded on first use -------------------
    def _need_rna(self, what: str) -> None:
        if not takes_expression(self.conditioning):
            raise ValueError(f"{what} is for RNA-GAN runs; {self.run_dir} is a {self.kind} run")

    @property
    def vae(self):
        self._need_rna("the VAE")
        if self._vae is None:
            if self.vae_run is None:
                raise CheckpointError(f"{self.run_dir / CONFIG_FILE}: an RNA-GAN run without vae_run")
            self._vae = load_vae(self.vae_run, device=self.device)
        return self._vae

    @property
    def prepared(self):
        self._need_rna("the prepared expression folder")
        if self._prepared is None:
            if self.expression_dir is None:
                raise CheckpointError(f"{self.run_dir / CONFIG_FILE}: an RNA-GAN run without expression_dir")
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
    refuse_constant_output(model, conditioning, run / GENERATOR_FILE, dev)
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


def refuse_constant_output(model: Generator, conditioning: str, source: Path, device: torch.device) -> None:
    """Refuse a generator that draws one flat image whatever its input: damaged or zeroed weights (those
    of a file saved before checksums, say) gave all-black tiles without a word."""
    config = model.config
    width = latent_dim_of(conditioning, config.input_dim, config.noise_dim)
    latents = torch.zeros(2, width) if takes_expression(conditioning) else None
    inputs = sampling_input(conditioning, [0, 1], config.input_dim, latents, noise_dim=config.noise_dim)
    tiles = render(model, inputs, batch_size=2, device=device)
    if int(tiles.max()) == int(tiles.min()):
        raise CheckpointError(
            f"{source}: the generator draws the same flat image (every pixel {int(tiles.min())}) whatever its "
            "input: its weights are damaged or zeroed; copy the file again from where it was trained, or retrain"
        )


def save_generator_run(
    run_dir: str | os.PathLike[str], model: Generator, *, conditioning: str = "none", tissue: str = "",
    vae_run: str | None = None, expression_dir: str | None = None,
) -> Path:
    """Write the sampling-only part of a run folder (config.json + generator weights), exactly what
    load_generator reads: for benchmarks and tests that need a generator of some size, not a trained one.
    Training writes the same two files, with its full config, through train_gan."""

    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    write_json(run / CONFIG_FILE, {
        "model": config_to_dict(model.config), "conditioning": check_mode(conditioning), "tissue": tissue,
        "vae_run": vae_run, "expression_dir": expression_dir,
    })
    save_weights(run / GENERATOR_FILE, model.state_dict())
    return run


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
    if takes_expression(gen.conditioning):
        if latents is None:
            if expression is None:
                raise ValueError("an RNA-GAN run needs an expression profile for each tile (expression=...)")
            latents = gen.encode(expression)
        cond = torch.from_numpy(_per_tile(np.asarray(latents, dtype=np.float32), n, gen.latent_dim, "latents"))
    elif expression is not None or latents is not None:
        raise ValueError(f"{gen.run_dir} is a {gen.kind} run: it takes no expression")
    # On a GPU the noise of the next chunk is drawn on CPU threads while the current chunk renders.
    threads = min(8, max(1, (os.cpu_count() or 2) // 2)) if gen.device.type == "cuda" else 1

    def inputs(start: int, stop: int) -> torch.Tensor:
        part = None if cond is None else cond[start:stop]
        return sampling_input(gen.conditioning, seeds[start:stop], gen.input_dim, part,
                              noise_dim=gen.config.noise_dim, threads=threads)

    return render(gen.model, inputs, n=n, batch_size=batch_size, device=gen.device).numpy()


def _per_tile(values: np.ndarray, n: int, width: int, what: str) -> np.ndarray:
    if values.ndim == 1:
        values = values[None, :]
    if values.ndim != 2 or values.shape[1] != width or values.shape[0] not in (1, n):
        raise ValueError(
            f"{what} must have shape ({width},), (1, {width}) or ({n}, {width}); got {values.shape}"
        )
    return np.broadcast_to(values, (n, width)).copy()
