"""The expert ratings: per-rater means, the paper's paired tests and the tests beside them.

The paper compared sources per tissue with paired t-tests on each pathologist's mean score. Here the same
test runs beside a Wilcoxon signed-rank test (no normality assumption for six raters), the mean difference
with a bootstrap CI and Cohen's d_z, Holm's correction across the family of comparisons, and a linear mixed
model that uses every rating (see mixed.py).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

COMPARISONS = (("rnagan", "gan"), ("real", "gan"), ("real", "rnagan"))
PAIRED_T = "paired t, one-sided"
WILCOXON = "wilcoxon signed-rank, one-sided"
MIXED = "mixed model"
BOOTSTRAP_SEED = 20231115  # fixed, so a re-run (or a re-import) of the same ratings gives the same CI
BOOTSTRAP_RESAMPLES = 9999


def comparison_label(better: str, worse: str) -> str:
    return f"{better} > {worse}"


def first_presentations(ratings: pd.DataFrame) -> pd.DataFrame:
    """Hidden repeats measure test–retest only; every other figure counts a rater's first look at a tile."""
    return ratings[~ratings["is_repeat"]]


def per_rater(ratings: pd.DataFrame) -> pd.DataFrame:
    first = first_presentations(ratings).assign(
        right=lambda f: (f["tissue_answer"].str.lower() == f["tissue"].str.lower()).astype(float),
        artifact=lambda f: f["artifacts"].astype(float))
    table = (first.groupby(["rater", "tissue", "source"], observed=True)
             .agg(ratings=("quality", "size"), mean_quality=("quality", "mean"),
                  tissue_accuracy=("right", "mean"), artifact_rate=("artifact", "mean"))
             .reset_index())
    return table.sort_values(["tissue", "source", "rater"], kind="stable").reset_index(drop=True)


def wilson(successes: int, n: int) -> list[float] | None:
    if n == 0:
        return None
    low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
    return [float(low), float(high)]


def source_summary(ratings: pd.DataFrame, table: pd.DataFrame) -> list[dict]:
    """Across raters: mean ± SD of the per-rater means, and pooled rates with Wilson intervals."""
    first = first_presentations(ratings)
    rows = []
    for (tissue, source), group in table.groupby(["tissue", "source"], observed=True):
        pool = first[(first["tissue"] == tissue) & (first["source"] == source)]
        right = int((pool["tissue_answer"].str.lower() == pool["tissue"].str.lower()).sum())
        seen = int(pool["artifacts"].sum())
        rows.append({
            "tissue": tissue, "source": source, "raters": int(len(group)), "ratings": int(len(pool)),
            "quality_mean": float(group["mean_quality"].mean()),
            "quality_sd": float(group["mean_quality"].std(ddof=1)) if len(group) > 1 else None,
            "tissue_accuracy_mean": float(group["tissue_accuracy"].mean()),
            "tissue_accuracy_sd": float(group["tissue_accuracy"].std(ddof=1)) if len(group) > 1 else None,
            "tissue_accuracy_pooled": right / len(pool), "tissue_accuracy_wilson95": wilson(right, len(pool)),
            "artifact_rate_mean": float(group["artifact_rate"].mean()),
            "artifact_rate_sd": float(group["artifact_rate"].std(ddof=1)) if len(group) > 1 else None,
            "artifact_rate_pooled": seen / len(pool), "artifact_rate_wilson95": wilson(seen, len(pool)),
        })
    return rows


def _record(tissue: str, comparison: str, test: str, n: int, **fields) -> dict:
    record = {"tissue": tissue, "comparison": comparison, "test": test, "n": int(n), "statistic": None,
              "p": None, "p_holm": None, "effect": None, "effect_name": None, "ci95": None, "note": ""}
    record.update(fields)
    return record


def _bootstrap_ci(values: np.ndarray, statistic) -> list[float] | None:
    if len(values) < 2 or np.ptp(values) == 0:
        return None
    # Only the mean is bootstrapped: 9,999 resamples of a mean are one vectorised call.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ci = stats.bootstrap((values,), statistic, n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=0.95,
                             method="BCa", random_state=np.random.default_rng(BOOTSTRAP_SEED)).confidence_interval
        if not (np.isfinite(ci.low) and np.isfinite(ci.high)):
            # BCa needs a jackknife with spread; tiny or lumpy samples fall back to the percentile interval.
            ci = stats.bootstrap((values,), statistic, n_resamples=BOOTSTRAP_RESAMPLES, method="percentile",
                                 random_state=np.random.default_rng(BOOTSTRAP_SEED)).confidence_interval
    return [float(ci.low), float(ci.high)]


def _walsh_averages(values: np.ndarray) -> np.ndarray:
    i, j = np.triu_indices(len(values))
    return np.sort((values[i] + values[j]) / 2)


def signed_rank_null_cdf(n: int) -> np.ndarray:
    """P(T+ ≤ s) for s = 0 … n(n+1)/2 under H0 without ties: the rank i enters the sum with chance ½."""
    pmf = np.zeros(n * (n + 1) // 2 + 1)
    pmf[0] = 1.0
    for i in range(1, n + 1):
        shifted = np.zeros_like(pmf)
        shifted[i:] = pmf[:-i]
        pmf = 0.5 * (pmf + shifted)
    return np.cumsum(pmf)


def hodges_lehmann(values: np.ndarray, confidence: float = 0.95) -> tuple[float, list[float] | None]:
    """The Hodges–Lehmann estimate (median of the Walsh averages) and its distribution-free interval
    (Hollander, Wolfe & Chicken, Nonparametric Statistical Methods, 3rd ed., §3.3): the k-th smallest and
    k-th largest Walsh averages, k the largest with P(T+ ≤ k − 1) ≤ α/2 under the signed-rank null.
    Exact for n ≤ 300 raters, normal approximation beyond; None when n is too small for the level."""
    walsh = _walsh_averages(np.asarray(values, dtype=float))
    n, m = len(values), len(walsh)
    half_alpha = (1 - confidence) / 2
    if n <= 300:
        k = int(np.searchsorted(signed_rank_null_cdf(n), half_alpha + 1e-12, side="right"))
    else:
        k = int(np.floor(m / 2 - stats.norm.ppf(1 - half_alpha) * np.sqrt(n * (n + 1) * (2 * n + 1) / 24)))
    estimate = float(np.median(walsh))
    return estimate, ([float(walsh[k - 1]), float(walsh[m - k])] if k >= 1 else None)


def paired_differences(table: pd.DataFrame, tissue: str, better: str, worse: str) -> tuple[pd.Series, dict[str, str]]:
    """Per-rater mean(better) − mean(worse) for one tissue, and the raters left out (→ the source they lack)."""
    wide = table[table["tissue"] == tissue].pivot(index="rater", columns="source", values="mean_quality")
    for source in (better, worse):
        if source not in wide.columns:
            wide[source] = np.nan
    has = wide[[better, worse]].notna()
    half = wide.index[has.any(axis=1) & ~has.all(axis=1)]
    unpaired = {str(rater): (worse if has.loc[rater, better] else better) for rater in sorted(half)}
    both = wide[has.all(axis=1)]
    # Means of 1–5 scores are short fractions: rounding drops float noise (3.333… − 2.333… ≠ 1 exactly),
    # which would otherwise turn identical differences into a tiny spread and an absurd t.
    return (both[better] - both[worse]).round(9).sort_index(), unpaired


def paired_tests(table: pd.DataFrame) -> tuple[list[dict], list[str]]:
    """The paper's paired t-tests and the Wilcoxon tests, per tissue and comparison; plus warnings."""
    records, notices = [], []
    for tissue in sorted(table["tissue"].unique()):
        for better, worse in COMPARISONS:
            label = comparison_label(better, worse)
            diff, unpaired = paired_differences(table, tissue, better, worse)
            for rater, lacking in unpaired.items():
                notices.append(f"rater {rater} has no {lacking} ratings of {tissue} tiles: left out of "
                               f"{label} ({tissue})")
            n, d = len(diff), diff.to_numpy(dtype=float)
            mean = float(d.mean()) if n else None
            common = {"effect": mean, "effect_name": "mean difference (points)"}
            if n < 2:
                why = f"needs ≥ 2 raters with both {better} and {worse} {tissue} ratings; {n} found"
                records.append(_record(tissue, label, PAIRED_T, n, note=why, **(common if n else {})))
                records.append(_record(tissue, label, WILCOXON, n, note=why))
                continue
            sd = float(d.std(ddof=1))
            ci = _bootstrap_ci(d, np.mean)
            if sd == 0:
                records.append(_record(tissue, label, PAIRED_T, n, **common, ci95=ci, d_z=None,
                                       note=f"every rater's difference is {mean:+.3g}: t is undefined without spread"))
            else:
                t = stats.ttest_rel(diff.to_numpy(), np.zeros(n), alternative="greater")
                records.append(_record(tissue, label, PAIRED_T, n, statistic=float(t.statistic), p=float(t.pvalue),
                                       df=n - 1, ci95=ci, d_z=mean / sd, **common))
            if np.all(d == 0):
                records.append(_record(tissue, label, WILCOXON, n, effect=0.0, effect_name="Hodges–Lehmann estimate",
                                       note="every difference is zero: the signed-rank test has nothing to rank"))
            else:
                w = stats.wilcoxon(d, alternative="greater", zero_method="wilcox")
                estimate, interval = hodges_lehmann(d)
                records.append(_record(tissue, label, WILCOXON, n, statistic=float(w.statistic), p=float(w.pvalue),
                                       effect=estimate, effect_name="Hodges–Lehmann estimate", ci95=interval,
                                       ci_method="distribution-free (Walsh averages)",
                                       zeros_dropped=int((d == 0).sum()),
                                       note="" if interval else "too few raters for a 95 % interval"))
    return records, notices


def holm(records: list[dict]) -> None:
    """Holm's step-down adjustment within each test's family (every tissue × comparison), in place."""
    for test in {record["test"] for record in records}:
        family = [r for r in records if r["test"] == test and r["p"] is not None]
        if family:
            _, adjusted, _, _ = multipletests([r["p"] for r in family], alpha=0.05, method="holm")
            for record, value in zip(family, adjusted, strict=True):
                record["p_holm"] = float(value)
        for record in records:
            if record["test"] == test and record["p"] is None and not record["note"]:
                record["note"] = "no p-value to adjust"


def time_per_item(ratings: pd.DataFrame) -> list[dict]:
    rows = []
    for source, group in first_presentations(ratings).groupby("source", observed=True):
        seconds = pd.to_numeric(group["seconds"], errors="coerce").dropna()
        active = pd.to_numeric(group["active_seconds"], errors="coerce").dropna()
        rows.append({"source": source, "ratings": int(len(group)), "timed": int(len(seconds)),
                     "median_seconds": float(seconds.median()) if len(seconds) else None,
                     "iqr_seconds": [float(seconds.quantile(0.25)), float(seconds.quantile(0.75))] if len(seconds) else None,
                     "median_active_seconds": float(active.median()) if len(active) else None})
    return rows


def debrief(table: pd.DataFrame, raters: pd.DataFrame | None) -> dict:
    """The share of raters who suspected synthetic tiles, beside each group's accuracy and quality gap."""
    if raters is None or raters.empty or raters["suspected_synthetic"].isna().all():
        return {"answered": 0, "groups": [], "note": "no debrief answers in the data"}
    answered = raters.dropna(subset=["suspected_synthetic"])
    accuracy = table.groupby("rater")["tissue_accuracy"].mean()
    quality = table.pivot_table(index="rater", columns="source", values="mean_quality", aggfunc="mean")
    gap = (quality["real"] - quality["gan"]) if {"real", "gan"} <= set(quality.columns) else pd.Series(dtype=float)
    groups = []
    for answer in ("yes", "unsure", "no"):
        who = answered.loc[answered["suspected_synthetic"] == answer, "rater"].astype(str)
        acc, g = accuracy.reindex(who).dropna(), gap.reindex(who).dropna()
        groups.append({"suspected_synthetic": answer, "raters": int(len(who)),
                       "share": len(who) / len(answered),
                       "tissue_accuracy_mean": float(acc.mean()) if len(acc) else None,
                       "real_minus_gan_quality_mean": float(g.mean()) if len(g) else None})
    return {"answered": int(len(answered)), "groups": groups, "note": ""}
