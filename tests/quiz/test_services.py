"""Dealing a game and storing answers: balance, repeats, order, and a server that is the only judge."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from quiz import pool, selectors, services
from quiz.models import Game, GameRound
from tests.quiz.conftest import play_through

pytestmark = pytest.mark.django_db


def _rounds(game: Game) -> list[GameRound]:
    return list(game.rounds.select_related("tile").order_by("position"))


def test_a_game_is_half_real_and_splits_the_synthetic_half_equally_between_gan_and_rnagan(full_catalog):
    game = services.game_start(session_key="s1")
    rounds = _rounds(game)
    assert game.n == 20 and len(rounds) == 20
    assert Counter(r.source for r in rounds) == {"real": 10, "gan": 5, "rnagan": 5}
    # The stored truth is the tile's own source.
    assert all(r.source == r.tile.source for r in rounds)


def test_an_odd_synthetic_half_still_differs_by_at_most_one_between_generators(full_catalog):
    for seed in range(6):
        game = services.game_start(session_key=f"odd{seed}", n=6, seed=seed)
        counts = Counter(r.source for r in _rounds(game))
        assert counts["real"] == 3 and counts["gan"] + counts["rnagan"] == 3
        assert abs(counts["gan"] - counts["rnagan"]) == 1


def test_tissues_are_spread_evenly_over_the_game_and_over_each_source(catalog):
    catalog.fill(("lung", "colon", "liver"), real=10, gan=5, rnagan=5)
    for seed in range(5):
        rounds = _rounds(services.game_start(session_key=f"t{seed}", seed=seed))
        per_tissue = Counter(r.tile.tissue for r in rounds)
        assert set(per_tissue) == {"lung", "colon", "liver"}
        assert max(per_tissue.values()) - min(per_tissue.values()) <= 1
        for source in ("real", "gan", "rnagan"):
            per_source = Counter(r.tile.tissue for r in rounds if r.source == source)
            assert max(per_source.values()) - min(per_source.values()) <= 1, (source, per_source)


def test_a_tissue_without_all_three_kinds_of_tile_is_left_out(full_catalog):
    # Only real pancreas tiles exist: showing one would give the answer away.
    full_catalog.add("real", "pancreas", 20)
    full_catalog.add("gan", "stomach", 20)
    tissues = {r.tile.tissue for r in _rounds(services.game_start(session_key="s"))}
    assert tissues == {"lung", "colon"}


def test_a_tissue_short_of_one_kind_hands_its_share_to_another_tissue(catalog):
    catalog.fill(("lung",), real=10, gan=1, rnagan=5)
    catalog.fill(("colon",), real=10, gan=10, rnagan=5)
    rounds = _rounds(services.game_start(session_key="s"))
    assert Counter(r.source for r in rounds) == {"real": 10, "gan": 5, "rnagan": 5}
    assert Counter(r.tile.tissue for r in rounds if r.source == "gan") == {"lung": 1, "colon": 4}


def test_no_tile_appears_twice_and_the_deal_is_reproducible_from_the_stored_seed(full_catalog):
    game = services.game_start(session_key="s")
    rounds = _rounds(game)
    assert [r.position for r in rounds] == list(range(1, 21))
    assert len({r.tile_id for r in rounds}) == 20
    again = services.deal(pool.pool_read(), n=game.n, seen=set(), seed=game.seed)
    assert again == [(r.tile_id, r.source) for r in rounds]
    assert game.expires - game.created == timedelta(hours=2)


def test_the_database_refuses_a_tile_twice_in_one_game(full_catalog):
    game = services.game_start(session_key="s")
    first = _rounds(game)[0]
    with pytest.raises(IntegrityError), transaction.atomic():
        GameRound.objects.create(game=game, position=99, tile=first.tile, source=first.source)


def test_tiles_this_browser_has_seen_are_avoided_while_the_pool_allows(full_catalog):
    first = {r.tile_id for r in _rounds(services.game_start(session_key="me"))}
    second = {r.tile_id for r in _rounds(services.game_start(session_key="me"))}
    assert not first & second
    # The pool (24 real) cannot give a third game 10 unseen real tiles: repeats are allowed, not an error.
    third = _rounds(services.game_start(session_key="me"))
    assert len(third) == 20
    assert selectors.tiles_seen(session_key="me") >= first | second
    assert selectors.tiles_seen(session_key="someone-else") == set()


def test_a_pool_too_small_is_refused_with_a_message_that_says_what_is_missing(catalog):
    catalog.fill(("lung",), real=10, gan=2, rnagan=5)
    with pytest.raises(services.PoolTooSmall) as refusal:
        services.game_start(session_key="s")
    assert "needs at least 10 Real, 5 GAN, 5 RNA-GAN" in str(refusal.value)
    assert "has 10 Real, 2 GAN, 5 RNA-GAN" in str(refusal.value)
    assert not Game.objects.exists()
    assert pool.pool_status(n=20).ready is False


def test_a_started_game_reads_the_catalog_once_per_process_not_once_per_game(full_catalog,
                                                                            django_assert_num_queries):
    services.game_start(session_key="first")
    # The pool is kept: a start is the seen-tiles query and two INSERTs (game, rounds), plus the
    # SAVEPOINT / RELEASE pair its transaction becomes inside a test's own transaction.
    with django_assert_num_queries(5):
        services.game_start(session_key="second")


def test_a_tile_deactivated_after_the_pool_was_kept_is_never_dealt(catalog):
    catalog.fill(("lung",), real=10, gan=5, rnagan=6)
    services.game_start(session_key="warm-up")  # the pool of 21 tiles is now kept by this process
    retired = [t for t in catalog.tiles if t.source == "rnagan"][0]
    retired.active = False
    retired.save()
    # Exactly 20 active tiles remain, so every game must deal all of them and none other.
    for seed in range(3):
        rounds = _rounds(services.game_start(session_key=f"s{seed}", seed=seed))
        assert len(rounds) == 20 and retired.pk not in {r.tile_id for r in rounds}


def test_inactive_and_noise_ablation_tiles_are_never_dealt(full_catalog):
    full_catalog.add("noise", "lung", 10)
    for tile in full_catalog.tiles[:3]:
        tile.active = False
        tile.save()
    inactive = {t.pk for t in full_catalog.tiles[:3]}
    rounds = _rounds(services.game_start(session_key="s"))
    assert not {r.tile_id for r in rounds} & inactive
    assert "noise" not in {r.source for r in rounds}


def test_answers_are_judged_on_the_server_and_the_score_is_stored_on_completion(full_catalog):
    game = services.game_start(session_key="s")
    truth = {r.position: r.source for r in _rounds(game)}
    # Right on every real tile and on RNA-GAN, wrong on GAN (called real).
    answers = {p: "synthetic" if s == "rnagan" else "real" for p, s in truth.items()}
    receipts = play_through(game, answers=answers)
    assert [r.correct for r in receipts] == [truth[p] != "gan" for p in range(1, 21)]
    assert receipts[-1].score == 15 and receipts[-1].completed
    assert not any(r.completed for r in receipts[:-1])
    game.refresh_from_db()
    assert game.score == 15 and game.completed is not None


def test_an_answer_cannot_be_changed(full_catalog):
    game = services.game_start(session_key="s")
    services.quiz_answer_submit(game_token=game.token, position=1, answer="real", confidence="sure")
    with pytest.raises(services.RoundAlreadyAnswered):
        services.quiz_answer_submit(game_token=game.token, position=1, answer="synthetic", confidence="unsure")
    stored = game.rounds.get(position=1)
    assert (stored.answer, stored.confidence) == ("real", "sure")


def test_answers_must_come_in_order(full_catalog):
    game = services.game_start(session_key="s")
    with pytest.raises(services.RoundOutOfOrder):
        services.quiz_answer_submit(game_token=game.token, position=2, answer="real", confidence="sure")
    assert not game.rounds.filter(answered_at__isnull=False).exists()


def test_an_expired_game_takes_no_answers(full_catalog):
    game = services.game_start(session_key="s")
    Game.objects.filter(pk=game.pk).update(expires=timezone.now() - timedelta(seconds=1))
    with pytest.raises(services.GameExpired):
        services.quiz_answer_submit(game_token=game.token, position=1, answer="real", confidence="sure")
    assert not game.rounds.filter(answered_at__isnull=False).exists()


def test_unknown_games_missing_rounds_bad_answers_and_finished_games_are_refused(full_catalog):
    game = services.game_start(session_key="s", n=4)
    with pytest.raises(services.GameNotFound):
        services.quiz_answer_submit(game_token="nope", position=1, answer="real", confidence="sure")
    with pytest.raises(services.QuizError):
        services.quiz_answer_submit(game_token=game.token, position=1, answer="maybe", confidence="sure")
    play_through(game)
    with pytest.raises(services.GameFinished):
        services.quiz_answer_submit(game_token=game.token, position=4, answer="real", confidence="sure")


def test_the_answer_path_is_one_statement_and_two_on_the_last_round(full_catalog, django_assert_num_queries):
    game = services.game_start(session_key="s", n=2)
    with django_assert_num_queries(1):
        services.quiz_answer_submit(game_token=game.token, position=1, answer="real", confidence="sure")
    with django_assert_num_queries(2):
        services.quiz_answer_submit(game_token=game.token, position=2, answer="real", confidence="unsure")


def test_game_finish_mends_a_game_whose_completion_was_lost(full_catalog):
    game = services.game_start(session_key="s", n=4)
    play_through(game)
    Game.objects.filter(pk=game.pk).update(completed=None, score=None)
    game.refresh_from_db()
    services.game_finish(game=game)
    assert game.completed is not None and game.score == sum(1 for r in game.rounds.all() if r.correct)
    services.game_finish(game=game)  # twice is harmless


def test_nicknames_are_trimmed_to_printable_text_and_length_limited():
    assert services.nickname_normalize("  Ada\u0000  \n Lovelace ") == "Ada Lovelace"
    assert len(services.nickname_normalize("x" * 100)) == 24
    assert services.nickname_normalize("<b>bold</b>") == "<b>bold</b>"  # escaped when shown, not mangled
