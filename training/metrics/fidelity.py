"""Conditioning fidelity: do a sample's generated tiles show that sample's morphology?

With known programs (the synthetic cohort's programs.csv), k tiles a sample are measured with
training.morphometry, averaged per sample, and compared with the sample's true programs:
- per program, Pearson and Spearman r across samples, separately for training and held-out samples;
- per program, the between-sample variance of the tile measurements over their mean within-sample
  variance (≈ 1 when the tiles ignore the sample, large when they follow it, whatever the direction);
- top-1 / top-5 retrieval: each sample's measured programs (z-scored per program across samples) against
  every sample's true programs (z-scored the same way), nearest in Euclidean distance; chance is 1/N, 5/N.
  Z-scoring both sides makes the retrieval blind to the measurement's scale bias at low resolution.
The same numbers on the real tiles of each sample are the ceiling of the metric.

Without programs (real GTEx), `feature_retrieval` finds each sample from the mean features of its
generated tiles among the mean features of every sample's real tiles.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import pearsonr, spearmanr

from training.synthetic.histology import MPP, PROGRAM_NAMES
from training.synthetic.morphometry import measure_programs

NATIVE_TILE_PX = 256  # tile stores hold 256 px tiles at 0.5 µm/px; smaller runs see them downscaled
HELD_OUT = ("val", "test")


def tile_mpp(image_size: int, native_px: int = NATIVE_TILE_PX, native_mpp: float = MPP) -> float:
    """µm per pixel of a tile drawn at `image_size` px over a native tile's field of view."""
    return native_mpp * native_px / image_size


def measure_tiles(tiles: np.ndarray, sample_ids: Sequence[str], *, mpp: float) -> pd.DataFrame:
    """One row per tile: sample_id and the four programs (NaN where undefined, e.g. no nuclei)."""
    if len(tiles) != len(sample_ids):
        raise ValueError(f"{len(tiles)} tiles but {len(sample_ids)} sample ids")
    rows = [{"sample_id": s, **{p: measure_programs(t, mpp=mpp)[p] for p in PROGRAM_NAMES}}
            for t, s in zip(tiles, sample_ids, strict=True)]
    return pd.DataFrame(rows, columns=["sample_id", *PROGRAM_NAMES])


def variance_ratio(measured: pd.DataFrame) -> dict[str, float]:
    """Per program: variance of the per-sample means over the mean within-sample variance of the tiles
    (the within-sample variance is that of a mean, i.e. divided by the tiles a sample)."""
    out = {}
    for program in PROGRAM_NAMES:
        groups = measured.groupby("sample_id")[program]
        means, within, counts = groups.mean(), groups.var(ddof=1), groups.count()
        within_of_mean = (within / counts).mean()
        out[program] = float(means.var(ddof=1) / within_of_mean) if within_of_mean > 0 else float("nan")
    return out


def _r(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return float("nan"), float("nan")
    return float(pearsonr(x[ok], y[ok]).statistic), float(spearmanr(x[ok], y[ok]).statistic)


def _zscore(frame: pd.DataFrame) -> np.ndarray:
    values = frame.to_numpy(dtype=np.float64)
    with warnings.catch_warnings():  # a program no tile defines (no nuclei drawn) is all NaN: it scores 0
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, sd = np.nanmean(values, 0), np.nanstd(values, 0)
    z = (values - mean) / np.where(sd > 0, sd, 1)
    return np.nan_to_num(z)  # an undefined measurement sits at the mean


def retrieval(queries: np.ndarray, references: np.ndarray, *, among: int | None = None) -> dict[str, float]:
    """Query i's true match is reference i; top-1 and top-5 accuracy by Euclidean distance."""
    dist = np.linalg.norm(queries[:, None, :] - references[None, :, :], axis=2)
    rank = (dist < dist[np.arange(len(queries)), np.arange(len(queries))][:, None]).sum(1)
    n = among or len(references)
    return {"top1": float((rank < 1).mean()), "top5": float((rank < 5).mean()),
            "chance_top1": 1 / n, "chance_top5": min(1.0, 5 / n), "n": int(len(queries))}


def program_fidelity(measured: pd.DataFrame, truth: pd.DataFrame, splits: pd.Series) -> dict:
    """Fidelity of per-tile measurements against true programs.

    measured: per tile (sample_id + programs); truth: programs.csv rows (sample_id + programs) of the
    samples to judge; splits: sample_id → train/val/test.
    """
    means = measured.groupby("sample_id")[list(PROGRAM_NAMES)].mean()
    truth = truth.set_index("sample_id").loc[:, list(PROGRAM_NAMES)]
    common = [s for s in truth.index if s in means.index]
    if len(common) < 3:
        raise ValueError(f"only {len(common)} samples have both measured tiles and true programs")
    means, truth = means.loc[common], truth.loc[common]
    split = splits.reindex(common).fillna("train").to_numpy()
    groups = {"train": split == "train", "held_out": np.isin(split, HELD_OUT), "all": np.ones(len(common), bool)}
    correlations = {}
    for group, mask in groups.items():
        correlations[group] = {}
        for program in PROGRAM_NAMES:
            pr, sr = _r(means[program].to_numpy()[mask], truth[program].to_numpy()[mask])
            correlations[group][program] = {"pearson": pr, "spearman": sr, "n": int(mask.sum())}
    zq, zr = _zscore(means), _zscore(truth)
    ranks = {group: retrieval(zq[mask], zr, among=len(common)) if mask.any() else None
             for group, mask in groups.items()}
    # Retrieval of held-out queries is among every sample of the tissue: chance 1/N over all of them.
    return {"correlation": correlations, "variance_ratio": variance_ratio(measured), "retrieval": ranks,
            "samples": len(common), "tiles": int(len(measured))}


def sample_means(features: np.ndarray, sample_ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
    ids = np.asarray(sample_ids)
    order = list(dict.fromkeys(ids.tolist()))
    return order, np.stack([features[ids == s].mean(0) for s in order])


def feature_retrieval(generated: np.ndarray, generated_ids: Sequence[str], real: np.ndarray,
                      real_ids: Sequence[str]) -> dict[str, float]:
    """Find each sample from its generated tiles' mean feature among the real tiles' mean features of
    every sample (features standardised by the real tiles' spread)."""
    ref_ids, ref = sample_means(real, real_ids)
    q_ids, q = sample_means(generated, generated_ids)
    missing = [s for s in q_ids if s not in ref_ids]
    if missing:
        raise ValueError(f"no real tiles of sample(s) {', '.join(missing[:5])}")
    sd = real.std(0)
    sd = np.where(sd > 0, sd, 1)
    ref_z, q_z = ref / sd, q / sd
    # Put each query's own sample at its index by reordering the references.
    order = [ref_ids.index(s) for s in q_ids] + [i for i, s in enumerate(ref_ids) if s not in q_ids]
    return retrieval(q_z, ref_z[order], among=len(ref_ids))


def split_half_retrieval(real: np.ndarray, real_ids: Sequence[str], *, seed: int = 0) -> dict[str, float]:
    """The ceiling of feature retrieval: half of each sample's real tiles find the other half."""
    ids = np.asarray(real_ids)
    rng = np.random.default_rng(seed)
    first = np.zeros(len(ids), bool)
    for s in dict.fromkeys(ids.tolist()):
        idx = np.flatnonzero(ids == s)
        first[rng.permutation(idx)[: len(idx) // 2]] = True
    keep = [s for s in dict.fromkeys(ids.tolist()) if (ids[first] == s).any() and (ids[~first] == s).any()]
    a, b = np.isin(ids, keep) & first, np.isin(ids, keep) & ~first
    return feature_retrieval(real[a], ids[a], real[b], ids[b])
