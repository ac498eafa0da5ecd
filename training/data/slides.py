"""Whole-slide images: finding and opening them, choosing the level for a target µm/px, reading pixels
fast (the tissue mask that decides which grid cells are worth a tile is training.data.tissue_mask).

Geometry. The target is `mpp` µm/px (0.5 = 20×). The slide's level-0 µm/px comes from `openslide.mpp-x`,
else from `openslide.objective-power` (10 / power: 20× ≈ 0.5), else from --assume-mpp; metadata always
wins over the assumption. We read at the lowest-resolution level that is still at least as fine as the
target (within `tolerance`, 5 %: scanners report 0.499 or 0.2527 for nominal 0.5 and 0.25), and a tile is
a `read_size` × `read_size` square of that level resized to `tile_size` (read_size == tile_size when the
level already matches, 512 → 256 for a 40× slide without a 20× level). The grid is every whole,
non-overlapping square from the level's origin; a tile's key uses its level-0 top-left corner.

Reading. OpenSlide's `read_region` composites through cairo and costs ~2.5 ms per 256² tile here even
when cached (a 2048² block at once costs as much per tile), which alone caps tiling below 400 tiles/s
per core. For the formats whose levels are plain tiled TIFF pages (Aperio .svs, generic tiled TIFF) we
decode the level's own tiles with tifffile and imagecodecs (libjpeg-turbo), each at most once thanks to
a small LRU cache, and cut cells from them. On opening, a region read both ways must be bit-identical (it
is with the builds we ship: the whole CMU-1-Small-Region level matches); otherwise, and for every other
format, we read through OpenSlide.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openslide
from PIL import Image

from training.utils.errors import RnaganError

# Formats OpenSlide opens, as found when scanning a folder. DICOM is left out of folder scans because
# every file of one DICOM slide would be listed; name one of its files explicitly instead.
SLIDE_EXTENSIONS = (".svs", ".tif", ".tiff", ".ndpi", ".vms", ".vmu", ".scn", ".mrxs", ".svslide", ".bif")
FAST_VENDORS = {"aperio", "generic-tiff"}  # OpenSlide levels are exactly the tiled TIFF pages
TIFF_CACHE_BYTES = 96 * 2**20


class SlideError(RnaganError):
    """A slide that cannot be tiled. The message names the slide."""


def slide_id_from_path(path: str | os.PathLike[str]) -> str:
    return Path(path).stem


def find_slides(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files given by name, plus slide files found (recursively) in folders given; sorted, no duplicates."""
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in SLIDE_EXTENSIONS:
                    found.setdefault(child.resolve(), None)
        elif path.exists():
            found.setdefault(path.resolve(), None)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return sorted(found)


# --- resolution ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolution:
    level: int
    level_downsample: float  # level-0 px per px of the level read
    read_size: int  # level px per tile side
    tile_size: int
    slide_mpp: float  # µm per level-0 px
    mpp_source: str  # "openslide.mpp-x", "openslide.objective-power" or "assumed"

    @property
    def step0(self) -> float:
        """Level-0 px per tile side."""
        return self.read_size * self.level_downsample

    @property
    def tile_mpp(self) -> float:
        return self.slide_mpp * self.step0 / self.tile_size


def slide_mpp(properties: dict[str, str] | openslide.OpenSlide, assume_mpp: float | None) -> tuple[float, str]:
    props = properties.properties if isinstance(properties, openslide.OpenSlide) else properties
    for key, convert in ((openslide.PROPERTY_NAME_MPP_X, float),
                         (openslide.PROPERTY_NAME_OBJECTIVE_POWER, lambda v: 10.0 / float(v))):
        try:
            value = convert(props[key])
        except (KeyError, ValueError, ZeroDivisionError):
            continue
        if math.isfinite(value) and value > 0:
            return value, key
    if assume_mpp is not None:
        return float(assume_mpp), "assumed"
    raise SlideError("no resolution metadata (neither openslide.mpp-x nor openslide.objective-power); "
                     "pass --assume-mpp if you know its µm/px")


def choose_resolution(mpp: float, mpp_source: str, downsamples: Sequence[float], *, target_mpp: float,
                      tile_size: int, tolerance: float) -> Resolution:
    factor = target_mpp / mpp  # level-0 px per output px
    if factor < 1 - tolerance:
        raise SlideError(f"slide is {mpp:g} µm/px, coarser than the {target_mpp:g} µm/px asked for; "
                         "upsampling would invent detail")
    usable = [(d, i) for i, d in enumerate(downsamples) if d <= factor * (1 + tolerance)]
    downsample, level = max(usable)
    ratio = factor / downsample
    read_size = tile_size if abs(ratio - 1) <= tolerance else round(tile_size * ratio)
    return Resolution(level, float(downsample), read_size, tile_size, mpp, mpp_source)


@dataclass(frozen=True)
class Grid:
    cols: int
    rows: int
    resolution: Resolution

    @classmethod
    def of(cls, level_size: tuple[int, int], resolution: Resolution) -> Grid:
        width, height = level_size
        return cls(width // resolution.read_size, height // resolution.read_size, resolution)

    def level_xy(self, col: int, row: int) -> tuple[int, int]:
        size = self.resolution.read_size
        return col * size, row * size

    def origin(self, col: int, row: int) -> tuple[int, int]:
        """Level-0 top-left corner of a cell: the tile's key."""
        step = self.resolution.step0
        return round(col * step), round(row * step)


def resize_tile(rgb: np.ndarray, size: int) -> np.ndarray:
    """Square RGB → size × size: an exact area average for whole factors (512 → 256), else Lanczos."""
    current = rgb.shape[0]
    if current == size:
        return rgb
    image = Image.fromarray(np.ascontiguousarray(rgb))
    if current > size and current % size == 0:
        return np.asarray(image.reduce(current // size))
    return np.asarray(image.resize((size, size), Image.Resampling.LANCZOS))


# --- reading pixels --------------------------------------------------------------------------------


class OpenSlideLevelReader:
    """Regions of one level through OpenSlide; transparent (unscanned) pixels come back white."""

    name = "openslide"

    def __init__(self, slide: openslide.OpenSlide, level: int):
        self.slide, self.level = slide, level
        self.downsample = slide.level_downsamples[level]

    def read(self, x: int, y: int, width: int, height: int) -> np.ndarray:
        location = (round(x * self.downsample), round(y * self.downsample))
        image = self.slide.read_region(location, self.level, (width, height))
        if image.getextrema()[3][0] < 255:
            white = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, image)
        return np.asarray(image.convert("RGB"))


class TiffLevelReader:
    """Regions of one tiled TIFF page, decoding each of its tiles at most once while cached."""

    name = "tiff"

    def __init__(self, path: Path, page_index: int, cache_bytes: int = TIFF_CACHE_BYTES):
        import tifffile

        self.path = path
        self._tif = tifffile.TiffFile(path)
        page = self._tif.pages[page_index]
        self._page = page
        self.width, self.height = page.imagewidth, page.imagelength
        self.tile_w, self.tile_h = page.tilewidth, page.tilelength
        self._across = -(-self.width // self.tile_w)
        self._offsets, self._counts = page.dataoffsets, page.databytecounts
        self._decode = page.decode
        self._tables = page.jpegtables
        self._cache: OrderedDict[int, np.ndarray | None] = OrderedDict()
        self._cache_max = max(8, cache_bytes // (self.tile_w * self.tile_h * 3))

    def close(self) -> None:
        self._tif.close()

    def _tile(self, index: int) -> np.ndarray | None:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        count = self._counts[index]
        tile = None  # a tile the scanner never wrote reads as white, as OpenSlide shows it
        if count:
            handle = self._tif.filehandle
            handle.seek(self._offsets[index])
            data = handle.read(count)
            if len(data) != count:
                raise SlideError(f"{self.path.name}: file is truncated (tile {index} of the level is cut off)")
            try:
                decoded = self._decode(data, index, jpegtables=self._tables)[0]
            except Exception as exc:  # imagecodecs raises its own error class per codec
                raise SlideError(f"{self.path.name}: tile {index} does not decode: {exc}") from exc
            tile = decoded.reshape(self.tile_h, self.tile_w, -1)[:, :, :3]
            tile.flags.writeable = False  # shared by the cache and by reads that return it whole
        self._cache[index] = tile
        if len(self._cache) > self._cache_max:
            self._cache.popitem(last=False)
        return tile

    def read(self, x: int, y: int, width: int, height: int) -> np.ndarray:
        if x < 0 or y < 0 or x + width > self.width or y + height > self.height:
            raise ValueError(f"region {x},{y} {width}×{height} outside the {self.width}×{self.height} level")
        tw, th = self.tile_w, self.tile_h
        if (width, height) == (tw, th) and x % tw == 0 and y % th == 0:
            tile = self._tile(y // th * self._across + x // tw)
            if tile is not None:
                return tile  # a cell that is exactly one stored tile: no copy
        out = np.empty((height, width, 3), np.uint8)
        for ty in range(y // th, (y + height - 1) // th + 1):
            top, bottom = max(y, ty * th), min(y + height, (ty + 1) * th)
            for tx in range(x // tw, (x + width - 1) // tw + 1):
                left, right = max(x, tx * tw), min(x + width, (tx + 1) * tw)
                tile = self._tile(ty * self._across + tx)
                target = out[top - y:bottom - y, left - x:right - x]
                if tile is None:
                    target[...] = 255
                else:
                    target[...] = tile[top - ty * th:bottom - ty * th, left - tx * tw:right - tx * tw]
        return out


class SlideSource:
    """One open slide (one OpenSlide handle) and a pixel reader per level, fast where that is exact."""

    def __init__(self, path: str | os.PathLike[str], *, reader: str = "auto"):
        self.path = Path(path)
        self.slide_id = slide_id_from_path(self.path)
        self.prefer = reader
        try:
            self.slide = openslide.OpenSlide(self.path)
        except openslide.OpenSlideUnsupportedFormatError:
            raise SlideError(f"{self.path.name}: not a slide OpenSlide can read") from None
        except (openslide.OpenSlideError, OSError) as exc:
            raise SlideError(f"{self.path.name}: cannot open: {exc}") from None
        self._readers: dict[int, OpenSlideLevelReader | TiffLevelReader] = {}

    def __enter__(self) -> SlideSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for reader in self._readers.values():
            if isinstance(reader, TiffLevelReader):
                reader.close()
        self.slide.close()

    def reader(self, level: int) -> OpenSlideLevelReader | TiffLevelReader:
        if level not in self._readers:
            self._readers[level] = self._make_reader(level)
        return self._readers[level]

    def _make_reader(self, level: int) -> OpenSlideLevelReader | TiffLevelReader:
        slow = OpenSlideLevelReader(self.slide, level)
        if self.prefer != "auto" or self.slide.properties.get(openslide.PROPERTY_NAME_VENDOR) not in FAST_VENDORS:
            return slow
        page = self._tiff_page_for(level)
        if page is None:
            return slow
        try:
            fast = TiffLevelReader(self.path, page)
            width, height = self.slide.level_dimensions[level]
            size = min(256, width, height)
            x, y = (width - size) // 2, (height - size) // 2
            same = np.array_equal(fast.read(x, y, size, size), slow.read(x, y, size, size))
        except Exception:  # anything tifffile cannot do exactly as OpenSlide does goes the slow way
            return slow
        if not same:
            fast.close()
            return slow
        return fast

    def _tiff_page_for(self, level: int) -> int | None:
        import tifffile

        size = self.slide.level_dimensions[level]
        try:
            with tifffile.TiffFile(self.path) as tif:
                matches = [i for i, p in enumerate(tif.pages)
                           if p.is_tiled and (p.imagewidth, p.imagelength) == size and p.samplesperpixel == 3
                           and p.bitspersample == 8 and p.planarconfig == 1 and p.imagedepth == 1]
        except Exception:
            return None
        return matches[0] if len(matches) == 1 else None
