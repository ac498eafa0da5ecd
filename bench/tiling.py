"""Kept tiles per second of `rnagan tile-slides`, end to end: open, tissue mask, read, contrast filter,
JPEG encode and the LMDB write, as the command runs them.

Builds once and caches var/bench/tiling-20480.svs: a 20,480² px H&E-like synthetic slide at 20×
(0.5 µm/px), an Aperio-style pyramid of 2× levels in 256 px JPEG tiles at Q70 (Aperio's usual), about
nine tenths tissue. Then it times
  1. one process, default options (at most 4,000 tiles),
  2. one process, every tile that passes the filters (--max-tiles 0),
  3. all cores: one hard-linked copy of the slide per core (distinct slide IDs), --workers = cores,
  4. one process through OpenSlide's read_region instead of the direct TIFF reader (for comparison),
and the per-tile cost of each stage, so the figures can be explained. Each run prints wall-clock kept
tiles/s and kept tiles per CPU-second (this process and its workers): on a shared machine the latter
is the per-core figure. Every run includes opening, the mask, the LMDB writes and, with workers,
spawning them.

    .venv/bin/python bench/tiling.py               # about a minute to build the slide the first time
    .venv/bin/python bench/tiling.py --size 8192   # a smaller slide, for a quick look
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.data.slides import SlideSource  # noqa: E402
from training.data.tiling import contrast, tile_slides  # noqa: E402
from training.data.tiling_params import TilingParams  # noqa: E402
from training.data.wsi import write_pyramidal_tiff  # noqa: E402

VAR = Path(os.environ.get("RNAGAN_VAR_DIR", ROOT / "var")) / "bench"
PINK, PURPLE, GLASS = (np.array(c, np.float32) for c in ((232, 160, 195), (110, 60, 150), (242, 240, 244)))


def draw_band(rng: np.random.Generator, top: int, height: int, size: int) -> np.ndarray:
    """Rows [top, top + height) of the scene: pink stroma, purple nuclei, white glass around and in holes."""
    def smooth(scale: int) -> np.ndarray:
        small = (rng.random((height // scale + 3, size // scale + 3)) * 255).astype(np.uint8)
        grown = Image.fromarray(small).resize(((size // scale + 3) * scale, (height // scale + 3) * scale),
                                              Image.Resampling.BICUBIC)
        return np.asarray(grown)[scale:scale + height, scale:scale + size]

    y, x = np.ogrid[top:top + height, 0:size]
    half = size / 2
    radius = ((x - half) / half) ** 2 + ((y - half) / half) ** 2 + 0.25 * np.sin(x / 900) * np.cos(y / 1300)
    tissue = (radius < 1.45) & (smooth(256) > 40)
    band = PINK * (0.85 + 0.3 / 255 * smooth(48)[..., None].astype(np.float32))
    band = np.where((smooth(6) > 190)[..., None], PURPLE, band)
    band = np.where(tissue[..., None], band, GLASS)
    band += rng.normal(0, 3, (height, size, 1)).astype(np.float32)
    return np.clip(band, 0, 255).astype(np.uint8)


def bench_slide(size: int) -> Path:
    path = VAR / f"tiling-{size}.svs"
    if path.exists():
        return path
    print(f"building {path} ({size:,}² px; cached for later runs) …", flush=True)
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    scene = np.empty((size, size, 3), np.uint8)
    for top in range(0, size, 1024):
        scene[top:top + 1024] = draw_band(rng, top, min(1024, size - top), size)
    write_pyramidal_tiff(path, scene, mpp=0.5, app_mag=20, quality=70)
    print(f"  built in {time.perf_counter() - started:.0f} s, {path.stat().st_size / 2**20:.0f} MiB", flush=True)
    return path


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the pool's workers, once shut down)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_run(label: str, paths: list[Path], out: Path, params: TilingParams, workers: int = 1) -> float:
    """Wall-clock kept tiles/s, and kept tiles per CPU-second: on a shared machine the second is the
    per-core speed, since waiting for a core costs wall time but no CPU time."""
    shutil.rmtree(out, ignore_errors=True)
    started, cpu = time.perf_counter(), cpu_seconds()
    summary = tile_slides(paths, out, params, workers=workers, progress=False)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    if summary.failed:
        raise SystemExit(f"tiling failed: {summary.failed}")
    rate = summary.tiles / seconds
    print(f"{label:<48} {summary.tiles:>7,} tiles {seconds:>6.1f} s {rate:>6,.0f} tiles/s"
          f" {summary.tiles / cpu:>6,.0f} per CPU-s", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    return rate


def stage_costs(path: Path, n: int = 400) -> None:
    """Milliseconds per 256 px tile of each stage, on n tiles from the middle of the slide."""
    import imagecodecs

    with SlideSource(path) as fast, SlideSource(path, reader="openslide") as slow:
        width = fast.slide.dimensions[0]
        cols = int(np.sqrt(n))
        x0 = (width // 2 // 256 - cols // 2) * 256
        rects = [(x0 + 256 * (i % cols), x0 + 256 * (i // cols), 256, 256) for i in range(cols * cols)]
        stages = {}
        started = time.perf_counter()
        tiles = [fast.reader(0).read(*r) for r in rects]
        stages["read: decode the level's own JPEG tiles (tifffile + libjpeg-turbo)"] = time.perf_counter() - started
        started = time.perf_counter()
        for r in rects[: len(rects) // 4]:
            slow.reader(0).read(*r)
        stages["read: one OpenSlide read_region per tile"] = (time.perf_counter() - started) * 4
        started = time.perf_counter()
        block = slow.reader(0).read(x0, x0, 256 * cols, 256 * cols)
        stages["read: one OpenSlide read_region per block, cut"] = time.perf_counter() - started
        assert np.array_equal(block[:256, :256], tiles[0])
        started = time.perf_counter()
        contrast(tiles)
        stages["contrast filter (std of grey)"] = time.perf_counter() - started
        started = time.perf_counter()
        encoded = [imagecodecs.jpeg8_encode(t, level=90) for t in tiles]
        stages["JPEG encode, quality 90 (libjpeg-turbo)"] = time.perf_counter() - started
    print(f"\nper-tile cost of each stage ({len(rects)} tiles, one core; mean JPEG "
          f"{np.mean([len(e) for e in encoded]) / 1024:.1f} KiB):")
    for name, seconds in stages.items():
        print(f"  {name:<66} {seconds / len(rects) * 1e3:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=20480, help="slide side in px (default 20480)")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="workers for the all-cores run")
    args = parser.parse_args()
    VAR.mkdir(parents=True, exist_ok=True)
    slide = bench_slide(args.size)
    print(f"slide {slide.name}: {args.size:,}² px at 0.5 µm/px; {os.cpu_count()} cores seen "
          f"(load average {os.getloadavg()[0]:.1f}: other work on the machine slows every figure)\n")
    with tempfile.TemporaryDirectory(dir=VAR) as scratch:
        scratch = Path(scratch)
        every = TilingParams(max_tiles=0)
        timed_run("1 process, default options (≤ 4,000 tiles)", [slide], scratch / "s", TilingParams())
        timed_run("1 process, every tile", [slide], scratch / "s", every)
        copies = []
        for i in range(args.cores):
            copy = scratch / f"copy{i}.svs"
            os.link(slide, copy)
            copies.append(copy)
        total = timed_run(f"{args.cores} workers, {args.cores} slides, every tile", copies, scratch / "s", every,
                          workers=args.cores)
        print(f"{'':<48} {'':>7}       {'':>6}   {total / args.cores:>6,.0f} tiles/s a worker", flush=True)
        timed_run("1 process, OpenSlide read_region, ≤ 1,000 tiles", [slide], scratch / "s",
                  TilingParams(max_tiles=1000, reader="openslide"))
    stage_costs(slide)


if __name__ == "__main__":
    main()
