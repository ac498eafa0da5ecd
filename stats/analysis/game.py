"""The game's answers: is the crowd better than chance, at which tiles, and does it learn?

A verdict of "synthetic" is the signal-detection "yes": sensitivity is the share of synthetic tiles called
synthetic, specificity the share of real tiles called real. The ROC uses the four ordered responses
real-sure < real-unsure < synthetic-unsure < synthetic-sure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score, roc_curve
from statsmodels.genmod.families import Binomial
from statsmodels.genmod.generalized_linear_model import GLM

from stats.analysis.ratings import wilson

MIN_ANSWERS_PER_TILE = 10
SCORE = {("real", "sure"): 1, ("real", "unsure"): 2, ("synthetic", "unsure"): 3, ("synthetic", "sure"): 4}


def suspicion(answers: pd.DataFrame) -> np.ndarray:
    """The ordered response 1–4: how strongly the player said 'synthetic'."""
    synthetic = (answers["answer"] == "synthetic").to_numpy()
    sure = (answers["confidence"] == "sure").to_numpy()
    return np.where(synthetic, np.where(sure, 4, 3), np.where(sure, 1, 2))


def proportion(successes: int, n: int, **extra) -> dict:
    return {"n": int(n), "correct": int(successes), "accuracy": successes / n if n else None,
            "wilson95": wilson(successes, n), **extra}


def accuracy_against_chance(answers: pd.DataFrame) -> dict:
    n, k = len(answers), int(answers["correct"].sum())
    if n == 0:
        return proportion(0, 0, p=None, test="exact binomial, one-sided (accuracy > 0.5)",
                          note="no answers yet")
    test = stats.binomtest(k, n, 0.5, alternative="greater")
    return proportion(k, n, p=float(test.pvalue), test="exact binomial, one-sided (accuracy > 0.5)", note="",
                      per_player=players_against_chance(answers))


def players_against_chance(answers: pd.DataFrame) -> dict:
    """The binomial test treats every answer as independent, but answers cluster within players: beside it,
    a one-sided one-sample t-test of each player's accuracy against 0.5 counts players, not answers."""
    accuracy = answers.groupby("player", observed=True)["correct"].mean()
    out = {"test": "one-sample t on per-player accuracy, one-sided (> 0.5)", "players": int(len(accuracy)),
           "mean": float(accuracy.mean()) if len(accuracy) else None, "statistic": None, "p": None, "note": ""}
    if len(accuracy) < 2 or accuracy.std(ddof=1) == 0:
        out["note"] = "needs ≥ 2 players whose accuracies differ"
        return out
    t = stats.ttest_1samp(accuracy.to_numpy(float), 0.5, alternative="greater")
    return out | {"statistic": float(t.statistic), "p": float(t.pvalue)}


def accuracy_by(answers: pd.DataFrame, column: str) -> list[dict]:
    counts = answers.groupby(column, observed=True)["correct"].agg(["sum", "size"])
    return [proportion(int(row["sum"]), int(row["size"]), **{column: key}) for key, row in counts.iterrows()]


def signal_detection(answers: pd.DataFrame) -> dict:
    """Sensitivity, specificity, d′ and c.

    Rates of 0 or 1 make z infinite. The log-linear correction (Hautus 1995, Behav. Res. Methods 27:46–51)
    adds 0.5 to the hits and false alarms and 1 to each trial count; it is applied to every rate, not only
    the extreme ones, because Hautus showed selective correction biases d′ more than correcting all.
    """
    synthetic = answers["source"] != "real"
    said = answers["answer"] == "synthetic"
    n_signal, n_noise = int(synthetic.sum()), int((~synthetic).sum())
    hits, false_alarms = int((synthetic & said).sum()), int((~synthetic & said).sum())
    out = {"synthetic_tiles": n_signal, "real_tiles": n_noise,
           "sensitivity": proportion(hits, n_signal), "specificity": proportion(n_noise - false_alarms, n_noise),
           "d_prime": None, "criterion_c": None, "correction": "log-linear (Hautus 1995), applied to all rates",
           "note": ""}
    if n_signal == 0 or n_noise == 0:
        out["note"] = "needs answers on both real and synthetic tiles"
        return out
    z_hit = stats.norm.ppf((hits + 0.5) / (n_signal + 1))
    z_fa = stats.norm.ppf((false_alarms + 0.5) / (n_noise + 1))
    out["d_prime"], out["criterion_c"] = float(z_hit - z_fa), float(-(z_hit + z_fa) / 2)
    return out


def grouped_auc(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> pd.Series:
    """ROC AUC per group through the Mann–Whitney rank identity, with mid-ranks for ties.

    roc_auc_score per player costs about a millisecond a call, a minute for 50,000 players; one grouped rank
    does them all at once and equals it exactly (tests/stats/test_game.py checks both against each other).
    """
    frame = pd.DataFrame({"g": groups, "y": labels.astype(bool), "s": scores})
    frame["rank"] = frame.groupby("g")["s"].rank(method="average")
    per = frame.groupby("g").agg(n1=("y", "sum"), n=("y", "size"))
    per["rank_sum"] = frame[frame["y"]].groupby("g")["rank"].sum()
    per["n0"] = per["n"] - per["n1"]
    auc = (per["rank_sum"] - per["n1"] * (per["n1"] + 1) / 2) / (per["n1"] * per["n0"])
    return auc.where((per["n1"] > 0) & (per["n0"] > 0))


def roc(answers: pd.DataFrame) -> dict:
    labels = (answers["source"] != "real").to_numpy()
    if labels.all() or not labels.any():
        return {"auc": None, "curve": None, "per_player": None,
                "note": "needs answers on both real and synthetic tiles"}
    scores = suspicion(answers)
    fpr, tpr, thresholds = roc_curve(labels, scores)
    per_player = grouped_auc(labels, scores, answers["player"].to_numpy()).dropna()
    return {
        "auc": float(roc_auc_score(labels, scores)),
        "curve": {"fpr": fpr.tolist(), "tpr": tpr.tolist(),
                  "threshold": [None if not np.isfinite(t) else int(t) for t in thresholds]},
        "per_player": {"players": int(len(per_player)),
                       "mean": float(per_player.mean()) if len(per_player) else None,
                       "median": float(per_player.median()) if len(per_player) else None,
                       "quartiles": [float(per_player.quantile(q)) for q in (0.25, 0.75)] if len(per_player) else None},
        "note": "",
    }


def learning(answers: pd.DataFrame) -> dict:
    """Accuracy by round, and the slope of a logistic regression of correctness on the round's position.

    The binomial GLM on (right, wrong) counts per position is the same likelihood as a Logit on every answer,
    at the cost of one row per position instead of one per answer.
    """
    counts = answers.groupby("position")["correct"].agg(["sum", "size"]).sort_index()
    by_position = [proportion(int(r["sum"]), int(r["size"]), position=int(p)) for p, r in counts.iterrows()]
    out = {"by_position": by_position, "slope_log_odds_per_round": None, "se": None, "p": None, "ci95": None,
           "odds_ratio_per_round": None, "test": "logistic regression (binomial GLM), two-sided Wald", "note": ""}
    if len(counts) < 2:
        out["note"] = "needs answers at ≥ 2 round positions"
        return out
    right = counts["sum"].to_numpy(float)
    if right.sum() in (0, counts["size"].sum()):
        out["note"] = "every answer is right (or every one wrong): the slope is not estimable"
        return out
    exog = np.column_stack([np.ones(len(counts)), counts.index.to_numpy(float)])
    fit = GLM(np.column_stack([right, counts["size"].to_numpy(float) - right]), exog, family=Binomial()).fit()
    slope, se = float(fit.params[1]), float(fit.bse[1])
    out.update(slope_log_odds_per_round=slope, se=se, p=float(fit.pvalues[1]),
               ci95=[slope - 1.959964 * se, slope + 1.959964 * se], odds_ratio_per_round=float(np.exp(slope)))
    return out


def tile_summary(answers: pd.DataFrame, exposures: pd.DataFrame | None = None,
                 min_answers: int = MIN_ANSWERS_PER_TILE) -> pd.DataFrame:
    """Per tile: exposures (dealt rounds), answers, fooled and the fool rate once answers ≥ min_answers."""
    table = (answers.assign(fooled=~answers["correct"].astype(bool))
             .groupby("tile", observed=True)
             .agg(source=("source", "first"), tissue=("tissue", "first"), answers=("correct", "size"),
                  fooled=("fooled", "sum"))
             .reset_index())
    if exposures is not None and len(exposures):
        table = exposures[["tile", "source", "tissue", "exposures"]].merge(
            table.drop(columns=["source", "tissue"]), on="tile", how="left")
        table[["answers", "fooled"]] = table[["answers", "fooled"]].fillna(0)
    else:
        table["exposures"] = table["answers"]
    table = table.astype({"answers": int, "fooled": int, "exposures": int})
    table["fool_rate"] = (table["fooled"] / table["answers"]).where(table["answers"] >= min_answers)
    return table[["tile", "source", "tissue", "exposures", "answers", "fooled", "fool_rate"]].sort_values(
        "tile", kind="stable").reset_index(drop=True)


def per_player(answers: pd.DataFrame) -> pd.DataFrame:
    labels = (answers["source"] != "real").to_numpy()
    table = answers.groupby("player", observed=True)["correct"].agg(answers="size", accuracy="mean")
    table["auc"] = grouped_auc(labels, suspicion(answers), answers["player"].to_numpy())
    return table.reset_index()[["player", "answers", "accuracy", "auc"]]


def crowd_vs_experts(tiles: pd.DataFrame, study_tiles: pd.DataFrame | None) -> dict:
    """Spearman's ρ of the crowd's fool rate against the experts' mean quality, over tiles in both."""
    base = {"test": "Spearman rank correlation, two-sided", "tiles": 0, "rho": None, "p": None}
    if study_tiles is None or study_tiles.empty:
        return base | {"note": "no study ratings to compare with"}
    both = tiles.dropna(subset=["fool_rate"]).merge(study_tiles[["tile", "mean_quality"]], on="tile")
    base["tiles"] = int(len(both))
    if len(both) < 3:
        return base | {"note": f"needs ≥ 3 tiles with enough game answers (≥ {MIN_ANSWERS_PER_TILE}) that "
                               f"experts also rated; {len(both)} found"}
    if both["fool_rate"].nunique() < 2 or both["mean_quality"].nunique() < 2:
        return base | {"note": "one of the two measures does not vary over these tiles"}
    rho = stats.spearmanr(both["fool_rate"], both["mean_quality"])
    return base | {"rho": float(rho.statistic), "p": float(rho.pvalue), "note": ""}
