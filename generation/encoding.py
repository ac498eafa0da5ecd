"""The catalog's tile files: one size, one encoder, one compression history for every source.

A served file may differ between sources only in what its pixels show. docs/contracts.md ("One history
for every tile") sets the two chains side by side:

- real tiles from a tile store (`import_tiles --lmdb`): the store's JPEG bytes, written by the one store
  encoder (`training.data.jpeg.encode_store_jpeg`, q90 4:2:0) from the slide's decoded pixels, *are* the
  catalog file: no second encoding. A store tile larger than the catalog size is downsampled (Lanczos)
  and encoded once more by the same encoder; a smaller one is refused.
- synthetic tiles: the generator's pixels, exactly the catalog size (never resized), get a JPEG round
  trip that repeats the compression of the slides the generator was trained on (the checkpoint's
  `source_jpeg`, measured when tiling), then the same store encoder.
- folder imports (`import_tiles --folder`): pixels of the catalog size (or larger, downsampled), one
  pass of the store encoder; their earlier history is whatever the files had, so audit them.

Both real and synthetic files are then served blinded (generation/serving.py). libjpeg-turbo on the
CPU for both: nvJPEG would be faster on a GPU but writes other tables than the CPU path.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from training.data.jpeg import JpegHistory, encode_store_jpeg, jpeg_round_trip

log = logging.getLogger(__name__)

JPEG_QUALITY = 90  # of the store encoder, for every catalog tile
MEDIA_TYPE = "image/jpeg"
EXTENSION = ".jpg"


class TileSizeError(ValueError):
    """A tile smaller than (or, from a generator, different from) the catalog size; names its origin."""


@dataclass(frozen=True)
class EncodedTile:
    data: bytes
    sha256: str
    width: int
    height: int


def _encoded(data: bytes, size: int) -> EncodedTile:
    return EncodedTile(data=data, sha256=hashlib.sha256(data).hexdigest(), width=size, height=size)


def _check_rgb(rgb: np.ndarray, name: str) -> None:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"{name}: a tile must be an H×W×3 uint8 array, got {rgb.dtype} {rgb.shape}")


def downsample_to(rgb: np.ndarray, size: int, *, name: str) -> np.ndarray:
    """A square tile at `size`, downsampled (Lanczos) when larger; a smaller or oblong one is refused."""
    _check_rgb(rgb, name)
    height, width = rgb.shape[:2]
    if (height, width) == (size, size):
        return rgb
    if height != width or height < size:
        raise TileSizeError(
            f"{name}: tile of {width}×{height} px; the catalog takes {size}×{size} (RNAGAN_TILE_SIZE) "
            "and never upsamples: an enlarged tile is softer and smaller on disk than its peers"
        )
    return np.asarray(Image.fromarray(rgb, "RGB").resize((size, size), Image.Resampling.LANCZOS))


def encode_synthetic(rgb: np.ndarray, size: int, *, history: JpegHistory | None, name: str) -> EncodedTile:
    """A generator's tile: exactly `size` px, round-tripped through its training slides' JPEG, then the
    store encoder."""
    _check_rgb(rgb, name)
    if rgb.shape[:2] != (size, size):
        raise TileSizeError(
            f"{name}: the generator draws {rgb.shape[1]}×{rgb.shape[0]} px tiles, the catalog takes "
            f"{size}×{size} (RNAGAN_TILE_SIZE); use a generator trained at that size"
        )
    return _encoded(encode_store_jpeg(jpeg_round_trip(rgb, history), JPEG_QUALITY), size)


def encode_pixels(rgb: np.ndarray, size: int, *, name: str) -> EncodedTile:
    """Pixels of unknown history (a folder import): downsampled if larger, one pass of the store encoder."""
    return _encoded(encode_store_jpeg(downsample_to(rgb, size, name=name), JPEG_QUALITY), size)


def store_tile(jpeg: bytes, size: int, *, name: str) -> EncodedTile:
    """A tile store's JPEG as a catalog file: the same bytes when it is the catalog size, else downsampled
    and encoded once by the store encoder."""
    with Image.open(io.BytesIO(jpeg)) as image:
        width, height = image.size
        if (width, height) == (size, size):
            return _encoded(jpeg, size)
        rgb = np.asarray(image.convert("RGB"))
    return encode_pixels(rgb, size, name=name)


def store_history(path: str | Path, *, tissue: str | None = None) -> JpegHistory | None:
    """The JPEG history most of a tile store's complete slides (of `tissue`, when given) share.

    Raises FileNotFoundError naming the path when there is no store there, ValueError when the store
    predates the history records.
    """
    from training.data.tile_store import TileStore

    with TileStore(path) as store:
        records = [r for r in store.slides().values() if r.get("status") == "complete"
                   and (tissue is None or r.get("tissue") in (None, "", tissue))]
    if any("jpeg_history" not in r for r in records):
        raise ValueError(f"{path}: tiled before slides' JPEG history was recorded; run `rnagan tile-slides` on "
                         "it again (finished slides are redone once to record it)")
    found = Counter(
        tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in r["jpeg_history"].items()))
        if r.get("jpeg_history") else None
        for r in records
    )
    if not found:
        return None
    common, _ = found.most_common(1)[0]
    return JpegHistory.from_dict(dict(common)) if common else None
