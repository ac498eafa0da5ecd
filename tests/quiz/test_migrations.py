"""Migrations that move data do what they say on a database that already holds games."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("quiz", "0002_blinding"), ("generation", "0002_blinding")]
AFTER = [("quiz", "0003_backfill_exposures")]


def test_exposures_are_backfilled_from_the_games_already_dealt_and_audit_games_do_not_count():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    Tile, Game, GameRound = (apps.get_model(*m) for m in
                             [("generation", "Tile"), ("quiz", "Game"), ("quiz", "GameRound")])
    tiles = [Tile.objects.create(source="real", tissue="lung", image=f"t/{k}.jpg", sha256=f"{k:064d}", width=256,
                                 height=256) for k in range(3)]
    now = timezone.now()
    game = {"session_key": "s", "n": 2, "created": now, "expires": now + timedelta(hours=2)}
    played = Game.objects.create(seed=1, **game)
    audit = Game.objects.create(seed=2, audit=True, **game)
    GameRound.objects.create(game=played, position=1, tile=tiles[0], source="real")
    GameRound.objects.create(game=played, position=2, tile=tiles[1], source="real")
    GameRound.objects.create(game=audit, position=1, tile=tiles[0], source="real")

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    apps = executor.loader.project_state(AFTER).apps
    exposures = dict(apps.get_model("generation", "Tile").objects.values_list("pk", "exposures"))
    assert [exposures[t.pk] for t in tiles] == [1, 1, 0]
