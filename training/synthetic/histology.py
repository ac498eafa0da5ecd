"""H&E-like tissue drawn from a few continuous morphology programs, fast enough for whole synthetic slides.

The picture is built the way a stained section absorbs light: two concentration maps, hematoxylin
(nuclei, basophilic cytoplasm) and eosin (stroma, neuropil, red cells), become optical density along
the stain vectors and then RGB through Beer-Lambert, so colours mix like real stains and
training.synthetic.morphometry can undo them by colour deconvolution.

Everything is vectorised NumPy/SciPy: clear spaces come from thresholded smooth noise or a Voronoi
edge field (thresholded at a quantile so the airspace fraction is exact), nuclei are soft ellipses
evaluated for all nuclei at once and scattered onto the canvas. One call owns its random generator,
so the same (tissue, programs, size, seed) always gives the same pixels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.spatial import cKDTree

# 20× scans: every length below is in µm and becomes pixels through this.
MPP = 0.5


@dataclass(frozen=True)
class Program:
    """A continuous morphology program: what it measures, its hard limits, and the centre and scale
    that turn it into the standardised value gene modules respond to."""

    name: str
    unit: str
    low: float
    high: float
    centre: float
    scale: float


PROGRAMS: tuple[Program, ...] = (
    Program("nuclear_density", "nuclei per 10,000 µm² of cellular (non-space) tissue", 2.0, 60.0, 16.0, 6.0),
    Program("nuclear_size", "mean nuclear diameter, µm", 3.0, 14.0, 7.0, 1.2),
    Program("airspace_fraction", "fraction of the tissue area that is unstained space", 0.0, 0.9, 0.3, 0.15),
    Program("eosin_intensity", "eosin stain strength (1 = typical)", 0.3, 1.8, 1.0, 0.2),
)
PROGRAM_NAMES: tuple[str, ...] = tuple(p.name for p in PROGRAMS)


@dataclass(frozen=True)
class TissueProfile:
    """A tissue's baseline: the mean and SD of each program across samples, and how it is drawn."""

    name: str
    mean: dict[str, float]
    sd: dict[str, float]
    space_pattern: str  # "alveoli" | "vacuoles" | "channels" | "lumens"
    space_scale_um: float
    texture: str  # "fibrous" | "neuropil" | "granular"
    nucleus_elongation: float = 1.2
    neuron_fraction: float = 0.0
    hematoxylin_background: float = 0.08
    red_cell_density: float = 0.0  # red cells per 10,000 µm² of cellular tissue
    lining_nuclei: float = 0.0  # share of nuclei that line the spaces (glandular epithelium)


def _profile(name: str, mean: tuple[float, ...], sd: tuple[float, ...], **drawing) -> TissueProfile:
    return TissueProfile(name, dict(zip(PROGRAM_NAMES, mean, strict=True)), dict(zip(PROGRAM_NAMES, sd, strict=True)),
                         **drawing)


# Keyed by GTEx SMTSD, then by SMTS (the part before " - "); anything else is drawn as GENERIC.
PROFILES: dict[str, TissueProfile] = {p.name: p for p in (
    # Alveoli (white) between thin pink septa, nuclei elongated along the septa, red cells in capillaries.
    # Airspace below the tiler's 60 % background limit on average, as in the tiles the paper trained on:
    # the tiles kept from real lung slides are the denser parts of the parenchyma.
    _profile("Lung", (24, 7.0, 0.45, 1.0), (5, 0.8, 0.08, 0.15), space_pattern="alveoli", space_scale_um=70,
             texture="fibrous", nucleus_elongation=1.7, red_cell_density=10),
    # Cortex: many small round glial nuclei and some neurons in pale pink neuropil, a few small vacuoles.
    _profile("Brain", (13, 6.0, 0.05, 0.75), (2.5, 0.7, 0.02, 0.12), space_pattern="vacuoles", space_scale_um=3,
             texture="neuropil", nucleus_elongation=1.1, neuron_fraction=0.1, red_cell_density=1),
    # Plates of large polygonal hepatocytes with round nuclei, strong eosin, slit-like sinusoids.
    _profile("Liver", (9, 8.5, 0.12, 1.2), (2, 0.8, 0.04, 0.15), space_pattern="channels", space_scale_um=14,
             texture="granular", nucleus_elongation=1.1, red_cell_density=3, lining_nuclei=0.25),
    # Crowded acini with basophilic (purple) cytoplasm and tiny lumens.
    _profile("Pancreas", (21, 7.0, 0.06, 0.9), (4, 0.7, 0.02, 0.15), space_pattern="lumens", space_scale_um=5,
             texture="granular", hematoxylin_background=0.25, lining_nuclei=0.5),
    # Mucosa: glands with open lumens in a cellular lamina propria.
    _profile("Stomach", (18, 7.5, 0.2, 0.9), (4, 0.8, 0.06, 0.15), space_pattern="lumens", space_scale_um=16,
             texture="granular", nucleus_elongation=1.6, hematoxylin_background=0.14, red_cell_density=2,
             lining_nuclei=0.6),
)}
GENERIC = _profile("generic", (15, 7.0, 0.1, 1.0), (3, 0.8, 0.04, 0.15), space_pattern="channels",
                   space_scale_um=20, texture="fibrous", nucleus_elongation=1.4, red_cell_density=2)


def broad_tissue(smtsd: str) -> str:
    """GTEx SMTS for an SMTSD: the part before " - " ("Brain - Cortex" → "Brain")."""
    return smtsd.split(" - ", 1)[0].strip()


def tissue_profile(tissue: str) -> TissueProfile:
    return PROFILES.get(tissue) or PROFILES.get(broad_tissue(tissue)) or GENERIC


# Unit optical-density directions of the two stains in RGB (after Ruifrok & Johnston, tuned towards the
# pinker eosin and bluer hematoxylin of GTEx scans). morphometry.py deconvolves with the same vectors.
HEMATOXYLIN = np.array([0.62, 0.72, 0.31], dtype=np.float32)
EOSIN = np.array([0.10, 0.86, 0.50], dtype=np.float32)
HEMATOXYLIN /= np.linalg.norm(HEMATOXYLIN)
EOSIN /= np.linalg.norm(EOSIN)
# Eosin concentration of cellular tissue at eosin_intensity 1; morphometry divides by it.
EOSIN_BASE = 0.42
GLASS_OD = 0.03
NUCLEUS_CHUNK = 1024


def render_tile(tissue: str, programs: Mapping[str, float], size: int = 256, seed: int = 0) -> np.ndarray:
    """A size × size RGB uint8 patch that is tissue everywhere (no glass), drawn at 20× (0.5 µm/px)."""
    rng = np.random.default_rng(seed)
    hema, eosin = tissue_stains(tissue_profile(tissue), _checked(programs), (size, size), rng)
    return stains_to_rgb(hema, eosin, rng)


def render_slide(tissue: str, programs: Mapping[str, float], size: int = 2048, seed: int = 0) -> np.ndarray:
    """A size × size RGB uint8 slide: one irregular piece of tissue on white glass."""
    rng = np.random.default_rng(seed)
    shape = (size, size)
    mask = tissue_outline(shape, rng)
    # Only the tissue's bounding box is drawn: glass is about half of a slide.
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    hema = np.zeros(shape, dtype=np.float32)
    eosin = np.zeros(shape, dtype=np.float32)
    if rows.size:
        box = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        h, e = tissue_stains(tissue_profile(tissue), _checked(programs), mask[box].shape, rng)
        hema[box] = h * mask[box]
        eosin[box] = e * mask[box]
    return stains_to_rgb(hema, eosin, rng)


def _checked(programs: Mapping[str, float]) -> dict[str, float]:
    missing = [name for name in PROGRAM_NAMES if name not in programs]
    if missing:
        raise ValueError(f"programs lack {', '.join(missing)} (need {', '.join(PROGRAM_NAMES)})")
    return {name: float(programs[name]) for name in PROGRAM_NAMES}


# --- noise -------------------------------------------------------------------------------------------


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float | tuple[float, float]) -> np.ndarray:
    """Gaussian-smoothed white noise scaled to mean 0, SD 1; broad fields are made small and enlarged."""
    sigmas = np.broadcast_to(np.asarray(sigma, dtype=float), (2,))
    factor = max(1, int(sigmas.min() // 1.5))
    pad = 3 if factor > 1 else 0
    small = (shape[0] // factor + pad, shape[1] // factor + pad)
    field = ndimage.gaussian_filter(rng.standard_normal(small, dtype=np.float32), sigmas / factor, mode="wrap")
    field -= field.mean()
    field /= field.std() + 1e-8
    if factor > 1:
        big = Image.fromarray(field, mode="F").resize((small[1] * factor, small[0] * factor), Image.Resampling.BILINEAR)
        field = np.asarray(big)[factor : factor + shape[0], factor : factor + shape[1]]
    return np.ascontiguousarray(field, dtype=np.float32)


def _upsample(field: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    big = Image.fromarray(field.astype(np.float32), mode="F").resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
    return np.array(big)


# --- structure ---------------------------------------------------------------------------------------


def tissue_outline(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Soft 0..1 mask of one blobby piece of tissue that leaves a margin of glass on every side."""
    # A star-shaped blob: its radius wanders with the angle through a few random harmonics, bounded so
    # the tissue never reaches the frame (a straight cut there would look like a crop, not a section).
    coarse = 128
    yy, xx = np.mgrid[0:coarse, 0:coarse].astype(np.float32) / (coarse - 1) - 0.5
    centre = rng.uniform(-0.03, 0.03, size=2)
    theta = np.arctan2(yy - centre[0], xx - centre[1])
    harmonics = np.arange(2, 7)
    amplitude = rng.uniform(0, 1, harmonics.size) * np.array([0.16, 0.1, 0.07, 0.05, 0.04])
    phase = rng.uniform(0, 2 * np.pi, harmonics.size)
    outline = 0.31 * (1 + (amplitude[:, None, None] * np.cos(harmonics[:, None, None] * theta + phase[:, None, None])).sum(0))
    field = (outline - np.hypot(yy - centre[0], xx - centre[1])).astype(np.float32)
    full = _upsample(field, shape)
    # A ragged cut edge: fine noise on the boundary only, scaled in the field's units.
    full += 0.0015 * smooth_noise(rng, shape, 5.0)
    return soft_threshold(full, 0.0, width_px=2.0)


def soft_threshold(field: np.ndarray, threshold: float, width_px: float = 1.2) -> np.ndarray:
    """0..1 map of field > threshold with an edge about `width_px` wide: antialiasing without a blur."""
    sample = field[::8, ::8]
    slope = float(np.median(np.hypot(*np.gradient(sample)))) / 8 + 1e-6
    ramp = (field - threshold) * np.float32(1.0 / (slope * width_px))
    ramp += 0.5
    return np.clip(ramp, 0.0, 1.0, out=ramp)


def clear_space(profile: TissueProfile, fraction: float, shape: tuple[int, int], rng: np.random.Generator):
    """Soft 0..1 map of unstained space covering `fraction` of the area, the field it thresholds (its
    gradient runs across the tissue between spaces) and the threshold."""
    scale_px = profile.space_scale_um / MPP
    if profile.space_pattern == "alveoli":
        field = _voronoi_edge_distance(shape, scale_px, rng)
        field += 0.08 * scale_px * smooth_noise(rng, shape, scale_px / 6)
    elif profile.space_pattern == "channels":
        # Zero crossings of smooth noise are meandering lines: sinusoids between cell plates.
        field = -np.abs(smooth_noise(rng, shape, scale_px))
    else:  # "vacuoles" and "lumens": the highest bumps of smooth noise are rounded holes
        field = smooth_noise(rng, shape, scale_px)
    fraction = float(np.clip(fraction, 0.0, 0.95))
    threshold = float(np.quantile(field[::2, ::2], 1.0 - fraction)) if fraction > 0 else float(field.max()) + 1
    return soft_threshold(field, threshold), field, threshold


def _voronoi_edge_distance(shape: tuple[int, int], spacing: float, rng: np.random.Generator) -> np.ndarray:
    """Distance from each pixel to the nearest Voronoi edge (F2 − F1) of random seeds, in pixels."""
    factor = 4  # the field is smooth apart from its ridges: compute it coarse, then enlarge
    h, w = shape[0] // factor + 2, shape[1] // factor + 2
    step = spacing / factor
    # A jittered grid (with a border of seeds against edge effects) gives alveoli of uneven but not
    # absurd size; uniform seeds make slivers and clumps.
    gy, gx = np.mgrid[-1 : h / step + 1, -1 : w / step + 1]
    seeds = (np.stack([gy.ravel(), gx.ravel()], axis=1) + rng.uniform(-0.4, 0.4, size=(gy.size, 2))) * step
    yy, xx = np.mgrid[0:h, 0:w]
    dist, _ = cKDTree(seeds).query(np.stack([yy.ravel(), xx.ravel()], axis=1), k=2)
    edge = ((dist[:, 1] - dist[:, 0]) * factor).reshape(h, w).astype(np.float32)
    edge = ndimage.gaussian_filter(edge, 0.03 * step)  # rounds the corners of the airspaces a little
    return _upsample(edge, (h * factor, w * factor))[: shape[0], : shape[1]].copy()


# --- nuclei and cells --------------------------------------------------------------------------------


def stamp_ellipses(canvas: np.ndarray, ys, xs, semi_major, semi_minor, angle, value, *,
                   lobes: float = 0.0, rng: np.random.Generator | None = None, add: bool = False) -> None:
    """Draw soft-edged ellipses into `canvas` in place (maximum, or sum with add=True), all at once.

    `lobes` bends the outline into a rounded triangle (neuronal somata); the edge is about one pixel soft.
    """
    ys, xs, semi_major, semi_minor, angle, value = (
        np.asarray(v, dtype=np.float32).ravel() for v in np.broadcast_arrays(ys, xs, semi_major, semi_minor, angle, value)
    )
    if ys.size == 0:
        return
    phase = rng.uniform(0, 2 * np.pi, ys.size).astype(np.float32) if lobes and rng is not None else np.zeros_like(ys)
    radius = int(np.ceil(semi_major.max() * (1 + lobes))) + 2
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    height, width = canvas.shape
    flat = canvas.reshape(-1)
    for start in range(0, ys.size, NUCLEUS_CHUNK):
        sl = slice(start, start + NUCLEUS_CHUNK)
        iy, ix = np.rint(ys[sl]).astype(np.int64), np.rint(xs[sl]).astype(np.int64)
        dy = offsets[None, :, None] - (ys[sl] - iy)[:, None, None]
        dx = offsets[None, None, :] - (xs[sl] - ix)[:, None, None]
        cos, sin = np.cos(angle[sl])[:, None, None], np.sin(angle[sl])[:, None, None]
        u = (dx * cos + dy * sin) / semi_major[sl, None, None]
        v = (dy * cos - dx * sin) / semi_minor[sl, None, None]
        dist = np.sqrt(u * u + v * v)
        if lobes:
            dist /= 1 + lobes * np.cos(3 * np.arctan2(v, u) + phase[sl, None, None])
        soft = np.clip((1 - dist) * semi_minor[sl, None, None] + 0.5, 0, 1) * value[sl, None, None]
        py = iy[:, None, None] + offsets.astype(np.int64)[None, :, None]
        px = ix[:, None, None] + offsets.astype(np.int64)[None, None, :]
        keep = (soft > 0) & (py >= 0) & (py < height) & (px >= 0) & (px < width)
        index = (py * width + px)[keep]
        if add:
            np.add.at(flat, index, soft[keep])
        else:
            np.maximum.at(flat, index, soft[keep])


def _across_gradient(field: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Angle of the level line of `field` through each point (central differences, no full gradient)."""
    iy = np.rint(ys).astype(np.int64).clip(1, field.shape[0] - 2)
    ix = np.rint(xs).astype(np.int64).clip(1, field.shape[1] - 2)
    gy = field[iy + 1, ix] - field[iy - 1, ix]
    gx = field[iy, ix + 1] - field[iy, ix - 1]
    return (np.arctan2(gy, gx) + np.pi / 2).astype(np.float32)


def _place(rng: np.random.Generator, allowed: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` uniformly random sub-pixel positions whose nearest pixel is allowed."""
    empty = np.zeros(0, np.float32)
    share = float(allowed[::4, ::4].mean())
    if count <= 0 or share == 0:
        return empty, empty
    # Rejection sampling: cheaper than listing every allowed pixel of a whole slide.
    ys, xs = [], []
    found = 0
    while found < count:
        draw = int((count - found) / share * 1.2) + 16
        y = rng.uniform(-0.5, allowed.shape[0] - 0.5, draw).astype(np.float32)
        x = rng.uniform(-0.5, allowed.shape[1] - 0.5, draw).astype(np.float32)
        inside = allowed[np.rint(y).astype(np.int64), np.rint(x).astype(np.int64)]
        ys.append(y[inside])
        xs.append(x[inside])
        found += int(inside.sum())
    return np.concatenate(ys)[:count], np.concatenate(xs)[:count]


def tissue_stains(profile: TissueProfile, programs: dict[str, float], shape: tuple[int, int],
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Hematoxylin and eosin concentration maps (float32) of tissue filling the whole frame."""
    space_soft, field, threshold = clear_space(profile, programs["airspace_fraction"], shape, rng)
    cellular = 1.0 - space_soft
    space = space_soft > 0.5
    fine = smooth_noise(rng, shape, 1.0)

    eosin = EOSIN_BASE * programs["eosin_intensity"] * _stroma_texture(profile, shape, fine, rng)
    eosin *= cellular
    hema = (profile.hematoxylin_background * (1 + 0.35 * smooth_noise(rng, shape, 6.0))).clip(0) * cellular

    area_um2 = float((~space).sum()) * MPP * MPP
    count = rng.poisson(programs["nuclear_density"] * area_um2 / 1e4)
    lining = rng.binomial(count, profile.lining_nuclei) if space.any() else 0
    # Lining nuclei sit in a rim of about one nucleus beside the spaces (epithelium around glands).
    rim = (soft_threshold(field, threshold, width_px=2 * programs["nuclear_size"] / MPP) > 0) & ~space
    ys, xs = (np.concatenate(pair) for pair in zip(_place(rng, rim, lining), _place(rng, ~space, count - lining),
                                                    strict=True))
    count = ys.size
    radius = programs["nuclear_size"] / 2 / MPP * np.exp(rng.normal(0, 0.12, count))
    elong = profile.nucleus_elongation * np.exp(rng.normal(0, 0.1, count))
    angle = rng.uniform(0, np.pi, count)
    along = np.arange(count) < lining if profile.space_pattern != "alveoli" else np.ones(count, dtype=bool)
    # Septal and lining nuclei run along the wall: perpendicular to the field's gradient.
    angle[along] = _across_gradient(field, ys[along], xs[along])
    neuron = rng.random(count) < profile.neuron_fraction
    strength = rng.uniform(0.85, 1.3, count)
    if neuron.any():
        # A neuron: pink-purple triangular soma (Nissl) around a large pale nucleus.
        soma = radius[neuron] * 2.3
        stamp_ellipses(eosin, ys[neuron], xs[neuron], soma * 1.15, soma, angle[neuron],
                       0.5 * EOSIN_BASE * programs["eosin_intensity"], lobes=0.18, rng=rng, add=True)
        stamp_ellipses(hema, ys[neuron], xs[neuron], soma * 1.15, soma, angle[neuron], 0.22, lobes=0.18, rng=rng)
        radius[neuron] *= 1.45
        elong[neuron] = 1.05
        strength[neuron] = 0.75
    nuclei = np.zeros(shape, dtype=np.float32)
    stamp_ellipses(nuclei, ys, xs, radius * np.sqrt(elong), radius / np.sqrt(elong), angle, strength)
    hema = np.maximum(hema, nuclei * (1 + 0.22 * fine))
    if neuron.any():  # a dark nucleolus in each neuronal nucleus
        stamp_ellipses(hema, ys[neuron], xs[neuron], 1.3, 1.3, 0.0, 1.5)
    eosin *= 1 - 0.6 * np.clip(nuclei, 0, 1)  # nuclei displace stroma

    if profile.red_cell_density:
        n_red = rng.poisson(profile.red_cell_density * area_um2 / 1e4)
        ry, rx = _place(rng, ~space, n_red)
        size = 3.6 / MPP * np.exp(rng.normal(0, 0.05, n_red))
        stamp_ellipses(eosin, ry, rx, size, size * 0.8, rng.uniform(0, np.pi, n_red), 0.8, add=True)
    return hema, eosin


def _stroma_texture(profile: TissueProfile, shape: tuple[int, int], fine: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """Multiplicative texture around 1: wavy fibres, granular neuropil or blotchy cytoplasm."""
    if profile.texture == "fibrous":
        # Near-zero level lines of smooth noise meander like collagen fibres.
        fibres = np.exp(-3.0 * np.abs(smooth_noise(rng, shape, 2.0)))
        pattern = 0.45 * (fibres - 0.25) + 0.12 * fine
    elif profile.texture == "neuropil":
        pattern = 0.2 * fine + 0.1 * smooth_noise(rng, shape, 3.0)
    else:  # "granular": cell-sized cytoplasm blotches
        pattern = 0.15 * smooth_noise(rng, shape, profile.space_scale_um / MPP / 3) + 0.15 * fine
    pattern += 0.1 * smooth_noise(rng, shape, 60.0)  # uneven section thickness
    return (1 + pattern).clip(0.2).astype(np.float32)


def stains_to_rgb(hema: np.ndarray, eosin: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Beer-Lambert: optical density from both stains (plus glass), then RGB with a little sensor noise."""
    out = np.empty(hema.shape + (3,), dtype=np.uint8)
    # Sensor noise is mostly luminance once JPEG has had its way: one field serves all three channels.
    grain = rng.standard_normal(hema.shape, dtype=np.float32)
    grain *= 1.8
    for channel in range(3):
        od = hema * HEMATOXYLIN[channel]
        od += eosin * EOSIN[channel]
        od += GLASS_OD
        np.negative(od, out=od)
        np.exp(od, out=od)
        od *= 255.0
        od += grain
        out[..., channel] = np.clip(od, 0, 255, out=od)
    return out
