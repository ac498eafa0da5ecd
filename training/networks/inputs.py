"""What the generator is fed, for each arm of the comparison (the input contract of the networks).

- `none` (GAN): z ~ N(0, I) of the input dimension.
- `rna` (RNA-GAN): the VAE mean μ of the tile's own expression sample, plus noise uniform in
  [−0.3, 0.3].
- `noise` (the paper's ablation): the narrow uniform noise alone.
- `rna-proj` (conditioned RNA-GAN): the same VAE mean, with the noise either added narrowly as in `rna`
  (`noise_dim` 0) or, with `noise_dim` > 0, as `noise_dim` standard-normal values concatenated after the
  latent (input size latent + noise_dim). Its critic sees the latent too (training.networks.gan).

Nothing here normalises across the batch: every input row is a function of its own sample and its own
noise only. Sampling draws each tile's noise from its own CPU `torch.Generator` seeded with that tile's
seed, so a tile never depends on its batch or device. Training (training.loops.conditioning) draws the
noise for a whole batch from one device generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import torch

MODES = ("none", "rna", "noise", "rna-proj")
# The catalog knows GAN and RNA-GAN: both RNA arms draw tiles from a sample's expression.
KINDS = {"none": "gan", "rna": "rnagan", "noise": "noise", "rna-proj": "rnagan"}
EXPRESSION_MODES = ("rna", "rna-proj")
NOISE_HALF_WIDTH = 0.3


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"conditioning must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def takes_expression(mode: str) -> bool:
    """Whether an arm draws its tiles from a sample's expression (its VAE latent)."""
    return check_mode(mode) in EXPRESSION_MODES


def latent_dim_of(mode: str, input_dim: int, noise_dim: int) -> int:
    """The VAE latent size inside a generator input of `input_dim` (concatenated noise excluded)."""
    return input_dim - noise_dim if mode == "rna-proj" else input_dim


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
    mode: str, seeds: Sequence[int], input_dim: int, latents: torch.Tensor | None = None, *, noise_dim: int = 0,
    threads: int = 1,
) -> torch.Tensor:
    """Generator inputs for sampling: per-tile seeded noise, and the given latents (n, latent) for the RNA arms."""
    if not takes_expression(mode):
        if latents is not None:
            raise ValueError(f"conditioning {mode!r} takes no expression")
        return seeded_noise(mode, seeds, input_dim, threads=threads)
    if latents is None:
        raise ValueError("an RNA-GAN tile needs an expression profile (or its VAE latent)")
    latents = torch.as_tensor(latents, dtype=torch.float32).cpu()
    width = latent_dim_of(mode, input_dim, noise_dim)
    if latents.shape != (len(seeds), width):
        raise ValueError(f"latents have shape {tuple(latents.shape)}, expected {(len(seeds), width)}")
    if mode == "rna-proj" and noise_dim > 0:
        return torch.cat([latents, seeded_noise("none", seeds, noise_dim, threads=threads)], 1)
    return latents + seeded_noise("rna", seeds, input_dim, threads=threads)
