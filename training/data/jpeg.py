"""JPEG history: the one store encoder, the slides' own compression, and a round trip that repeats it.

A served tile's pixels carry every lossy step they went through, and JPEG forensics reads those steps
back (re-encoding error, blockiness, double-quantisation traces). So that only the content can tell a
real tile from a synthetic one, both pass through the same chain (docs/contracts.md, "One history for
every tile"):

    real:       scanner JPEG (quality Qs, the slide's tables) → decode → `encode_store_jpeg` (q90)
    synthetic:  generator pixels → `jpeg_round_trip` at Qs      →         `encode_store_jpeg` (q90)

`slide_jpeg_history` estimates Qs (with the slide's chroma subsampling and colour space) from a slide
level's JPEG tables when tiling; the tile store records it per slide; the catalog gives each generator
the history of the slides it was trained on. A tile that was resampled from its slide level (a 40×
slide read at 20×) keeps no 8 × 8 trace of the scanner's compression, so its history is None and the
synthetic chain then has no round trip either.
"""

from __future__ import annotations

import functools
import io
import os
from dataclasses import asdict, dataclass
from typing import Any

import imagecodecs
import numpy as np
from PIL import Image, JpegImagePlugin

STORE_SUBSAMPLING = (2, 2)  # 4:2:0
_PHOTOMETRIC_YCBCR, _PHOTOMETRIC_RGB = 6, 2
_TIFF_JPEG = 7


def encode_store_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """The one store encoder: libjpeg-turbo, baseline, 4:2:0, YCbCr, JFIF header, no metadata.

    Every tile the catalog serves was last encoded here (tile-slides for real tiles, the generation
    workers for synthetic ones), so quantisation and Huffman tables and headers are one for all.
    """
    rgb = np.ascontiguousarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"a tile must be an H×W×3 uint8 array, got {rgb.dtype} {rgb.shape}")
    return bytes(imagecodecs.jpeg8_encode(rgb, level=quality, subsampling=STORE_SUBSAMPLING))


@dataclass(frozen=True)
class JpegHistory:
    """How a slide level's tiles were compressed: enough to repeat it on other pixels."""

    quality: int  # the libjpeg quality whose luminance table is nearest the slide's
    subsampling: tuple[int, int]  # chroma (horizontal, vertical) factors, (1, 1) for none
    colorspace: str  # "ycbcr" or "rgb" (Aperio often compresses RGB without a colour transform)
    exact: bool  # the slide's luminance table is exactly libjpeg's at `quality`

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "subsampling": list(self.subsampling)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> JpegHistory | None:
        if not data:
            return None
        return cls(quality=int(data["quality"]), subsampling=tuple(data["subsampling"]),
                   colorspace=str(data["colorspace"]), exact=bool(data.get("exact", True)))


@functools.cache
def _libjpeg_luma_tables() -> dict[int, tuple[int, ...]]:
    # The tables libjpeg writes at each quality, read back the way a slide's are: no hand-copied table.
    tables = {}
    flat = Image.new("RGB", (8, 8))
    for quality in range(1, 101):
        buffer = io.BytesIO()
        flat.save(buffer, format="JPEG", quality=quality)
        with Image.open(buffer) as image:
            tables[quality] = tuple(image.quantization[0])
    return tables


def estimate_quality(jpeg: bytes) -> tuple[int, bool]:
    """(libjpeg quality nearest the JPEG's luminance table, whether it matches exactly)."""
    with Image.open(io.BytesIO(jpeg)) as image:
        luma = np.asarray(image.quantization[0], dtype=np.int64)
    errors = {q: int(np.abs(luma - np.asarray(t)).sum()) for q, t in _libjpeg_luma_tables().items()}
    best = min(errors, key=lambda q: (errors[q], -q))
    return best, errors[best] == 0


def slide_jpeg_history(path: str | os.PathLike[str], level_size: tuple[int, int]) -> JpegHistory | None:
    """The JPEG history of a TIFF-family slide's level of the given (width, height), from its JPEG tables
    and first stored tile; None when the level is not JPEG-compressed or the file is not a TIFF."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            pages = [p for p in tif.pages if p.is_tiled and (p.imagewidth, p.imagelength) == tuple(level_size)]
            if not pages or pages[0].compression != _TIFF_JPEG:
                return None
            page = pages[0]
            index = next((i for i, count in enumerate(page.databytecounts) if count), None)
            if index is None:
                return None
            handle = tif.filehandle
            handle.seek(page.dataoffsets[index])
            data = handle.read(page.databytecounts[index])
            tables = page.jpegtables
            photometric = int(page.photometric)
    except (tifffile.TiffFileError, OSError, ValueError):
        return None
    if tables:  # an abbreviated tile stream: splice the shared tables in before its frame
        data = bytes(tables)[:-2] + data[2:]
    try:
        quality, exact = estimate_quality(data)
        with Image.open(io.BytesIO(data)) as image:
            sampling = JpegImagePlugin.get_sampling(image)
    except (OSError, KeyError, IndexError, ValueError):
        return None
    subsampling = {0: (1, 1), 1: (2, 1), 2: (2, 2)}.get(sampling, (2, 2))
    colorspace = "rgb" if photometric == _PHOTOMETRIC_RGB else "ycbcr"
    return JpegHistory(quality=quality, subsampling=subsampling, colorspace=colorspace, exact=exact)


def jpeg_round_trip(rgb: np.ndarray, history: JpegHistory | None) -> np.ndarray:
    """The pixels after the compression a slide with this history applies; unchanged when None.

    The round trip is aligned to the tile's own 8 × 8 grid, as a real tile cut at the slide level's
    tile boundaries is (tile sizes are multiples of 16).
    """
    if history is None:
        return rgb
    rgb = np.ascontiguousarray(rgb)
    if history.colorspace == "rgb":
        data = imagecodecs.jpeg8_encode(rgb, level=history.quality, subsampling=history.subsampling,
                                        colorspace="RGB", outcolorspace="RGB")
        return np.asarray(imagecodecs.jpeg8_decode(data, colorspace="RGB", outcolorspace="RGB"))
    data = imagecodecs.jpeg8_encode(rgb, level=history.quality, subsampling=history.subsampling)
    return np.asarray(imagecodecs.jpeg8_decode(data))
