"""The tile store as a torch Dataset for the GAN loop (the store itself, training.data.tile_store, needs no torch)."""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.data.slides import resize_tile
from training.data.tile_store import TileStore, decode_jpeg

log = logging.getLogger(__name__)

def _as_set(value: str | Iterable[str] | None) -> set[str] | None:
    if value is None:
        return None
    return {value} if isinstance(value, str) else set(value)


def _expression_row(expression: Any, slide_id: str) -> int | None:
    try:
        row = expression.row_of_slide(slide_id)
    except KeyError:
        return None
    return None if row is None or int(row) < 0 else int(row)


class TileDataset(torch.utils.data.Dataset):
    """Tiles of the complete slides in a store, as dicts {image: uint8 3×H×W RGB tensor, slide_id, key,
    expression_row}. The LMDB handle is opened lazily in each process and dropped when pickled, so it
    works in DataLoader workers. With `expression` (a PreparedExpression), each tile gets its slide's
    row in the expression matrix and slides without one are left out (counted in `dropped_slides`)."""

    def __init__(self, path: str | os.PathLike[str], *, tissue: str | Iterable[str] | None = None,
                 slides: Iterable[str] | None = None, expression: Any = None, image_size: int | None = None,
                 max_tiles_per_slide: int | None = None, seed: int = 0):
        self.path = Path(path)
        self.image_size = image_size
        tissues, wanted = _as_set(tissue), _as_set(slides)
        self.dropped_slides: list[str] = []
        self.dropped_tiles = 0
        keys: list[str] = []
        slide_of: list[str] = []
        rows: dict[str, int] = {}
        with TileStore(self.path, lock=False) as store:
            records = store.slides()
            if wanted is not None and (unknown := sorted(wanted - set(records))):
                raise KeyError(f"{self.path}: no slide(s) {', '.join(unknown[:5])} in the tile store")
            for slide_id, record in sorted(records.items()):
                if record["status"] != "complete" or (wanted is not None and slide_id not in wanted):
                    continue
                if tissues is not None and record.get("tissue") not in tissues:
                    continue
                slide_keys = store.keys(slide_id)
                if expression is not None:
                    row = _expression_row(expression, slide_id)
                    if row is None:
                        self.dropped_slides.append(slide_id)
                        self.dropped_tiles += len(slide_keys)
                        continue
                    rows[slide_id] = row
                if max_tiles_per_slide is not None and len(slide_keys) > max_tiles_per_slide:
                    rng = np.random.default_rng([seed, zlib.crc32(slide_id.encode())])
                    chosen = np.sort(rng.choice(len(slide_keys), max_tiles_per_slide, replace=False))
                    slide_keys = [slide_keys[i] for i in chosen]
                keys.extend(slide_keys)
                slide_of.extend([slide_id] * len(slide_keys))
        if self.dropped_slides:
            log.warning("%s: left out %d tiles of %d slides with no expression row (%s%s)", self.path,
                        self.dropped_tiles, len(self.dropped_slides), ", ".join(self.dropped_slides[:5]),
                        ", …" if len(self.dropped_slides) > 5 else "")
        self.keys = keys
        self.slide_ids = slide_of
        self._rows = rows
        self._store: TileStore | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_store"], state["_pid"] = None, None
        return state

    def _open(self) -> TileStore:
        # Reopen after a fork too: an LMDB handle must not cross into a child process.
        if self._store is None or self._pid != os.getpid():
            self._store = TileStore(self.path, lock=False)
            self._pid = os.getpid()
        return self._store

    def __getitem__(self, index: int) -> dict[str, Any]:
        key = self.keys[index]
        rgb = decode_jpeg(self._open().jpeg(key))
        if self.image_size is not None and rgb.shape[:2] != (self.image_size, self.image_size):
            rgb = resize_tile(rgb, self.image_size)
        slide_id = self.slide_ids[index]
        return {
            "image": torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))),
            "slide_id": slide_id,
            "key": key,
            "expression_row": self._rows.get(slide_id, -1),
        }
