"""Bringing real tiles into the catalog, through the same encoder as the synthetic ones."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from generation.models import Tile
from generation.services import TileOrigin, tiles_create

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
BATCH = 256


class TileSourceError(ValueError):
    """A tile source that cannot be read; names the file."""


def _folder_tiles(folder: Path) -> Iterator[tuple[np.ndarray, TileOrigin]]:
    if not folder.is_dir():
        raise TileSourceError(f"{folder}: not a folder")
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        try:
            with Image.open(path) as image:
                rgb = np.asarray(image.convert("RGB"))
        except (UnidentifiedImageError, OSError) as exc:
            raise TileSourceError(f"{path}: not a readable image ({exc})") from None
        yield rgb, TileOrigin(cohort=folder.name, sample=path.stem)


def _lmdb_tiles(path: Path) -> Iterator[tuple[np.ndarray, TileOrigin]]:
    from training.tiles import TileStore

    store = TileStore(path)
    for key, rgb in store.iter_rgb():
        yield rgb, TileOrigin(cohort=path.name, sample=key.split("/")[0])


def _import(tiles: Iterable[tuple[np.ndarray, TileOrigin]], *, tissue: str, limit: int | None) -> int:
    before = Tile.objects.filter(source=Tile.Source.REAL).count()
    stream = itertools.islice(tiles, limit) if limit else iter(tiles)
    while batch := list(itertools.islice(stream, BATCH)):
        images = [rgb for rgb, _ in batch]
        tiles_create(images=images, source=Tile.Source.REAL, tissue=tissue, origins=[o for _, o in batch])
    return Tile.objects.filter(source=Tile.Source.REAL).count() - before


def real_tiles_import_folder(*, folder: str | Path, tissue: str, limit: int | None = None) -> int:
    """Import every image under a folder; re-importing the same images adds nothing (unique sha256)."""
    return _import(_folder_tiles(Path(folder)), tissue=tissue, limit=limit)


def real_tiles_import_lmdb(*, path: str | Path, tissue: str, limit: int | None = None) -> int:
    return _import(_lmdb_tiles(Path(path)), tissue=tissue, limit=limit)
