"""Fréchet distance and kernel inception distance between two sets of image features.

FD (Heusel et al. 2017): ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½), with the matrix square root from
scipy.linalg.sqrtm, the form pytorch-fid uses, so an FD in Inception pool features computed here is
comparable with its FID. Only Inception-v3 pool features of the pytorch-fid weights may be called "FID";
everything else (our in-domain encoder) is reported as "FD" with the encoder named.

KID (Bińkowski et al. 2018): the unbiased estimate of the squared MMD with the cubic polynomial kernel
k(x, y) = (xᵀy / d + 1)³, averaged over random subsets. Unbiased means the kernel's diagonal terms are left
out, so two sets drawn from one distribution average to 0 (single estimates may be negative), at any N.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (N − 1 denominator, as pytorch-fid) of (N, D) features, in float64."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need (N ≥ 2, D) features, got shape {x.shape}")
    return x.mean(0), np.cov(x, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     *, eps: float = 1e-6) -> float:
    """FD between the Gaussians (mu1, sigma1) and (mu2, sigma2)."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"feature sizes differ: {mu1.shape} vs {mu2.shape}")
    diff = mu1 - mu2
    product = sigma1 @ sigma2
    if np.linalg.matrix_rank(product) < len(product):
        # Singular (fewer samples than dimensions): regularise both, as pytorch-fid does when its first
        # square root fails; checked up front so scipy does not warn about a case handled here.
        offset = np.eye(len(sigma1)) * eps
        product = (sigma1 + offset) @ (sigma2 + offset)
    covmean = linalg.sqrtm(product)
    if np.iscomplexobj(covmean):
        # sqrtm of a product of PSD matrices is real up to rounding; a large imaginary part is a bug.
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3 * max(1.0, np.abs(covmean).max())):
            raise ValueError(f"imaginary component {np.abs(covmean.imag).max():.3g} in the FD square root")
        covmean = covmean.real
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))
    return max(value, 0.0)  # rounding can leave −1e-12 for identical sets


def fd(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between two (N, D) feature sets."""
    return frechet_distance(*feature_stats(features_a), *feature_stats(features_b))


def polynomial_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² of two sets under k(a, b) = (aᵀb / d + 1)³."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    m, n, d = len(x), len(y), x.shape[1]
    if m < 2 or n < 2:
        raise ValueError("the unbiased MMD needs at least 2 samples in each set")
    k_xx = (x @ x.T / d + 1) ** 3
    k_yy = (y @ y.T / d + 1) ** 3
    k_xy = (x @ y.T / d + 1) ** 3
    term_xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    term_yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(term_xx + term_yy - 2 * k_xy.mean())


def kid(features_a: np.ndarray, features_b: np.ndarray, *, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """KID: mean and standard deviation of the unbiased MMD² over random subsets (without replacement
    inside a subset), subset size capped at the smaller set."""
    a, b = np.asarray(features_a), np.asarray(features_b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need two (N, D) feature sets of one D, got {a.shape} and {b.shape}")
    size = min(subset_size, len(a), len(b))
    rng = np.random.default_rng(seed)
    values = [
        polynomial_mmd2_unbiased(a[rng.choice(len(a), size, replace=False)], b[rng.choice(len(b), size, replace=False)])
        for _ in range(subsets)
    ]
    return float(np.mean(values)), float(np.std(values))


def split_floor(features: np.ndarray, *, seed: int = 0) -> float:
    """FD between two random halves of one real set: the distance a perfect generator would score at
    half the sample size, printed beside every FD as its floor."""
    x = np.asarray(features)
    order = np.random.default_rng(seed).permutation(len(x))
    half = len(x) // 2
    return fd(x[order[:half]], x[order[half : 2 * half]])
