"""Agreement between raters (anchor set) and of a rater with themself (hidden repeats).

Fleiss' κ comes from statsmodels, Krippendorff's α from the `krippendorff` package and the weighted κ
from scikit-learn. ICC(2,1) is written out because no installed library has it (pingouin is not a
dependency): Shrout & Fleiss (1979), "Intraclass correlations: uses in assessing rater reliability",
Psychol. Bull. 86(2):420–428, Table 1, case 2 (two-way random effects, single rater, absolute agreement):
    ICC(2,1) = (BMS − EMS) / (BMS + (k − 1)·EMS + k·(JMS − EMS)/n)
with n targets (tiles), k judges (raters) and the mean squares of a two-way ANOVA without replication.
"""

from __future__ import annotations

import krippendorff
import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa


def result(value: float | None, *, n_items: int, n_raters: int, note: str = "", **extra) -> dict:
    """One agreement figure; `value` is None (with a note saying why) when it cannot be computed."""
    if value is not None and not np.isfinite(value):
        value = None
        note = note or "undefined for these data (no variation between items or raters)"
    return {"value": None if value is None else float(value), "items": int(n_items), "raters": int(n_raters),
            "note": note, **extra}


def complete_matrix(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    """Tiles × raters, keeping the raters who rated every tile and the tiles every kept rater rated."""
    wide = frame.pivot_table(index="tile", columns="rater", values=value, aggfunc="first")
    if wide.empty:
        return wide
    # Drop the raters missing most first, then any tile still incomplete.
    wide = wide.loc[:, wide.notna().mean() == wide.notna().mean().max()]
    return wide.dropna(axis=0, how="any")


def fleiss(frame: pd.DataFrame, value: str) -> dict:
    """Fleiss' κ over a categorical column, on the tiles × raters matrix with no gaps."""
    wide = complete_matrix(frame, value)
    n_items, n_raters = wide.shape
    if n_items < 2 or n_raters < 2:
        return result(None, n_items=n_items, n_raters=n_raters,
                      note=f"needs ≥ 2 tiles rated by the same ≥ 2 raters; have {n_items} × {n_raters}")
    codes = wide.apply(lambda col: col.astype(str)).to_numpy()
    table, _ = aggregate_raters(codes)
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = fleiss_kappa(table, method="fleiss")
    if not np.isfinite(kappa):
        return result(None, n_items=n_items, n_raters=n_raters,
                      note="every rater gave the same answer on every tile: κ is undefined without variation")
    return result(kappa, n_items=n_items, n_raters=n_raters)


def krippendorff_alpha(frame: pd.DataFrame, value: str = "quality", level: str = "ordinal") -> dict:
    """Krippendorff's α; missing cells are allowed, so every rating of the set counts."""
    wide = frame.pivot_table(index="rater", columns="tile", values=value, aggfunc="first")
    pairable = (wide.notna().sum(axis=0) >= 2).sum()
    if wide.shape[0] < 2 or pairable < 1:
        return result(None, n_items=pairable, n_raters=wide.shape[0],
                      note="needs ≥ 2 raters on at least one shared tile")
    data = wide.to_numpy(dtype=float)
    if len(np.unique(data[~np.isnan(data)])) < 2:
        return result(None, n_items=pairable, n_raters=wide.shape[0],
                      note="every rating has the same value: α is undefined without variation")
    return result(krippendorff.alpha(reliability_data=data, level_of_measurement=level),
                  n_items=int(pairable), n_raters=wide.shape[0])


def icc_2_1(matrix: np.ndarray) -> float:
    """ICC(2,1) of an n targets × k judges matrix with no gaps (Shrout & Fleiss 1979, see module doc)."""
    x = np.asarray(matrix, dtype=float)
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_error = ((x - grand) ** 2).sum() - ss_rows - ss_cols
    bms = ss_rows / (n - 1)
    jms = ss_cols / (k - 1)
    ems = ss_error / ((n - 1) * (k - 1))
    denominator = bms + (k - 1) * ems + k * (jms - ems) / n
    return float((bms - ems) / denominator) if denominator > 0 else float("nan")


def icc(frame: pd.DataFrame, value: str = "quality") -> dict:
    wide = complete_matrix(frame, value)
    n_items, n_raters = wide.shape
    if n_items < 2 or n_raters < 2:
        return result(None, n_items=n_items, n_raters=n_raters,
                      note=f"needs ≥ 2 tiles rated by the same ≥ 2 raters; have {n_items} × {n_raters}")
    return result(icc_2_1(wide.to_numpy()), n_items=n_items, n_raters=n_raters)


def anchor_set(ratings: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The first presentations of the anchor tiles; without an anchor flag, the tiles every rater rated."""
    first = ratings[~ratings["is_repeat"]]
    if first["is_anchor"].any():
        return first[first["is_anchor"]], "the anchor tiles"
    raters = first["rater"].nunique()
    per_tile = first.groupby("tile")["rater"].nunique()
    shared = per_tile.index[per_tile == raters]
    return first[first["tile"].isin(shared)], "the tiles every rater rated (no anchor flag in the data)"


def agreement(ratings: pd.DataFrame) -> dict:
    anchors, basis = anchor_set(ratings)
    return {
        "basis": basis,
        "tiles": int(anchors["tile"].nunique()),
        "fleiss_kappa_tissue": fleiss(anchors, "tissue_answer"),
        "fleiss_kappa_artifacts": fleiss(anchors, "artifacts"),
        "krippendorff_alpha_quality": krippendorff_alpha(anchors, "quality"),
        "icc_2_1_quality": icc(anchors, "quality"),
    }


def _kappa(first: pd.Series, second: pd.Series, weights: str | None) -> float | None:
    labels = sorted(set(first) | set(second))
    if len(labels) < 2:
        return None
    with np.errstate(all="ignore"):
        value = cohen_kappa_score(first, second, weights=weights, labels=labels)
    return float(value) if np.isfinite(value) else None


def retest_agreement(ratings: pd.DataFrame) -> dict:
    """Each hidden repeat against the same rater's first rating of the tile."""
    repeats = ratings[ratings["is_repeat"]]
    firsts = ratings[~ratings["is_repeat"]].drop_duplicates(["rater", "tile"])
    pairs = repeats.merge(firsts, on=["rater", "tile"], suffixes=("_again", "_first"))
    n, raters = len(pairs), int(pairs["rater"].nunique())
    if n < 2:
        note = "no hidden repeats in the data" if repeats.empty else f"only {n} repeat pair(s)"
        return {name: result(None, n_items=n, n_raters=raters, note=note)
                for name in ("quality_weighted_kappa", "tissue_kappa", "artifacts_kappa")} | {"pairs": n}
    same = "undefined: every answer in the pairs is the same value"
    out = {"pairs": n}
    for name, column, weights in (("quality_weighted_kappa", "quality", "quadratic"),
                                  ("tissue_kappa", "tissue_answer", None),
                                  ("artifacts_kappa", "artifacts", None)):
        value = _kappa(pairs[f"{column}_first"].astype(str) if weights is None else pairs[f"{column}_first"],
                       pairs[f"{column}_again"].astype(str) if weights is None else pairs[f"{column}_again"],
                       weights)
        out[name] = result(value, n_items=n, n_raters=raters, note="" if value is not None else same,
                           weights=weights or "none")
    out["quality_exact_agreement"] = float((pairs["quality_first"] == pairs["quality_again"]).mean())
    return out
