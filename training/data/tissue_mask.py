"""Which grid cells of a slide hold tissue.

Each grid cell is sampled MASK_SAMPLES × MASK_SAMPLES times (≈ 8 µm/px at 20×) by
area-averaging the lowest-resolution level fine enough for that. We threshold HSV saturation,
(max − min) / max: glass is white or grey, so its saturation is near 0 whatever the scanner's
brightness, while eosin and haematoxylin are saturated pink and purple. Otsu's threshold on the
saturation histogram adapts to the stain, but it is clamped to [threshold_min, threshold_max]: on a slide
that is nearly all tissue Otsu splits pink from purple, and on a slide that is nearly all glass it
splits the glass noise. Pen marks are saturated too and pass as tissue; that is a known limit.
A cell's background fraction is the share of its whole footprint in the mask that is not tissue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from training.data.slides import Grid, OpenSlideLevelReader, Resolution, SlideSource, TiffLevelReader

MASK_SAMPLES = 16  # mask samples per tile side: 256 per tile, so a background fraction is exact to 1/256


def saturation(rgb: np.ndarray) -> np.ndarray:
    """HSV saturation scaled to 0–255 (rounded), 0 for black."""
    rgb = rgb.astype(np.float32)
    high, low = rgb.max(axis=-1), rgb.min(axis=-1)
    sat = np.divide((high - low) * 255.0, high, out=np.zeros_like(high), where=high > 0)
    return np.rint(sat).astype(np.uint8)


def otsu_threshold(values: np.ndarray) -> int:
    """Otsu's threshold on uint8 values: the t maximising between-class variance of (≤ t, > t)."""
    hist = np.bincount(values.ravel(), minlength=256).astype(np.float64)
    weight = np.cumsum(hist)
    total = weight[-1]
    if total == 0:
        return 0
    mass = np.cumsum(hist * np.arange(256))
    below = weight[:-1]
    above = total - below
    valid = (below > 0) & (above > 0)
    if not valid.any():
        return int(values.ravel()[0])
    mean_below = np.divide(mass[:-1], below, out=np.zeros(255), where=valid)
    mean_above = np.divide(mass[-1] - mass[:-1], above, out=np.zeros(255), where=valid)
    between = np.where(valid, below * above * (mean_below - mean_above) ** 2, -1.0)
    return int(np.argmax(between))


@dataclass(frozen=True)
class TissueMask:
    background: np.ndarray  # rows × cols, count of non-tissue samples out of MASK_SAMPLES²
    level: int
    otsu: int
    threshold: int

    @property
    def samples(self) -> int:
        return MASK_SAMPLES * MASK_SAMPLES


def mask_level(source: SlideSource, resolution: Resolution) -> tuple[int, float]:
    """The lowest-resolution level with at least one px per mask sample, and its px per sample."""
    sample0 = resolution.step0 / MASK_SAMPLES
    usable = [(d, i) for i, d in enumerate(source.slide.level_downsamples) if d <= sample0 * 1.001]
    downsample, level = max(usable)
    return level, sample0 / downsample


def tissue_mask(source: SlideSource, grid: Grid, *, threshold_min: int, threshold_max: int,
                band_pixels: int = 2**24) -> TissueMask:
    """Saturation mask of the grid's area, sampled MASK_SAMPLES² per cell, read in bounded bands."""
    k = MASK_SAMPLES
    level, per_sample = mask_level(source, grid.resolution)
    reader = source.reader(level)
    level_w, level_h = source.slide.level_dimensions[level]
    whole = round(per_sample)
    exact = abs(per_sample - whole) < 1e-3
    width = grid.cols * k * whole if exact else round(grid.cols * k * per_sample)
    rows_per_band = max(1, int(band_pixels // max(1.0, width * k * per_sample)))
    bands = []
    for row0 in range(0, grid.rows, rows_per_band):
        row1 = min(grid.rows, row0 + rows_per_band)
        if exact:
            top, bottom = row0 * k * whole, row1 * k * whole
        else:
            top, bottom = round(row0 * k * per_sample), round(row1 * k * per_sample)
        region = _read_padded(reader, top, width, bottom - top, level_w, level_h)
        out_h, out_w = (row1 - row0) * k, grid.cols * k
        if exact:
            # Area average over whole level px: the exact mean colour of each sample's footprint.
            region = region.reshape(out_h, whole, out_w, whole, 3).mean(axis=(1, 3), dtype=np.float32)
        else:
            region = np.asarray(Image.fromarray(region).resize((out_w, out_h), Image.Resampling.BOX))
        bands.append(saturation(region))
    sat = np.concatenate(bands, axis=0) if bands else np.zeros((0, 0), np.uint8)
    otsu = otsu_threshold(sat) if sat.size else 0
    threshold = int(min(max(otsu, threshold_min), threshold_max))
    background = (sat <= threshold).reshape(grid.rows, k, grid.cols, k).sum(axis=(1, 3), dtype=np.int32)
    return TissueMask(background=background, level=level, otsu=otsu, threshold=threshold)


def _read_padded(reader: OpenSlideLevelReader | TiffLevelReader, top: int, width: int, height: int,
                 level_w: int, level_h: int) -> np.ndarray:
    """A band from x = 0; the pixel or so that level rounding may put past the level's edge reads white."""
    inside = reader.read(0, top, min(width, level_w), min(height, level_h - top))
    if inside.shape[:2] == (height, width):
        return inside
    band = np.full((height, width, 3), 255, np.uint8)
    band[:inside.shape[0], :inside.shape[1]] = inside
    return band
