"""Slides → tile store: the per-slide tiler and the parallel, resumable driver behind `rnagan tile-slides`.

Per slide: choose the level (training.data.slides), build the tissue mask, keep grid cells with at most
`max_background` background, then read, filter low contrast, JPEG-encode. With more candidates than
`max_tiles`, the kept tiles are the first `max_tiles` of a seeded permutation that pass the contrast
filter: candidates are read in batches of exactly as many as are still missing, so nothing read is
thrown away and the choice does not depend on batching. Reads go block by block (≈ 2048² px) so the
level's compressed tiles are each decoded about once.

Parallelism. Worker processes (spawned, one OpenSlide handle each) tile whole slides and send encoded
tiles back in chunks through a bounded queue; the main process is the store's only writer, since LMDB
allows one write transaction at a time. A slide is marked `partial` (its old keys deleted) before its
first chunk and `complete` after its last, so a rerun skips complete slides with the same params and
source size and redoes partial ones from scratch; a killed and resumed run ends with the same bytes as
an uninterrupted one. A slide that fails is recorded `failed` with its error and the others go on.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue as queue_module
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.data.jpeg import encode_store_jpeg, slide_jpeg_history
from training.data.samples import read_sample_attributes, slide_id_from_sample
from training.data.slides import (
    Grid,
    SlideError,
    SlideSource,
    choose_resolution,
    resize_tile,
    slide_id_from_path,
    slide_mpp,
)
from training.data.tile_store import TileStoreWriter
from training.data.tiling_params import TilingParams
from training.data.tissue_mask import tissue_mask

BLOCK_PX = 2048  # read granularity in level px
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601 grey
CRASH_ENV = "RNAGAN_TILING_CRASH_AFTER"  # "SLIDE_ID:N": exit hard after N chunks of that slide (tests)


def contrast(tiles: Sequence[np.ndarray]) -> np.ndarray:
    """Std of grey per tile, on every 4th px of a 256 tile (64² samples): enough to tell texture from blank."""
    step = max(1, tiles[0].shape[0] // 64)
    grey = np.stack([t[::step, ::step] for t in tiles]).astype(np.float32) @ LUMA
    return grey.reshape(len(tiles), -1).std(axis=1)


def _meta(slide_id: str, x: int, y: int, grid: Grid, tissue: float, tile_contrast: float) -> bytes:
    res = grid.resolution
    return json.dumps({
        "slide": slide_id, "x": x, "y": y, "level": res.level, "size": res.tile_size,
        "downsample": round(res.step0 / res.tile_size, 6), "mpp": round(res.tile_mpp, 6),
        "tissue_fraction": round(tissue, 4), "contrast": round(float(tile_contrast), 2),
    }, sort_keys=True, separators=(",", ":")).encode()


def _blocks(cells: np.ndarray, grid: Grid) -> Iterator[np.ndarray]:
    """Cell indices (row-major flat) grouped by read block, blocks and cells in row-major order."""
    span = max(1, BLOCK_PX // grid.resolution.read_size)
    rows, cols = np.divmod(np.sort(cells), grid.cols)
    block = (rows // span) * (-(-grid.cols // span)) + cols // span
    order = np.lexsort((cols, rows, block))
    cells, block = (rows * grid.cols + cols)[order], block[order]
    starts = np.flatnonzero(np.r_[True, block[1:] != block[:-1]])
    yield from np.split(cells, starts[1:])


def tile_slide(path: str | os.PathLike[str], params: TilingParams, *,
               chunk_size: int = 256) -> Iterator[tuple[str, Any]]:
    """Messages for one slide: ("chunk", [(key, jpeg, meta), …]) zero or more times, then ("done", summary)
    or ("failed", error). Errors of any kind end in "failed" naming the slide: one bad slide never stops a run."""
    path = Path(path)
    slide_id = slide_id_from_path(path)
    try:
        with SlideSource(path, reader=params.reader) as source:
            yield from _tile_source(source, slide_id, params, chunk_size)
    except SlideError as exc:
        yield "failed", str(exc) if path.name in str(exc) else f"{path.name}: {exc}"
    except Exception as exc:  # corrupt files raise from deep inside readers and codecs
        yield "failed", f"{path.name}: {type(exc).__name__}: {exc}"


def _tile_source(source: SlideSource, slide_id: str, params: TilingParams,
                 chunk_size: int) -> Iterator[tuple[str, Any]]:
    mpp, mpp_source = slide_mpp(source.slide, params.assume_mpp)
    res = choose_resolution(mpp, mpp_source, source.slide.level_downsamples, target_mpp=params.mpp,
                            tile_size=params.tile_size, tolerance=params.mpp_tolerance)
    grid = Grid.of(source.slide.level_dimensions[res.level], res)
    mask = tissue_mask(source, grid, threshold_min=params.threshold_min, threshold_max=params.threshold_max)
    limit = int(np.floor(params.max_background * mask.samples + 1e-9))
    candidates = np.flatnonzero(mask.background.ravel() <= limit)
    order = candidates
    if params.max_tiles and len(candidates) > params.max_tiles:
        order = np.random.default_rng([params.seed, zlib.crc32(slide_id.encode())]).permutation(candidates)
    wanted = params.max_tiles or len(candidates)
    reader = source.reader(res.level)
    size = res.read_size
    chunk: list[tuple[str, bytes, bytes]] = []
    kept = low_contrast = position = 0
    while kept < wanted and position < len(order):
        batch = order[position:position + wanted - kept]
        position += len(batch)
        for cells in _blocks(batch, grid):
            rows, cols = np.divmod(cells, grid.cols)
            rects = [(int(c) * size, int(r) * size, size, size) for r, c in zip(rows, cols, strict=True)]
            tiles = [resize_tile(reader.read(*rect), res.tile_size) for rect in rects]
            scores = contrast(tiles)
            for tile, score, row, col in zip(tiles, scores, rows, cols, strict=True):
                if score < params.min_contrast:
                    low_contrast += 1
                    continue
                x, y = grid.origin(int(col), int(row))
                tissue = 1 - mask.background[row, col] / mask.samples
                jpeg = encode_store_jpeg(tile, params.quality)
                chunk.append((f"{slide_id}/{x}_{y}", jpeg, _meta(slide_id, x, y, grid, tissue, score)))
                kept += 1
                if len(chunk) >= chunk_size:
                    yield "chunk", chunk
                    chunk = []
    if chunk:
        yield "chunk", chunk
    # The scanner's compression survives in a tile cut at the level's own pixels; resampling erases it.
    history = slide_jpeg_history(source.path, source.slide.level_dimensions[res.level]) if size == res.tile_size else None
    yield "done", {
        "jpeg_history": history.to_dict() if history else None,
        "count": kept, "level": res.level, "level_downsample": res.level_downsample, "read_size": size,
        "tile_size": res.tile_size, "slide_mpp": mpp, "mpp_source": mpp_source, "tile_mpp": round(res.tile_mpp, 6),
        "reader": reader.name, "grid": [grid.cols, grid.rows],
        "mask": {"level": mask.level, "otsu": mask.otsu, "threshold": mask.threshold},
        "candidates": int(len(candidates)), "read": kept + low_contrast, "low_contrast": low_contrast,
    }


# --- the driver ------------------------------------------------------------------------------------


@dataclass
class TilingSummary:
    tiled: dict[str, int] = field(default_factory=dict)  # slide → tiles written this run
    skipped: list[str] = field(default_factory=list)  # complete with the same params
    failed: dict[str, str] = field(default_factory=dict)  # slide → error
    seconds: float = 0.0

    @property
    def tiles(self) -> int:
        return sum(self.tiled.values())

    def describe(self) -> str:
        rate = f", {self.tiles / self.seconds:,.0f} tiles/s" if self.seconds > 0 and self.tiles else ""
        lines = [f"tiled {len(self.tiled)} slide(s): {self.tiles:,} tiles in {self.seconds:.1f} s{rate}; "
                 f"skipped {len(self.skipped)} already complete; failed {len(self.failed)}"]
        lines += [f"  FAILED {error}" for error in self.failed.values()]
        return "\n".join(lines)


def read_tissue_labels(path: str | os.PathLike[str], column: str = "SMTSD") -> dict[str, str]:
    """GTEx sample attributes → tissue per tissue-sample ID (the first three dash-separated parts of SAMPID,
    which is what a GTEx slide is named after). SMTSD by default, the names prepare-expression uses."""
    table = read_sample_attributes(path)
    if column not in table.columns:
        raise ValueError(f"{path}: no column {column} (found {', '.join(table.columns)})")
    return {slide_id_from_sample(sample): tissue for sample, tissue in zip(table["SAMPID"], table[column], strict=True)
            if tissue}


def tissue_for_slide(slide_id: str, labels: dict[str, str]) -> str | None:
    """Slides may be named by the tissue sample or by a full SAMPID; both start with the same three parts."""
    return labels.get("-".join(slide_id.split("-")[:3]))


class _Sink:
    """Applies workers' messages to the store, in the main process only."""

    def __init__(self, writer: Any, base: dict[str, dict[str, Any]], summary: TilingSummary, progress: Any):
        self.writer, self.base, self.summary, self.progress = writer, base, summary, progress
        self.begun: set[str] = set()
        self.finished: set[str] = set()
        self.chunks: dict[str, int] = {}
        crash = os.environ.get(CRASH_ENV, "")
        self.crash_slide, _, crash_chunks = crash.rpartition(":")
        self.crash_chunks = int(crash_chunks) if crash_chunks else -1

    def handle(self, slide_id: str, kind: str, payload: Any) -> None:
        if slide_id in self.finished:
            return
        record = self.base[slide_id]
        if kind == "failed":
            self.writer.put_record(slide_id, {**record, "status": "failed", "count": 0, "error": payload},
                                   drop_tiles=True)
            self.summary.failed[slide_id] = payload
            self.summary.tiled.pop(slide_id, None)
            self._finish(slide_id)
            return
        if slide_id not in self.begun:
            self.writer.begin_slide(slide_id, {**record, "count": 0})
            self.begun.add(slide_id)
        if kind == "chunk":
            self.writer.put_tiles(payload)
            self.chunks[slide_id] = self.chunks.get(slide_id, 0) + 1
            self.summary.tiled[slide_id] = self.summary.tiled.get(slide_id, 0) + len(payload)
            if slide_id == self.crash_slide and self.chunks[slide_id] >= self.crash_chunks:
                os._exit(75)  # fault injection: as if killed between two chunks
            self.progress.set_postfix(tiles=self.summary.tiles, refresh=False)
        elif kind == "done":
            self.writer.put_record(slide_id, {**record, **payload, "status": "complete"})
            self.summary.tiled.setdefault(slide_id, 0)
            self._finish(slide_id)

    def _finish(self, slide_id: str) -> None:
        self.finished.add(slide_id)
        self.progress.update(1)


_QUEUE: Any = None


def _init_worker(queue: Any) -> None:
    global _QUEUE
    _QUEUE = queue


def _work(path: str, params: dict[str, Any], chunk_size: int) -> None:
    slide_id = slide_id_from_path(path)
    for kind, payload in tile_slide(path, TilingParams(**params), chunk_size=chunk_size):
        _QUEUE.put((slide_id, kind, payload))


def tile_slides(paths: Sequence[Path], out: str | os.PathLike[str], params: TilingParams, *, workers: int = 1,
                tissue_of: Callable[[str], str | None] | None = None, progress: bool = True,
                chunk_size: int = 256) -> TilingSummary:
    """Tile every slide into the store at `out`, skipping slides already complete with these params.
    Workers are spawned, so a script calling this with workers > 1 needs the `if __name__ == "__main__":` guard."""
    from tqdm import tqdm


    by_id: dict[str, Path] = {}
    for path in paths:
        slide_id = slide_id_from_path(path)
        if slide_id in by_id:
            raise ValueError(f"two slides share the ID {slide_id!r}: {by_id[slide_id]} and {path}")
        by_id[slide_id] = Path(path)
    summary = TilingSummary()
    started = time.perf_counter()
    params_dict = params.to_dict()
    with TileStoreWriter(out) as writer:
        todo: dict[str, dict[str, Any]] = {}
        for slide_id, path in by_id.items():
            tissue = tissue_of(slide_id) if tissue_of else None
            record = {"slide_id": slide_id, "source": str(path.resolve()), "source_bytes": path.stat().st_size,
                      "tissue": tissue, "params": params_dict}
            old = writer.slide_record(slide_id)
            # A slide tiled before its JPEG history was recorded is tiled again (the catalog needs it).
            if (old and old["status"] == "complete" and old["params"] == params_dict
                    and old["source_bytes"] == record["source_bytes"] and "jpeg_history" in old):
                summary.skipped.append(slide_id)
                if old.get("tissue") != tissue:
                    writer.put_record(slide_id, {**old, "tissue": tissue})
                continue
            todo[slide_id] = record
        with tqdm(total=len(todo), unit="slide", disable=not progress or None, dynamic_ncols=True) as bar:
            sink = _Sink(writer, todo, summary, bar)
            if workers <= 1 or len(todo) <= 1:
                for slide_id in todo:
                    for kind, payload in tile_slide(by_id[slide_id], params, chunk_size=chunk_size):
                        sink.handle(slide_id, kind, payload)
            else:
                _run_pool([by_id[s] for s in todo], params_dict, min(workers, len(todo)), chunk_size, sink)
    summary.seconds = time.perf_counter() - started
    return summary


def _run_pool(paths: list[Path], params: dict[str, Any], workers: int, chunk_size: int, sink: _Sink) -> None:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue(maxsize=2 * workers)  # backpressure: workers wait while the writer is behind
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(queue,))
    try:
        futures = {pool.submit(_work, str(path), params, chunk_size): slide_id_from_path(path) for path in paths}
        while len(sink.finished) < len(paths):
            try:
                slide_id, kind, payload = queue.get(timeout=1.0)
            except queue_module.Empty:
                # A worker that died (a crash inside a codec) takes its slide down, and with
                # ProcessPoolExecutor every pending one; they are failed here and redone by a rerun.
                for future, slide_id in futures.items():
                    if future.done() and slide_id not in sink.finished and future.exception() is not None:
                        sink.handle(slide_id, "failed", f"{slide_id}: worker process failed: {future.exception()!r}")
                continue
            sink.handle(slide_id, kind, payload)
    except BaseException:
        # The writer failed or was interrupted: workers may be blocked on the full queue, so a normal
        # shutdown would wait forever. Stop the workers this pool started (3.11 has no public call).
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        raise
    pool.shutdown(wait=True)
