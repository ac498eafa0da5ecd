"""Dealing a game and storing answers: balance, repeats, order, and a server that is the only judge."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone

from generation.models import Tile
from quiz import pool, selectors, services
from quiz.models import Game, GameRound
from tests.quiz.conftest import play_through

pytestmark = pytest.mark.django_db


def _rounds(game: Game) -> list[GameRound]:
    return list(game.rounds.select_related("tile").order_by("position"))


def test_each_round_has_its_own_source_and_the_stored_truth_is_the_tiles(full_catalog):
    game = services.game_start(session_key="s1")
    rounds = _rounds(game)
    assert game.n == 20 and len(rounds) == 20
    assert {r.source for r in rounds} <= {"real", "gan", "rnagan"}
    assert all(r.source == r.tile.source for r in rounds)


def test_over_2000_dealt_games_half_the_tiles_are_real_and_the_count_is_not_fixed():
    # deal() is pure over a pool, so 2,000 games are dealt here without a database.
    ids = iter(range(1, 10**6))
    the_pool = pool.Pool.from_rows((next(ids), source, tissue) for source in ("real", "gan", "rnagan")
                                   for tissue in ("lung", "colon") for _ in range(30))
    source_of = {tile: cell[0] for cell, tiles in the_pool.cells.items() for tile in tiles}
    games = [[source_of[tile] for tile, _ in services.deal(the_pool, n=20, seen=set(), seed=seed)]
             for seed in range(2000)]
    draws = Counter(source for game in games for source in game)
    total = sum(draws.values())
    assert abs(draws["real"] / total - 0.5) <= 0.02
    assert abs(draws["gan"] / total - 0.25) <= 0.02 and abs(draws["rnagan"] / total - 0.25) <= 0.02
    real_per_game = Counter(game.count("real") for game in games)
    assert len(real_per_game) >= 8  # not a quota: anything from a few to most
    # Counting cannot help: the last round is real as often after many real rounds as after few.
    after_many = [g[-1] for g in games if g[:-1].count("real") >= 12]
    after_few = [g[-1] for g in games if g[:-1].count("real") <= 7]
    assert abs(after_many.count("real") / len(after_many) - after_few.count("real") / len(after_few)) < 0.15


def test_dealt_games_follow_the_draw(full_catalog):
    shares = []
    for seed in range(30):
        rounds = _rounds(services.game_start(session_key=f"g{seed}", seed=seed))
        expected = Counter(services.draw_sources(20, _draw_rng(seed)))
        assert Counter(r.source for r in rounds) == expected
        shares.append(expected["real"])
    assert len(set(shares)) > 1


def _draw_rng(seed: int):
    # deal() shuffles the tissue list before drawing sources: replay that to get the same draws.
    import random

    rng = random.Random(seed)
    rng.shuffle(["colon", "lung"])
    return rng


def test_a_game_may_hold_no_synthetic_or_no_real_tile_and_its_results_still_render(full_catalog, client):
    for wanted in ({"real"}, {"gan", "rnagan"}):  # all real; all synthetic
        seed = next(s for s in range(10_000) if set(services.draw_sources(4, _draw_rng(s))) <= wanted)
        game = services.game_start(session_key=f"mono-{len(wanted)}", seed=seed, n=4)
        play_through(game)
        results = selectors.game_results(game=Game.objects.get(pk=game.pk))
        assert {r.source for r in results.rounds} <= wanted
        assert results.roc["auc"] is None and sum(t.total for t in results.by_source) == 4
        page = Client().get(f"/play/{game.token}/results")
        assert page.status_code == 200 and b"not drawn" in page.content


def test_tissues_are_spread_evenly_over_the_game(catalog):
    catalog.fill(("lung", "colon", "liver"), real=7, gan=7, rnagan=7)
    for seed in range(5):
        rounds = _rounds(services.game_start(session_key=f"t{seed}", seed=seed))
        per_tissue = Counter(r.tile.tissue for r in rounds)
        assert set(per_tissue) == {"lung", "colon", "liver"}
        assert max(per_tissue.values()) - min(per_tissue.values()) <= 1


def test_a_tissue_without_all_three_kinds_of_tile_is_left_out(full_catalog):
    # Only real pancreas tiles exist: showing one would give the answer away.
    full_catalog.add("real", "pancreas", 20)
    full_catalog.add("gan", "stomach", 20)
    tissues = {r.tile.tissue for r in _rounds(services.game_start(session_key="s"))}
    assert tissues == {"lung", "colon"}


def _dealt_cells(the_pool: pool.Pool, games: int) -> list[tuple[str, str]]:
    """(source, tissue) of every tile in `games` deals of 20 (seeds 0 …), without a database."""
    cell_of = {tile: cell for cell, tiles in the_pool.cells.items() for tile in tiles}
    return [cell_of[tile] for seed in range(games) for tile, _ in services.deal(the_pool, n=20, seen=set(), seed=seed)]


def test_a_tissue_short_of_one_kind_is_left_out_so_the_tissue_never_tells_the_source():
    # Real tiles run short first (real is drawn with probability ½). Were the short tissue's real rounds
    # handed to the other tissue, its rounds would lean synthetic and answering by tissue would beat
    # chance (≈ 65 % here). Dealt 2,000 times without a database: the short tissue sits out instead.
    ids = iter(range(1, 10**6))
    rows = [(next(ids), "real", "lung") for _ in range(2)]
    rows += [(next(ids), source, tissue) for source, tissue in
             [("gan", "lung"), ("rnagan", "lung"), ("real", "colon"), ("gan", "colon"), ("rnagan", "colon")]
             for _ in range(500)]
    the_pool = pool.Pool.from_rows(rows)
    assert the_pool.status(n=20).playable == ["colon"]
    dealt = _dealt_cells(the_pool, 2000)
    assert {tissue for _, tissue in dealt} == {"colon"}
    assert abs(sum(source == "real" for source, _ in dealt) / len(dealt) - 0.5) <= 0.02


def test_with_every_cell_deep_enough_the_real_share_is_the_same_in_every_tissue():
    ids = iter(range(1, 10**6))
    rows = [(next(ids), source, tissue) for source in ("real", "gan", "rnagan") for tissue in ("lung", "colon")
            for _ in range(12 if (source, tissue) == ("real", "lung") else 200)]
    the_pool = pool.Pool.from_rows(rows)
    assert the_pool.status(n=20).playable == ["colon", "lung"]  # 12 ≥ ⌈20/2⌉: lung stays in
    dealt = _dealt_cells(the_pool, 2000)
    share = {t: sum(s == "real" for s, tt in dealt if tt == t) / sum(tt == t for _, tt in dealt) for t in ("lung", "colon")}
    assert abs(share["lung"] - share["colon"]) <= 0.03, share


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


def test_tiles_this_browser_has_seen_are_avoided_while_the_pool_allows(catalog):
    catalog.fill(("lung", "colon"), real=20, gan=20, rnagan=20)
    first = {r.tile_id for r in _rounds(services.game_start(session_key="me"))}
    second = {r.tile_id for r in _rounds(services.game_start(session_key="me"))}
    assert not first & second
    # Once the pool cannot give a game only unseen tiles, repeats are allowed, not an error.
    for _ in range(4):
        assert len(_rounds(services.game_start(session_key="me"))) == 20
    assert selectors.tiles_seen(session_key="me") >= first | second
    assert selectors.tiles_seen(session_key="someone-else") == set()


def test_a_pool_too_small_is_refused_with_a_message_that_says_what_is_missing(catalog):
    catalog.fill(("lung",), real=20, gan=2, rnagan=20)
    with pytest.raises(services.PoolTooSmall) as refusal:
        services.game_start(session_key="s")
    assert "needs at least 20 Real, 20 GAN, 20 RNA-GAN" in str(refusal.value)
    assert "has 20 Real, 2 GAN, 20 RNA-GAN" in str(refusal.value)
    assert not Game.objects.exists()
    assert pool.pool_status(n=20).ready is False


def test_a_tile_is_dealt_to_at_most_the_cap_of_games_then_retired(catalog, settings):
    settings.RNAGAN_TILE_MAX_EXPOSURES = 3
    catalog.fill(("lung", "colon"), real=30, gan=15, rnagan=15)
    games = 0
    with pytest.raises(services.PoolTooSmall):
        for seed in range(1000):
            services.game_start(session_key=f"p{seed}", seed=seed)
            games += 1
    assert games >= 3
    dealt = Counter(GameRound.objects.values_list("tile_id", flat=True))
    assert max(dealt.values()) <= 3
    assert dict(Tile.objects.filter(exposures__gt=0).values_list("id", "exposures")) == dict(dealt)


def test_the_exposure_cap_holds_over_a_thousand_games(catalog, settings):
    settings.RNAGAN_TILE_MAX_EXPOSURES = 25
    # About 2,000 real and 1,000 of each synthetic exposures are dealt, against room for 2,500 / 1,250.
    catalog.fill(("lung", "colon"), real=50, gan=25, rnagan=25)
    for seed in range(1000):
        services.game_start(session_key=f"k{seed % 50}", seed=seed, n=4)
    dealt = Counter(GameRound.objects.values_list("tile_id", flat=True))
    assert sum(dealt.values()) == 4000
    assert max(dealt.values()) == 25  # the cap was reached, and never passed
    assert dict(Tile.objects.filter(exposures__gt=0).values_list("id", "exposures")) == dict(dealt)


def test_a_dry_real_pool_says_so_plainly_and_warns_staff_in_the_admin(catalog, settings, admin_client):
    settings.RNAGAN_TILE_MAX_EXPOSURES = 1
    catalog.fill(("lung",), real=25, gan=40, rnagan=40)
    with pytest.raises(services.PoolTooSmall) as refusal:
        for seed in range(100):
            services.game_start(session_key=f"d{seed}", seed=seed)
    assert "pool of real tiles has run dry" in str(refusal.value)
    assert "at most 1 games" in str(refusal.value) or "at most 1 game" in str(refusal.value)
    page = admin_client.get("/admin/quiz/game/")
    assert page.status_code == 200 and b"run dry" in page.content


def test_audit_games_use_no_exposures_and_stay_out_of_the_crowd_and_leaderboard(full_catalog):
    audit = services.game_start(session_key="audit", nickname="auditor", audit=True)
    play_through(audit)
    assert not Tile.objects.filter(exposures__gt=0).exists()
    stats = selectors.crowd_stats_compute()
    assert stats["games"] == 0 and stats["answers"] == 0 and stats["leaderboard"] == []
    player = services.game_start(session_key="player", nickname="player")
    play_through(player)
    stats = selectors.crowd_stats_compute()
    assert stats["games"] == 1 and stats["answers"] == 20
    assert [row["nickname"] for row in stats["leaderboard"]] == ["player"]
    assert Tile.objects.filter(exposures=1).count() == 20


def test_a_started_game_reads_the_catalog_once_per_process_not_once_per_game(full_catalog,
                                                                            django_assert_num_queries):
    services.game_start(session_key="first")
    # The pool is kept: a start is the seen-tiles query, two INSERTs (game, rounds) and the exposures'
    # UPDATE, plus the SAVEPOINT / RELEASE pair its transaction becomes inside a test's own transaction.
    with django_assert_num_queries(6):
        services.game_start(session_key="second")


def test_a_tile_deactivated_after_the_pool_was_kept_is_never_dealt(catalog):
    catalog.fill(("lung",), real=20, gan=20, rnagan=26)
    services.game_start(session_key="warm-up")  # the pool is now kept by this process
    retired = [t for t in catalog.tiles if t.source == "rnagan"]
    for tile in retired[:5]:
        tile.active = False
        tile.save()
    # 21 RNA-GAN tiles remain active; the pool kept still lists 26.
    for seed in range(6):
        rounds = _rounds(services.game_start(session_key=f"s{seed}", seed=seed))
        assert len(rounds) == 20 and not {t.pk for t in retired[:5]} & {r.tile_id for r in rounds}


def test_inactive_and_noise_ablation_tiles_are_never_dealt(full_catalog):
    full_catalog.add("noise", "lung", 10)
    full_catalog.add("real", "lung", 3)  # so that every tissue keeps ⌈20/2⌉ = 10 active real tiles
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
    expected = sum(1 for s in truth.values() if s != "gan")
    assert receipts[-1].score == expected and receipts[-1].completed
    assert not any(r.completed for r in receipts[:-1])
    game.refresh_from_db()
    assert game.score == expected and game.completed is not None


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
