"""Precision and recall of a generated distribution (Kynkäänniemi et al. 2019), with density and
coverage (Naeem et al. 2020) from the same neighbour radii.

Each real feature gets a ball reaching its k-th nearest real neighbour (itself excluded); precision is
the share of generated samples inside at least one real ball (are the fakes realistic?), recall the
share of real samples inside at least one ball built the same way on the generated set (is the real
variety covered?). Density counts how many real balls hold each fake (divided by k); coverage is the
share of real balls that hold at least one fake. Distances: scikit-learn's exact Euclidean neighbours.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import NearestNeighbors


def knn_radii(features: np.ndarray, k: int) -> np.ndarray:
    """Distance of every row to its k-th nearest other row."""
    if len(features) <= k:
        raise ValueError(f"need more than k = {k} samples, got {len(features)}")
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features)
    return distances[:, k]  # column 0 is the point itself


def prdc(real: np.ndarray, fake: np.ndarray, *, k: int = 3) -> dict[str, float]:
    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"need two (N, D) feature sets of one D, got {real.shape} and {fake.shape}")
    real_radii, fake_radii = knn_radii(real, k), knn_radii(fake, k)
    dist = pairwise_distances(real, fake)  # (real, fake)
    inside_real = dist <= real_radii[:, None]
    return {
        "precision": float(inside_real.any(axis=0).mean()),
        "recall": float((dist <= fake_radii[None, :]).any(axis=1).mean()),
        "density": float(inside_real.sum(axis=0).mean() / k),
        "coverage": float((dist.min(axis=1) <= real_radii).mean()),
        "k": k,
    }
