"""The one tile encoder. Real and synthetic tiles both pass through `encode_tile`, so nothing about a
file (format, size, quantisation tables, chroma subsampling, metadata) can tell a viewer its source.

Pillow's libjpeg-turbo at a fixed quality and 4:2:0 subsampling, baseline, no EXIF, no ICC profile, no
comments: the only header is the JFIF APP0 segment every tile shares. The GPU's nvJPEG would be faster
but writes different tables and headers than the CPU path that imports real tiles, so it would leak
the source; throughput comes from encoding in parallel threads instead (Pillow releases the GIL; see
generation.services.tiles_create).
"""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

JPEG_QUALITY = 90
JPEG_SUBSAMPLING = 2  # 4:2:0
MEDIA_TYPE = "image/jpeg"
EXTENSION = ".jpg"


class UpsamplingWarning(UserWarning):
    """A tile smaller than the catalog size was enlarged: it will look softer than its peers."""


@dataclass(frozen=True)
class EncodedTile:
    data: bytes
    sha256: str
    width: int
    height: int


def to_catalog_size(rgb: np.ndarray, size: int) -> np.ndarray:
    """Return an H×W×3 uint8 tile at size × size, resizing (Lanczos) when it differs."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"a tile must be an H×W×3 uint8 array, got {rgb.dtype} {rgb.shape}")
    height, width = rgb.shape[:2]
    if (height, width) == (size, size):
        return rgb
    if height < size or width < size:
        warnings.warn(
            f"tile of {width}×{height} px upsampled to the catalog size {size}×{size}", UpsamplingWarning, stacklevel=2
        )
    image = Image.fromarray(rgb, "RGB").resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(image)


def encode_tile(rgb: np.ndarray, size: int) -> EncodedTile:
    tile = to_catalog_size(np.ascontiguousarray(rgb), size)
    buffer = io.BytesIO()
    Image.fromarray(tile, "RGB").save(
        buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=JPEG_SUBSAMPLING,
        optimize=False, progressive=False,
    )
    data = buffer.getvalue()
    return EncodedTile(data=data, sha256=hashlib.sha256(data).hexdigest(), width=size, height=size)
