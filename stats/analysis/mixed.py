"""The linear mixed model beside the paired tests: every rating counts, not only each rater's mean.

quality ~ source, with crossed random intercepts for rater and tile. statsmodels fits crossed effects as
variance components inside one all-embracing group (its documented recipe for crossed designs).
Contrasts are Wald z-tests on the fixed effects, one-sided in the comparison's direction.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.formula.api import mixedlm
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from stats.analysis.ratings import COMPARISONS, MIXED, _record, comparison_label, first_presentations

REFERENCE = "gan"


def _term(source: str) -> str:
    return f"C(source, Treatment(reference='{REFERENCE}'))[T.{source}]"


def fit(frame: pd.DataFrame):
    """Fit the model on one tissue's first-presentation ratings; returns the statsmodels result."""
    data = frame[["quality", "source", "rater", "tile"]].astype({"quality": float, "source": str, "rater": str,
                                                                 "tile": str}).assign(everyone=1)
    model = mixedlm(f"quality ~ C(source, Treatment(reference='{REFERENCE}'))", data, groups="everyone",
                    re_formula="0", use_sparse=True, vc_formula={"rater": "0 + C(rater)", "tile": "0 + C(tile)"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        result = model.fit(reml=True, method=["lbfgs", "powell"])
    result.convergence_notes = sorted({str(w.message).split("\n")[0] for w in caught
                                       if issubclass(w.category, ConvergenceWarning)})
    return result


def contrast(result, better: str, worse: str) -> tuple[float, float]:
    """Estimate and standard error of mean(better) − mean(worse) from the fixed effects."""
    names = list(result.fe_params.index)
    vector = np.zeros(len(names))
    for source, sign in ((better, 1.0), (worse, -1.0)):
        if source != REFERENCE:
            vector[names.index(_term(source))] += sign
    cov = result.cov_params().loc[names, names].to_numpy()
    return float(vector @ result.fe_params.to_numpy()), float(np.sqrt(vector @ cov @ vector))


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
        elif REFERENCE not in present and len(present) < 2:
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
            vc = dict(zip(result.model.exog_vc.names, np.atleast_1d(result.vcomp), strict=True))
            components[tissue] = {"rater_variance": float(vc.get("rater", np.nan)),
                                  "tile_variance": float(vc.get("tile", np.nan)),
                                  "residual_variance": float(result.scale), "ratings": int(len(data)),
                                  "converged": bool(result.converged), "warnings": result.convergence_notes}
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
