"""The leaderboard, the crowd statistics and their cache, and the scoring helpers behind the results."""

from __future__ import annotations

from collections import Counter

import pytest
from django.core.cache import cache
from django.utils import timezone

from quiz import selectors, services, tasks
from quiz.models import Game
from tests.quiz.conftest import play_through

pytestmark = pytest.mark.django_db


def _finished(session_key: str, nickname: str, *, right: int, n: int = 4) -> Game:
    """A finished game with exactly `right` correct answers."""
    game = services.game_start(session_key=session_key, nickname=nickname, n=n)
    rounds = list(game.rounds.order_by("position"))
    answers = {}
    for index, played in enumerate(rounds):
        truth = "real" if played.source == "real" else "synthetic"
        wrong = "synthetic" if truth == "real" else "real"
        answers[played.position] = truth if index < right else wrong
    play_through(game, answers=answers)
    game.refresh_from_db()
    assert game.score == right
    return game


def test_the_leaderboard_keeps_each_players_best_game_highest_score_first(full_catalog, settings):
    settings.RNAGAN_QUIZ_ROUNDS = 4
    _finished("a", "Ada", right=2)
    _finished("a", "Ada", right=4)
    _finished("b", "Ada", right=3)  # same nickname, another browser: another player
    _finished("c", "Cy", right=1)
    _finished("d", "", right=4)  # no nickname: not listed
    services.game_start(session_key="e", nickname="Eve", n=4)  # unfinished: not listed
    _finished("f", "Fay", right=4, n=6)  # another game size: not listed
    top = selectors.leaderboard_top(limit=50)
    assert [(e["nickname"], e["score"]) for e in top] == [("Ada", 4), ("Ada", 3), ("Cy", 1)]
    assert len(selectors.leaderboard_top(limit=2)) == 2


def test_crowd_statistics_are_computed_on_a_miss_then_served_from_the_cache(full_catalog, settings):
    settings.RNAGAN_QUIZ_ROUNDS = 4
    _finished("a", "Ada", right=4)
    cache.delete(selectors.CROWD_CACHE_KEY)
    stats = selectors.crowd_stats()
    assert stats["games"] == 1 and stats["mean_score"] == 4 and stats["answers"] == 4
    _finished("b", "Bo", right=0)
    assert selectors.crowd_stats()["games"] == 1  # cached: the view only formats
    assert tasks.crowd_stats_refresh() == 2  # the periodic task refreshes it
    stats = selectors.crowd_stats()
    assert stats["games"] == 2 and stats["mean_score"] == 2 and stats["score_counts"] == [1, 0, 0, 0, 1]
    # Ada was right on every tile and Bo on none, so each source's tiles were recognised half the time.
    real_dealt = Game.objects.get(nickname="Ada").rounds.filter(source="real").count()
    bo_real = Game.objects.get(nickname="Bo").rounds.filter(source="real").count()
    assert {t["key"]: (t["correct"], t["total"]) for t in stats["by_source"]}.get("real", (0, 0)) == (
        real_dealt, real_dealt + bo_real)
    assert [e["nickname"] for e in stats["leaderboard"]] == ["Ada", "Bo"]


def test_the_refresh_task_has_the_project_delivery_policy_and_a_beat_entry():
    assert tasks.crowd_stats_refresh.acks_late and tasks.crowd_stats_refresh.reject_on_worker_lost
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["quiz-crowd-stats-refresh"]
    assert entry["task"] == tasks.crowd_stats_refresh.name == "quiz.tasks.crowd_stats_refresh"
    assert 0 < entry["options"]["expires"] < entry["schedule"]


def test_the_percentile_counts_ties_as_half():
    counts = [0, 1, 2, 1, 0]  # four games scored 1, 2, 2, 3
    assert selectors.percentile_of(2, counts) == 50
    assert selectors.percentile_of(4, counts) == 100
    assert selectors.percentile_of(0, counts) == 0
    assert selectors.percentile_of(3, [0, 0, 0, 0, 0]) is None


def test_roc_curves_rank_answers_by_how_sure_the_player_was_of_synthetic():
    perfect = Counter({(True, 4): 5, (False, 1): 5})
    assert selectors.roc_curve(perfect)["auc"] == pytest.approx(1.0)
    coin = Counter({(True, 4): 5, (False, 4): 5})
    assert selectors.roc_curve(coin)["auc"] == pytest.approx(0.5)
    # Unsure answers still rank: a "synthetic, unsure" ranks below "synthetic, sure" and above any "real".
    graded = Counter({(True, 4): 2, (True, 3): 2, (False, 3): 2, (False, 1): 2})
    assert selectors.roc_curve(graded)["points"][1:3] == [(0.0, 0.5), (0.5, 1.0)]
    assert selectors.roc_curve(Counter({(True, 4): 3}))["auc"] is None


def test_a_results_page_compares_the_game_with_the_crowd(full_catalog, settings):
    settings.RNAGAN_QUIZ_ROUNDS = 4
    _finished("a", "", right=1)
    _finished("b", "", right=2)
    mine = _finished("c", "", right=3)
    services.crowd_stats_refresh()
    results = selectors.game_results(game=mine)
    assert results.score == 3 and results.crowd_mean == 2
    assert results.percentile == round(100 * (2 + 0.5) / 3)
    assert sum(t.total for t in results.by_source) == 4
    assert mine.completed <= timezone.now()
