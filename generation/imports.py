"""Bringing real tiles into the catalog: a tile store's JPEG bytes as they are (the store encoder is the
catalog's), a folder's images through that same encoder (generation/encoding.py)."""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from generation.encoding import JPEG_QUALITY, TileSizeError
from generation.models import Tile
from generation.services import TileOrigin, tiles_create
from training.utils.errors import RnaganError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
BATCH = 256


class TileSourceError(RnaganError, ValueError):
    """A tile source that cannot be read; names the file."""


def _folder_tiles(folder: Path) -> Iterator[tuple[np.ndarray, TileOrigin]]:  # pixels
    if not folder.is_dir():
        raise TileSourceError(f"{folder}: not a folder")
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        try:
            with Image.open(path) as image:
                rgb = np.asarray(image.convert("RGB"))
        except (UnidentifiedImageError, OSError) as exc:
            raise TileSourceError(f"{path}: not a readable image ({exc})") from None
        yield rgb, TileOrigin(cohort=folder.name, sample=path.stem)


def _lmdb_tiles(path: Path, tissue: str, exclude_slides: Collection[str] = ()) -> Iterator[tuple[bytes, TileOrigin]]:
    """Tiles of the store's complete slides labelled with `tissue` (or unlabelled), one slide after
    another in turn, so that a --limit draws from every slide rather than from the first few.
    `exclude_slides` stay out (slides kept for the /conditioning/ page, which must never show a dealt slide).

    The bytes become the catalog's files unchanged, so the store must have been written at the catalog's
    JPEG quality; any other is refused, naming the store and slide.
    """
    from training.data.tile_store import TileStore

    try:
        store = TileStore(path)
    except FileNotFoundError as exc:
        raise TileSourceError(str(exc)) from None
    with store:
        records = store.slides()
        chosen = sorted(
            slide for slide, record in records.items()
            if record.get("status") == "complete" and record.get("tissue") in (None, "", tissue)
            and slide not in exclude_slides
        )
        if not chosen:
            labels = sorted({str(r.get("tissue")) for r in records.values() if r.get("status") == "complete"})
            raise TileSourceError(f"{path}: no complete slides of tissue {tissue!r} (it holds: {', '.join(labels) or 'none'})")
        for slide in chosen:
            quality = (records[slide].get("params") or {}).get("quality", JPEG_QUALITY)
            if quality != JPEG_QUALITY:
                raise TileSourceError(
                    f"{path}: slide {slide} was tiled at JPEG quality {quality}; the catalog serves store bytes "
                    f"as they are and takes quality {JPEG_QUALITY} only (run tile-slides with --quality {JPEG_QUALITY})"
                )
        keys = [iter(store.keys(slide)) for slide in chosen]
        for key in (k for round_ in itertools.zip_longest(*keys) for k in round_ if k is not None):
            yield store.jpeg(key), TileOrigin(cohort=path.name, sample=key.split("/")[0])


def _import(tiles: Iterable[tuple[np.ndarray | bytes, TileOrigin]], *, tissue: str, limit: int | None,
            stored: bool) -> int:
    before = Tile.objects.filter(source=Tile.Source.REAL).count()
    stream = itertools.islice(tiles, limit) if limit else iter(tiles)
    while batch := list(itertools.islice(stream, BATCH)):
        items = [item for item, _ in batch]
        try:
            tiles_create(**{"jpegs" if stored else "images": items}, source=Tile.Source.REAL, tissue=tissue,
                         origins=[o for _, o in batch])
        except TileSizeError as exc:
            raise TileSourceError(str(exc)) from None
    return Tile.objects.filter(source=Tile.Source.REAL).count() - before


def real_tiles_import_folder(*, folder: str | Path, tissue: str, limit: int | None = None) -> int:
    """Import every image under a folder; re-importing the same images adds nothing (unique sha256)."""
    return _import(_folder_tiles(Path(folder)), tissue=tissue, limit=limit, stored=False)


def real_tiles_import_lmdb(*, path: str | Path, tissue: str, limit: int | None = None,
                           exclude_slides: Collection[str] = ()) -> int:
    return _import(_lmdb_tiles(Path(path), tissue, exclude_slides), tissue=tissue, limit=limit, stored=True)
