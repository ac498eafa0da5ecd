"""The game's figures against direct arithmetic: binomial tail, d′ with the log-linear correction, AUC."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.metrics import roc_auc_score

from stats.analysis import game, report, simulate


def answers_from(rows: list[tuple[str, str, str, int]]) -> pd.DataFrame:
    """(source, answer, confidence, count) → answered rounds, one player a row-group."""
    out = []
    for source, answer, confidence, count in rows:
        for _ in range(count):
            correct = (answer == "synthetic") == (source != "real")
            out.append({"player": "p", "game": "g", "tile": f"{source}{len(out)}", "source": source,
                        "tissue": "lung", "answer": answer, "confidence": confidence, "correct": correct,
                        "position": len(out) % 20 + 1})
    return pd.DataFrame(out)


def test_accuracy_against_chance_is_the_exact_binomial_tail():
    answers = answers_from([("real", "real", "sure", 15), ("real", "synthetic", "sure", 5)])
    result = game.accuracy_against_chance(answers)
    assert result["accuracy"] == 0.75
    assert result["p"] == pytest.approx(sum(math.comb(20, k) for k in range(15, 21)) / 2 ** 20)
    low, high = result["wilson95"]
    # Wilson: (p̂ + z²/2n ± z·sqrt(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)
    z, n, p = 1.959963984540054, 20, 0.75
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert (low, high) == pytest.approx(((centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)))


def test_players_against_chance_counts_players_not_answers():
    answers = pd.concat([answers_from([("real", "real", "sure", 8), ("real", "synthetic", "sure", 2)]).assign(player="a"),
                         answers_from([("real", "real", "sure", 6), ("real", "synthetic", "sure", 4)]).assign(player="b"),
                         answers_from([("real", "real", "sure", 7), ("real", "synthetic", "sure", 3)]).assign(player="c")])
    result = game.accuracy_against_chance(answers)["per_player"]
    # accuracies .8, .6, .7: mean .7, sd .1, t = (.7 − .5) / (.1/√3) = 3.4641
    assert result["players"] == 3 and result["mean"] == pytest.approx(0.7)
    assert result["statistic"] == pytest.approx(0.2 / (0.1 / math.sqrt(3)))
    # ν = 2 has a closed-form CDF: F(t) = 1/2 + t / (2·sqrt(2 + t²))
    t = result["statistic"]
    assert result["p"] == pytest.approx(0.5 - t / (2 * math.sqrt(2 + t * t)))


def test_d_prime_and_c_use_the_log_linear_correction():
    answers = answers_from([("gan", "synthetic", "sure", 30), ("gan", "real", "sure", 10),
                            ("real", "synthetic", "sure", 10), ("real", "real", "sure", 30)])
    result = game.signal_detection(answers)
    z = NormalDist().inv_cdf
    hit, fa = (30 + 0.5) / (40 + 1), (10 + 0.5) / (40 + 1)
    assert result["d_prime"] == pytest.approx(z(hit) - z(fa))
    assert result["criterion_c"] == pytest.approx(-(z(hit) + z(fa)) / 2)
    assert result["sensitivity"]["accuracy"] == 0.75 and result["specificity"]["accuracy"] == 0.75


def test_perfect_rates_stay_finite():
    answers = answers_from([("gan", "synthetic", "sure", 10), ("real", "real", "sure", 10)])
    result = game.signal_detection(answers)
    z = NormalDist().inv_cdf
    assert result["d_prime"] == pytest.approx(z(10.5 / 11) - z(0.5 / 11))


def test_only_real_tiles_say_why():
    answers = answers_from([("real", "real", "sure", 5)])
    assert game.signal_detection(answers)["note"] and game.signal_detection(answers)["d_prime"] is None
    assert game.roc(answers)["auc"] is None and game.roc(answers)["note"]


def test_grouped_auc_equals_roc_auc_score_per_player():
    answers = simulate.game_answers(games=30, rounds=20, seed=4)
    labels = (answers["source"] != "real").to_numpy()
    scores = game.suspicion(answers)
    grouped = game.grouped_auc(labels, scores, answers["player"].to_numpy())
    for player, auc in grouped.items():
        mine = (answers["player"] == player).to_numpy()
        assert auc == pytest.approx(roc_auc_score(labels[mine], scores[mine]))


def test_the_learning_slope_is_the_logit_of_every_answer():
    answers = simulate.game_answers(games=400, rounds=20, learning=0.05, seed=2)
    result = game.learning(answers)
    logit = sm.Logit(answers["correct"].astype(float), sm.add_constant(answers["position"].astype(float))).fit(disp=0)
    assert result["slope_log_odds_per_round"] == pytest.approx(logit.params["position"], rel=1e-6)
    assert result["se"] == pytest.approx(logit.bse["position"], rel=1e-6)
    assert result["ci95"][0] < 0.05 < result["ci95"][1]
    assert len(result["by_position"]) == 20


def test_fool_rate_needs_enough_answers_and_exposures_count_unanswered_rounds():
    answers = answers_from([("gan", "real", "sure", 1)])
    answers = pd.concat([answers.assign(tile="a")] * 10 + [answers.assign(tile="b")] * 3)
    exposures = pd.DataFrame({"tile": ["a", "b", "c"], "source": "gan", "tissue": "lung", "exposures": [12, 3, 4]})
    tiles = game.tile_summary(answers, exposures, min_answers=10).set_index("tile")
    assert tiles.loc["a", "fool_rate"] == 1.0 and np.isnan(tiles.loc["b", "fool_rate"])
    assert tiles["exposures"].tolist() == [12, 3, 4] and tiles.loc["c", "answers"] == 0


def test_crowd_against_experts_is_spearman_over_tiles_in_both():
    tiles = pd.DataFrame({"tile": list("abcde"), "fool_rate": [0.1, 0.2, 0.3, 0.4, None]})
    experts = pd.DataFrame({"tile": list("abcdz"), "mean_quality": [1.0, 2.0, 4.0, 3.0, 5.0]})
    result = game.crowd_vs_experts(tiles, experts)
    assert result["tiles"] == 4 and result["rho"] == pytest.approx(0.8)  # ranks 1234 vs 1243: 1 − 6·2/60
    assert game.crowd_vs_experts(tiles.head(2), experts)["note"].startswith("needs ≥ 3 tiles")


def test_the_whole_game_report_is_json_without_nan():
    import json

    result = report.analyse_game(simulate.game_answers(games=50, seed=1))
    json.dumps(result, allow_nan=False)
    assert result["answers"] == 1000 and result["roc"]["auc"] > 0.5
