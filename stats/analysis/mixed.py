"""The linear mixed model beside the paired tests: every rating counts, not only each rater's mean.

quality ~ source, with crossed random intercepts for rater and tile, fitted by REML.

Why not statsmodels' `mixedlm` (which the tests use as the oracle): with crossed effects it works on
n × (raters + tiles) sparse matrices at every gradient step; for one tissue of a 100-rater × 600-tile study
(30,000 ratings) it took 20–26 s on this 2-core machine, so two tissues alone broke the 60 s budget of
the statistics task. Here the profiled REML criterion of Bates et al. (2015), "Fitting Linear Mixed-Effects
Models Using lme4", J. Stat. Softw. 67(1), §3 (eqs. 14–18, 41–42) is evaluated from the cross-products
Z'Z, Z'X, X'X, Z'y, X'y, y'y, formed once: each evaluation is a dense Cholesky of (raters + tiles)², the
fit takes well under a second, and it agrees with statsmodels to 1e-4 (tests/stats/test_mixed.py).
Contrasts are Wald z-tests on the fixed effects, one-sided in the comparison's direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg, optimize, sparse, stats

from stats.analysis.ratings import COMPARISONS, MIXED, _record, comparison_label, first_presentations

REFERENCE = "gan"


@dataclass(frozen=True)
class MixedFit:
    names: list[str]  # fixed effects: "Intercept", then one per non-reference source
    params: np.ndarray
    cov: np.ndarray
    rater_variance: float
    tile_variance: float
    residual_variance: float
    converged: bool
    n: int


def _design(frame: pd.DataFrame) -> tuple[np.ndarray, sparse.csr_matrix, np.ndarray, list[str], int]:
    sources = [s for s in sorted(frame["source"].unique()) if s != REFERENCE]
    reference = REFERENCE if REFERENCE in set(frame["source"]) else None
    if reference is None:  # no GAN ratings: the first source present is the baseline
        sources = sources[1:]
    x = np.column_stack([np.ones(len(frame))] + [(frame["source"] == s).to_numpy(float) for s in sources])
    raters = pd.Categorical(frame["rater"].astype(str))
    tiles = pd.Categorical(frame["tile"].astype(str))
    q_r = len(raters.categories)
    rows = np.arange(len(frame))
    z = sparse.csr_matrix((np.ones(2 * len(frame)), (np.concatenate([rows, rows]),
                           np.concatenate([raters.codes, q_r + tiles.codes]))),
                          shape=(len(frame), q_r + len(tiles.categories)))
    return x, z, frame["quality"].to_numpy(float), ["Intercept", *sources], q_r


def fit(frame: pd.DataFrame) -> MixedFit:
    """REML fit of quality ~ source + (1 | rater) + (1 | tile) on one tissue's ratings."""
    x, z, y, names, q_r = _design(frame)
    n, p = x.shape
    q = z.shape[1]
    ztz = (z.T @ z).toarray()
    ztx, zty = np.asarray(z.T @ x), np.asarray(z.T @ y)
    xtx, xty, yty = x.T @ x, x.T @ y, float(y @ y)

    def solve(theta: np.ndarray):
        lam = np.concatenate([np.full(q_r, theta[0]), np.full(q - q_r, theta[1])])
        # L Lᵀ = Λ ZᵀZ Λ + I  (lme4 eq. 14, Λ diagonal here)
        chol = linalg.cholesky(lam[:, None] * ztz * lam[None, :] + np.eye(q), lower=True)
        r_zx = linalg.solve_triangular(chol, lam[:, None] * ztx, lower=True)
        c_u = linalg.solve_triangular(chol, lam * zty, lower=True)
        rx_rx = xtx - r_zx.T @ r_zx
        r_x = linalg.cholesky(rx_rx, lower=False)
        c_beta = linalg.solve_triangular(r_x, xty - r_zx.T @ c_u, trans="T")
        beta = linalg.solve_triangular(r_x, c_beta)
        # Penalised residual sum of squares: yᵀy minus the squared norms of the two solved blocks.
        pwrss = max(yty - c_u @ c_u - c_beta @ c_beta, 1e-12)
        return chol, r_x, beta, pwrss

    def reml_deviance(theta: np.ndarray) -> float:
        chol, r_x, _, pwrss = solve(theta)
        log_det_l = 2 * np.log(np.diag(chol)).sum()
        log_det_rx = 2 * np.log(np.abs(np.diag(r_x))).sum()
        return log_det_l + log_det_rx + (n - p) * (1 + np.log(2 * np.pi * pwrss / (n - p)))  # lme4 eq. 42

    best = optimize.minimize(reml_deviance, x0=np.array([0.5, 0.5]), method="L-BFGS-B",
                             bounds=[(0.0, 50.0), (0.0, 50.0)])
    chol, r_x, beta, pwrss = solve(best.x)
    sigma2 = pwrss / (n - p)
    r_inv = linalg.solve_triangular(r_x, np.eye(p))
    return MixedFit(names=names, params=beta, cov=sigma2 * (r_inv @ r_inv.T),
                    rater_variance=float(best.x[0] ** 2 * sigma2), tile_variance=float(best.x[1] ** 2 * sigma2),
                    residual_variance=float(sigma2), converged=bool(best.success), n=n)


def contrast(result: MixedFit, better: str, worse: str) -> tuple[float, float]:
    """Estimate and standard error of mean(better) − mean(worse) from the fixed effects."""
    vector = np.zeros(len(result.names))
    for source, sign in ((better, 1.0), (worse, -1.0)):
        if source in result.names:
            vector[result.names.index(source)] += sign
    return float(vector @ result.params), float(np.sqrt(vector @ result.cov @ vector))


def mixed_model_tests(ratings: pd.DataFrame) -> tuple[list[dict], dict]:
    """One record per tissue and comparison, and the variance components per tissue."""
    records, components = [], {}
    first = first_presentations(ratings)
    for tissue in sorted(first["tissue"].unique()):
        data = first[first["tissue"] == tissue]
        present = set(data["source"].unique())
        why = ""
        if data["rater"].nunique() < 2:
            why = "needs ratings from ≥ 2 raters"
        elif len(present) < 2:
            why = "needs ≥ 2 sources"
        elif data["quality"].nunique() < 2:
            why = "every quality score is the same: nothing to model"
        result = None
        if not why:
            try:
                result = fit(data)
            except (np.linalg.LinAlgError, ValueError) as exc:
                why = f"the model could not be fitted ({exc})"
        if result is not None:
            components[tissue] = {"rater_variance": result.rater_variance, "tile_variance": result.tile_variance,
                                  "residual_variance": result.residual_variance, "ratings": result.n,
                                  "converged": result.converged, "method": "REML"}
        for better, worse in COMPARISONS:
            label = comparison_label(better, worse)
            n = int(data["source"].isin([better, worse]).sum())
            if result is None or not {better, worse} <= present:
                note = why or f"no {tissue} ratings of {' or '.join(sorted({better, worse} - present))} tiles"
                records.append(_record(tissue, label, MIXED, n, note=note))
                continue
            estimate, se = contrast(result, better, worse)
            if not (np.isfinite(se) and se > 0):
                records.append(_record(tissue, label, MIXED, n, effect=estimate, effect_name="fixed-effect contrast (points)",
                                       note="the contrast's standard error is undefined (singular fit)"))
                continue
            z = estimate / se
            half = stats.norm.ppf(0.975) * se
            records.append(_record(tissue, label, MIXED, n, statistic=z, p=float(stats.norm.sf(z)), effect=estimate,
                                   effect_name="fixed-effect contrast (points), Wald z",
                                   ci95=[estimate - half, estimate + half],
                                   note="" if result.converged else "the optimiser reported no convergence"))
    return records, components
