"""Writing whole-slide images that OpenSlide reads: tiled, JPEG-compressed, pyramidal TIFF.

With `mpp` or `app_mag` the first directory carries an Aperio-style ImageDescription, which makes
OpenSlide's Aperio driver report `openslide.mpp-x` and `openslide.objective-power`; without either,
the file opens as a generic tiled TIFF with no resolution metadata at all.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from training.utils.io import atomic_path


def aperio_description(width: int, height: int, tile: int, quality: int, mpp: float | None, app_mag: float | None) -> str:
    fields = [f"Aperio Image Library v12.0.15 \r\n{width}x{height} [0,0 {width}x{height}] ({tile}x{tile}) JPEG/RGB Q={quality}"]
    if app_mag is not None:
        fields.append(f"AppMag = {app_mag:g}")
    if mpp is not None:
        fields.append(f"MPP = {mpp:.4f}")
    return "|".join(fields)


def write_pyramidal_tiff(
    path: str | os.PathLike[str],
    rgb: np.ndarray,
    *,
    mpp: float | None = 0.5,
    app_mag: float | None = 20,
    tile: int = 256,
    quality: int = 90,
    min_level_size: int = 512,
) -> Path:
    """Write an H × W × 3 uint8 image as a pyramid of 2× downsampled, tiled JPEG levels."""
    path = Path(path)
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an H × W × 3 image, got shape {rgb.shape}")
    height, width = rgb.shape[:2]
    aperio = mpp is not None or app_mag is not None
    options = dict(tile=(tile, tile), compression="jpeg", compressionargs={"level": quality},
                   photometric="rgb", metadata=None)
    with atomic_path(path) as tmp, tifffile.TiffWriter(tmp) as tif:
        description = aperio_description(width, height, tile, quality, mpp, app_mag) if aperio else None
        tif.write(rgb, description=description, **options)
        level = rgb
        while min(level.shape[:2]) // 2 >= min_level_size:
            h, w = level.shape[0] // 2, level.shape[1] // 2
            level = np.asarray(Image.fromarray(level).resize((w, h), Image.Resampling.BOX))
            sub = f"Aperio Image Library v12.0.15 \r\n{width}x{height} -> {w}x{h}" if aperio else None
            tif.write(level, description=sub, subfiletype=1, **options)
    return path
