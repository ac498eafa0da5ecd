"""The tile store: one LMDB environment (a folder) written by `rnagan tile-slides`, read by TileDataset (training.data.dataset).

Layout (format 1):
- main database: `{slide_id}/{x}_{y}` → the tile as JPEG bytes (RGB, baseline, 4:2:0, quality from the
  run's params). x, y are the tile's level-0 top-left corner in the slide's pixels. LMDB also keeps the
  named databases' handles in the main database under the bare names `meta`, `slides`, `store`; a tile key
  always contains "/", so it can never be one of them.
- `meta` database: the same tile key → JSON {slide, x, y, level, downsample (level-0 px per tile px),
  mpp (µm per tile px), size, tissue_fraction, contrast}.
- `slides` database: `{slide_id}` → JSON index of the slide: status (`partial` while its tiles are being
  written, `complete`, or `failed` with `error`), tissue, count, the tiling params it was made with, the
  source file and its size, the level read, mask threshold and filter counts, and `jpeg_history` (the
  slide level's own JPEG compression, training/data/jpeg.py; null when none survives in the tiles).
- `store` database: `format` → JSON {"version": 1}.

All JSON is written with sorted keys and no timestamps, so a run that was killed and resumed leaves
exactly the bytes an uninterrupted run leaves. The store has one writer (the tiling command's main
process); readers open it read-only.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lmdb
import numpy as np
from PIL import Image

from training.utils.errors import RnaganError

FORMAT_VERSION = 1
META_DB, SLIDES_DB, STORE_DB = b"meta", b"slides", b"store"
INITIAL_MAP_SIZE = 2**30  # grown by doubling when full; the file on disk only holds what is written

log = logging.getLogger(__name__)


def tile_key(slide_id: str, x: int, y: int) -> str:
    return f"{slide_id}/{x}_{y}"


def dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def decode_jpeg(data: bytes) -> np.ndarray:
    """JPEG bytes → H × W × 3 uint8 RGB."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def _is_store(path: Path) -> bool:
    return (path / "data.mdb").is_file()


class TileStoreError(RnaganError, ValueError):
    """A folder whose data.mdb is not a readable tile store (random bytes, truncated, another LMDB)."""

    def __init__(self, path: Path, cause: Exception) -> None:
        reason = " ".join(str(cause).split()).removeprefix(f"{path}: ")
        super().__init__(f"{path}: not a readable tile store ({reason}); rebuild it with rnagan tile-slides")


def _open_for_writing(path: Path, **options: Any) -> lmdb.Environment:
    try:
        return lmdb.open(str(path), **options)
    except lmdb.Error as exc:
        raise TileStoreError(path, exc) from None


class TileStoreWriter:
    """The single writer. Every method is one transaction: a slide's old keys go in the same transaction
    that marks it partial, so a crash leaves either the old state or a `partial` slide to redo."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise FileExistsError(f"{self.path}: exists and is not a folder (a tile store is an LMDB folder)")
        if self.path.is_dir() and any(self.path.iterdir()) and not _is_store(self.path):
            raise FileExistsError(f"{self.path}: folder is not empty and holds no tile store")
        self.path.mkdir(parents=True, exist_ok=True)
        used = (self.path / "data.mdb").stat().st_size if _is_store(self.path) else 0
        self.env = _open_for_writing(self.path, map_size=max(INITIAL_MAP_SIZE, 2 * used), max_dbs=4,
                             subdir=True, readahead=False, meminit=False)
        with self.env.begin(write=True) as txn:
            self.meta = self.env.open_db(META_DB, txn=txn)
            self.slides = self.env.open_db(SLIDES_DB, txn=txn)
            self.store = self.env.open_db(STORE_DB, txn=txn)
            found = txn.get(b"format", db=self.store)
            if found is None:
                txn.put(b"format", dumps({"version": FORMAT_VERSION}), db=self.store)
            elif json.loads(found)["version"] != FORMAT_VERSION:
                raise ValueError(f"{self.path}: tile store format {json.loads(found)['version']}, "
                                 f"this code writes {FORMAT_VERSION}")

    def close(self) -> None:
        self.env.close()

    def __enter__(self) -> TileStoreWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, work: Callable[[lmdb.Transaction], None]) -> None:
        while True:
            try:
                with self.env.begin(write=True) as txn:
                    work(txn)
                return
            except lmdb.MapFullError:
                self.env.set_mapsize(self.env.info()["map_size"] * 2)

    def slide_record(self, slide_id: str) -> dict[str, Any] | None:
        with self.env.begin(db=self.slides) as txn:
            found = txn.get(slide_id.encode())
        return json.loads(found) if found is not None else None

    def _drop_tiles(self, txn: lmdb.Transaction, slide_id: str) -> None:
        prefix = f"{slide_id}/".encode()
        for db in (None, self.meta):
            cursor = txn.cursor(db) if db is not None else txn.cursor()
            if cursor.set_range(prefix):
                while cursor.key().startswith(prefix):
                    if not cursor.delete():
                        break

    def begin_slide(self, slide_id: str, record: dict[str, Any]) -> None:
        """Forget the slide's old tiles and mark it partial."""
        def work(txn: lmdb.Transaction) -> None:
            self._drop_tiles(txn, slide_id)
            txn.put(slide_id.encode(), dumps({**record, "status": "partial"}), db=self.slides)
        self._write(work)

    def put_tiles(self, tiles: Sequence[tuple[str, bytes, bytes]]) -> None:
        """(key, jpeg, meta JSON) triples, in one transaction."""
        def work(txn: lmdb.Transaction) -> None:
            for key, jpeg, meta in tiles:
                encoded = key.encode()
                txn.put(encoded, jpeg)
                txn.put(encoded, meta, db=self.meta)
        self._write(work)

    def put_record(self, slide_id: str, record: dict[str, Any], *, drop_tiles: bool = False) -> None:
        def work(txn: lmdb.Transaction) -> None:
            if drop_tiles:
                self._drop_tiles(txn, slide_id)
            txn.put(slide_id.encode(), dumps(record), db=self.slides)
        self._write(work)


class TileStore:
    """Read-only view of a tile store. `lock=False` (for data loading) assumes nobody writes meanwhile."""

    def __init__(self, path: str | os.PathLike[str], *, lock: bool = True):
        self.path = Path(path)
        if not _is_store(self.path):
            raise FileNotFoundError(f"{self.path}: no tile store here (expected an LMDB folder with data.mdb)")
        try:
            self.env = lmdb.open(str(self.path), readonly=True, lock=lock, max_dbs=4, subdir=True,
                                 readahead=False, max_readers=1024)
            # Opened without a caller's transaction: py-lmdb keeps such handles valid beyond it.
            self.meta_db = self.env.open_db(META_DB, create=False)
            self.slides_db = self.env.open_db(SLIDES_DB, create=False)
        except lmdb.Error as exc:
            raise TileStoreError(self.path, exc) from None

    def close(self) -> None:
        self.env.close()

    def __enter__(self) -> TileStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def slides(self) -> dict[str, dict[str, Any]]:
        with self.env.begin(db=self.slides_db) as txn:
            return {key.decode(): json.loads(value) for key, value in txn.cursor()}

    def keys(self, slide_id: str) -> list[str]:
        prefix = f"{slide_id}/".encode()
        found = []
        with self.env.begin() as txn:
            cursor = txn.cursor()
            if cursor.set_range(prefix):
                for key in cursor.iternext(keys=True, values=False):
                    if not key.startswith(prefix):
                        break
                    found.append(key.decode())
        return found

    def jpeg(self, key: str) -> bytes:
        with self.env.begin() as txn:
            found = txn.get(key.encode())
        if found is None:
            raise KeyError(f"{self.path}: no tile {key}")
        return found

    def meta(self, key: str) -> dict[str, Any]:
        with self.env.begin(db=self.meta_db) as txn:
            found = txn.get(key.encode())
        if found is None:
            raise KeyError(f"{self.path}: no metadata for tile {key}")
        return json.loads(found)
