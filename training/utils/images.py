"""Tiles as images: a generator run over inputs in chunks to uint8 tiles, sample grids and PNG files."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image

from training.utils.device import autocast
from training.utils.io import atomic_path


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
            with autocast(device):
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
