"""The expression scaler: log1p(TPM), then z-scores with the training split's mean and sd.

Saved as `scaler.npz` with arrays `genes`, `mean`, `sd` (of log1p values; sd floored, never 0) and
`observed` (bool: the gene was in the source GCT). A gene of the list that the GCT lacked was filled
with the training mean, so every sample has z = 0 there; `observed = False` tells later users (the
cohort aligner) to keep it at 0 rather than scale values the model never saw. Files without
`observed` load as all observed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.utils.constants import DEFAULT_SD_FLOOR
from training.utils.io import atomic_path

SCALER_FILE = "scaler.npz"


@dataclass(frozen=True)
class Scaler:
    genes: tuple[str, ...]
    mean: np.ndarray  # float64, one per gene, of log1p(TPM)
    sd: np.ndarray  # float64, floored
    observed: np.ndarray  # bool

    def __post_init__(self) -> None:
        n = len(self.genes)
        for name in ("mean", "sd", "observed"):
            shape = getattr(self, name).shape
            if shape != (n,):
                raise ValueError(f"scaler {name} has shape {shape}, expected ({n},) for {n} genes")
        if not (np.isfinite(self.mean).all() and np.isfinite(self.sd).all()):
            raise ValueError("scaler mean/sd hold non-finite values")
        if (self.sd <= 0).any():
            raise ValueError("scaler sd must be positive (it is floored when fitted)")

    def transform(self, tpm: np.ndarray, *, known: np.ndarray | None = None) -> np.ndarray:
        """TPM (samples × genes, in `genes` order) → float32 z-scores.

        Genes not `observed` at preparation, and entries where `known` is False, are set to 0
        (the training mean).
        """
        tpm = np.asarray(tpm)
        if tpm.ndim != 2 or tpm.shape[1] != len(self.genes):
            raise ValueError(f"expected samples × {len(self.genes)} genes, got shape {tpm.shape}")
        z = (np.log1p(tpm.astype(np.float64)) - self.mean) / self.sd
        z[:, ~self.observed] = 0.0
        if known is not None:
            z[~known] = 0.0
        return z.astype(np.float32)


def fit_scaler(
    log_values: np.ndarray,
    *,
    genes: Sequence[str],
    observed: np.ndarray | None = None,
    sd_floor: float = DEFAULT_SD_FLOOR,
) -> Scaler:
    """Mean and population sd (ddof 0) of log1p values, genes × training samples."""
    if log_values.ndim != 2 or log_values.shape[0] != len(genes):
        raise ValueError(f"expected {len(genes)} genes × samples, got shape {log_values.shape}")
    if log_values.shape[1] == 0:
        raise ValueError("cannot fit a scaler on zero training samples")
    if sd_floor <= 0:
        raise ValueError(f"sd floor must be positive, got {sd_floor}")
    mean = log_values.mean(axis=1, dtype=np.float64)
    sd = np.maximum(log_values.std(axis=1, dtype=np.float64), sd_floor)
    if observed is None:
        observed = np.ones(len(genes), dtype=bool)
    mean = np.where(observed, mean, 0.0)
    sd = np.where(observed, sd, 1.0)
    return Scaler(genes=tuple(genes), mean=mean, sd=sd, observed=np.asarray(observed, dtype=bool))


def save_scaler(path: str | os.PathLike[str], scaler: Scaler) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            genes=np.array(scaler.genes, dtype=str),
            mean=scaler.mean,
            sd=scaler.sd,
            observed=scaler.observed,
        )
    return path


def load_scaler(path: str | os.PathLike[str]) -> Scaler:
    """Load `scaler.npz`, or the one inside a folder (a prepared-expression or VAE run folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / SCALER_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable .npz file ({exc})") from None
    absent = [name for name in ("genes", "mean", "sd") if name not in arrays]
    if absent:
        raise ValueError(f"{path}: missing array(s) {', '.join(absent)}")
    genes = tuple(str(g) for g in arrays["genes"])
    observed = arrays.get("observed", np.ones(len(genes), dtype=bool))
    try:
        return Scaler(
            genes=genes,
            mean=arrays["mean"].astype(np.float64),
            sd=arrays["sd"].astype(np.float64),
            observed=observed.astype(bool),
        )
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
