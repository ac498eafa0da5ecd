"""Measuring the morphology programs back from an RGB tile, so generated tiles can be checked against
the expression they were drawn from.

Colour deconvolution (Ruifrok & Johnston) with the stain vectors of training.synthetic.histology splits each pixel
into hematoxylin and eosin; simple thresholds on those give nuclei (labelled connected components),
unstained space, and the eosin level of the stroma. Results use the units of training.synthetic.histology.PROGRAMS,
so a measurement can be compared with programs.csv directly. Works on any H&E RGB image, but the
thresholds are tuned to our stains: on real slides treat the values as relative, not absolute.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from scipy import ndimage

from training.synthetic.histology import (
    EOSIN,
    EOSIN_BASE,
    GLASS_OD,
    HEMATOXYLIN,
    MPP,
    PROFILES,
    PROGRAMS,
    tissue_profile,
)

# Concentrations (optical density along each stain vector) that separate the classes.
SPACE_MAX_STAIN = 0.07  # hematoxylin + eosin below this is glass or an airspace
NUCLEUS_MIN_HEMATOXYLIN = 0.5
MIN_NUCLEUS_UM2 = 3.0  # smaller specks are chromatin noise, not nuclei

_RESIDUAL = np.cross(HEMATOXYLIN, EOSIN)
_UNMIX = np.linalg.inv(np.stack([HEMATOXYLIN, EOSIN, _RESIDUAL / np.linalg.norm(_RESIDUAL)])).astype(np.float32)


def stain_concentrations(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hematoxylin and eosin concentration maps (float32, ≥ 0) of an H × W × 3 uint8 image."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an H × W × 3 uint8 RGB image, got {rgb.dtype} of shape {rgb.shape}")
    od = -np.log(np.maximum(rgb, 1).astype(np.float32) / 255.0) - GLASS_OD
    conc = od.reshape(-1, 3) @ _UNMIX
    shape = rgb.shape[:2]
    return np.maximum(conc[:, 0], 0).reshape(shape), np.maximum(conc[:, 1], 0).reshape(shape)


def tissue_region(rgb: np.ndarray, *, closing_um: float = 60.0, mpp: float = MPP) -> np.ndarray:
    """Boolean mask of the tissue on a slide: stained pixels, closed across airspaces, holes filled.

    Worked out on an 8× smaller grid: airspaces are tens of µm wide and a full-size closing is slow.
    """
    hema, eosin = stain_concentrations(rgb)
    stained = (hema + eosin) >= SPACE_MAX_STAIN
    factor = 8
    h, w = stained.shape
    coarse = stained[: h - h % factor, : w - w % factor].reshape(h // factor, factor, w // factor, factor).mean((1, 3))
    radius = max(1, int(round(closing_um / mpp / factor / 2)))
    disk = np.hypot(*np.mgrid[-radius : radius + 1, -radius : radius + 1]) <= radius
    padded = np.pad(coarse > 0.05, radius + 1)
    closed = ndimage.binary_closing(padded, structure=disk)[radius + 1 : -radius - 1, radius + 1 : -radius - 1]
    filled = ndimage.binary_fill_holes(closed)
    full = np.zeros_like(stained)
    full[: h - h % factor, : w - w % factor] = filled.repeat(factor, 0).repeat(factor, 1)
    return full


def measure_programs(rgb: np.ndarray, *, mpp: float = MPP, region: np.ndarray | None = None) -> dict[str, float]:
    """The morphology programs of a tile (or of `region` of it: e.g. tissue_region(slide)).

    Returns the four programs of training.synthetic.histology.PROGRAMS plus `nuclear_area_fraction`,
    `nuclei` (count) and `cellular_fraction`. Values are NaN where they are undefined (no tissue, no nuclei).
    """
    nan = float("nan")
    hema, eosin = stain_concentrations(rgb)
    region = np.ones(hema.shape, dtype=bool) if region is None else np.asarray(region, dtype=bool)
    if region.shape != hema.shape:
        raise ValueError(f"region has shape {region.shape}, image is {hema.shape}")
    space = ((hema + eosin) < SPACE_MAX_STAIN) & region
    cellular = region & ~space
    nuclei = ndimage.binary_fill_holes((hema >= NUCLEUS_MIN_HEMATOXYLIN) & cellular)
    labels, count = ndimage.label(nuclei)
    areas = np.bincount(labels.ravel())[1:]
    areas = areas[areas * mpp * mpp >= MIN_NUCLEUS_UM2]
    typical = float(np.median(areas)) if areas.size else nan
    nuclei_count = int(np.maximum(1, np.rint(areas / typical)).sum()) if areas.size else 0
    region_px, cellular_px = int(region.sum()), int(cellular.sum())
    stroma = cellular & ~ndimage.binary_dilation(nuclei, iterations=2)
    return {
        # Touching nuclei merge into one component, which would undercount crowded septa: a component
        # counts as as many nuclei as typical (median) nuclei fit in it, and size is the median's.
        "nuclear_density": nuclei_count / (cellular_px * mpp * mpp / 1e4) if cellular_px else nan,
        "nuclear_size": float(2 * np.sqrt(typical / np.pi) * mpp) if areas.size else nan,
        "airspace_fraction": float(space.sum()) / region_px if region_px else nan,
        "eosin_intensity": float(np.median(eosin[stroma])) / EOSIN_BASE if stroma.any() else nan,
        "nuclear_area_fraction": float(areas.sum()) / cellular_px if cellular_px else nan,
        "nuclei": nuclei_count,
        "cellular_fraction": cellular_px / region_px if region_px else nan,
    }


def nearest_tissue(measured: Mapping[str, float], tissues: Iterable[str] | None = None) -> str:
    """The tissue whose baseline programs are closest to a measurement (distance in program scales)."""
    names = list(tissues) if tissues is not None else list(PROFILES)
    if not names:
        raise ValueError("no tissues to choose from")

    def distance(name: str) -> float:
        mean = tissue_profile(name).mean
        return sum(((measured[p.name] - mean[p.name]) / p.scale) ** 2 for p in PROGRAMS
                   if np.isfinite(measured.get(p.name, np.nan)))

    return min(names, key=distance)
