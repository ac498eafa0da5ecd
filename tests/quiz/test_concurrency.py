"""Two answers to one round at the same moment: exactly one is stored, the other is refused."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction

from quiz import services
from quiz.models import GameRound

pytestmark = pytest.mark.django_db(transaction=True)


def _in_thread(target, results: dict, name: str) -> threading.Thread:
    def run():
        try:
            results[name] = target()
        except Exception as error:  # noqa: BLE001 - the test inspects what each thread got
            results[name] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread


def _waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0]


def test_an_answer_blocked_behind_a_concurrent_one_is_refused_once_that_one_commits(full_catalog):
    game = services.game_start(session_key="s")
    first_stored, release_first = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def first():
        with transaction.atomic():
            receipt = services.quiz_answer_submit(game_token=game.token, position=1, answer="real",
                                                  confidence="sure")
            first_stored.set()
            assert release_first.wait(30)
        return receipt

    def second():
        assert first_stored.wait(30)
        return services.quiz_answer_submit(game_token=game.token, position=1, answer="synthetic",
                                           confidence="unsure")

    threads = [_in_thread(first, results, "first"), _in_thread(second, results, "second")]
    # Hold the first transaction open until the second is really queued behind its row lock.
    deadline = time.monotonic() + 30
    while _waiting_on_a_lock() < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _waiting_on_a_lock() == 1
    release_first.set()
    for thread in threads:
        thread.join(30)

    assert isinstance(results["first"], services.AnswerReceipt)
    assert isinstance(results["second"], services.RoundAlreadyAnswered)
    stored = GameRound.objects.get(game=game, position=1)
    assert (stored.answer, stored.confidence) == ("real", "sure")


def test_of_many_simultaneous_answers_to_one_round_exactly_one_is_stored(full_catalog):
    game = services.game_start(session_key="s")
    start = threading.Barrier(6)
    results: dict[str, object] = {}

    def answer(kind: str):
        def go():
            start.wait(30)
            return services.quiz_answer_submit(game_token=game.token, position=1, answer=kind, confidence="sure")
        return go

    threads = [_in_thread(answer("real" if i % 2 else "synthetic"), results, f"t{i}") for i in range(6)]
    for thread in threads:
        thread.join(30)

    receipts = [r for r in results.values() if isinstance(r, services.AnswerReceipt)]
    refusals = [r for r in results.values() if isinstance(r, services.RoundAlreadyAnswered)]
    assert len(receipts) == 1 and len(refusals) == 5
    stored = GameRound.objects.get(game=game, position=1)
    assert stored.answer == receipts[0].answer
    assert GameRound.objects.filter(game=game, answered_at__isnull=False).count() == 1
