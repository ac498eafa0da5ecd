"""What the generator is fed, for each arm of the comparison (the input contract of the networks).

- `none` (GAN): z ~ N(0, I) of the input dimension.
- `rna` (RNA-GAN): the VAE mean μ of the tile's own expression sample, plus noise uniform in
  [−0.3, 0.3].
- `noise` (the paper's ablation): the narrow uniform noise alone.

Nothing here normalises across the batch: every input row is a function of its own sample and its own
noise only. Sampling draws each tile's noise from its own CPU `torch.Generator` seeded with that tile's
seed, so a tile never depends on its batch or device. Training (training.loops.conditioning) draws the
noise for a whole batch from one device generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import torch

MODES = ("none", "rna", "noise")
KINDS = {"none": "gan", "rna": "rnagan", "noise": "noise"}
NOISE_HALF_WIDTH = 0.3


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"conditioning must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def uniform_noise(
    shape: Sequence[int], *, generator: torch.Generator, device: torch.device | str
) -> torch.Tensor:
    return (torch.rand(*shape, generator=generator, device=device) * 2 - 1) * NOISE_HALF_WIDTH


def seeded_noise(mode: str, seeds: Sequence[int], input_dim: int, *, threads: int = 1) -> torch.Tensor:
    """(n, input_dim) CPU noise, row k drawn from its own generator seeded `seeds[k]`.

    `threads` > 1 fills slices of the rows in parallel (torch releases the GIL while drawing); the
    result is the same for any number of threads.
    """
    check_mode(mode)
    seeds = [int(s) for s in seeds]
    out = torch.empty(len(seeds), input_dim)

    def fill(start: int, stop: int) -> None:
        gen = torch.Generator()
        draw = torch.randn if mode == "none" else torch.rand
        for k in range(start, stop):
            gen.manual_seed(seeds[k])
            draw(input_dim, generator=gen, out=out[k])

    parts = max(1, min(threads, len(seeds) // 64))
    if parts == 1:
        fill(0, len(seeds))
    else:
        bounds = [len(seeds) * i // parts for i in range(parts + 1)]
        with ThreadPoolExecutor(parts) as pool:
            list(pool.map(fill, bounds[:-1], bounds[1:]))
    if mode != "none":
        out.mul_(2).sub_(1).mul_(NOISE_HALF_WIDTH)
    return out


def sampling_input(
    mode: str, seeds: Sequence[int], input_dim: int, latents: torch.Tensor | None = None, *, threads: int = 1
) -> torch.Tensor:
    """Generator inputs for sampling: per-tile seeded noise, plus the given latents (n, dim) for `rna`."""
    noise = seeded_noise(mode, seeds, input_dim, threads=threads)
    if mode != "rna":
        if latents is not None:
            raise ValueError(f"conditioning {mode!r} takes no expression")
        return noise
    if latents is None:
        raise ValueError("an RNA-GAN tile needs an expression profile (or its VAE latent)")
    latents = torch.as_tensor(latents, dtype=torch.float32).cpu()
    if latents.shape != noise.shape:
        raise ValueError(f"latents have shape {tuple(latents.shape)}, expected {tuple(noise.shape)}")
    return latents + noise
