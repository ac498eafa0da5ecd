"""The tile pool: which tiles a game may deal, and how long a web process keeps it."""

from __future__ import annotations

import pytest

from generation.models import Tile
from quiz import pool

pytestmark = pytest.mark.django_db


def _activate(tiles: list[Tile]) -> None:
    # Straight to the database, as a generation worker in another process would: no pool_forget().
    Tile.objects.filter(pk__in=[t.pk for t in tiles]).update(active=True)


def _inactive(catalog, source: str, tissue: str, count: int) -> list[Tile]:
    tiles = catalog.add(source, tissue, count)
    Tile.objects.filter(pk__in=[t.pk for t in tiles]).update(active=False)
    pool.pool_forget()
    return tiles


def test_the_pool_holds_active_game_tiles_by_source_and_tissue(catalog):
    catalog.fill(("lung",), real=3, gan=2, rnagan=2)
    catalog.add("noise", "lung", 4)
    _inactive(catalog, "real", "lung", 5)
    read = pool.pool_read()
    assert read.counts() == {("real", "lung"): 3, ("gan", "lung"): 2, ("rnagan", "lung"): 2}
    assert all(ids == sorted(ids) for ids in read.cells.values())


def test_a_pool_that_cannot_deal_a_game_is_not_kept_so_a_filling_catalog_shows_at_once(catalog):
    catalog.fill(("lung",), real=20, gan=20, rnagan=17)
    waiting = _inactive(catalog, "rnagan", "lung", 3)
    assert not pool.pool_status(n=20).ready
    _activate(waiting)
    assert pool.pool_status(n=20).ready


def test_a_ready_pool_is_kept_until_its_time_is_up_or_it_is_forgotten(catalog, monkeypatch):
    catalog.fill(("lung",), real=20, gan=20, rnagan=20)
    later = _inactive(catalog, "real", "lung", 4)
    assert pool.pool_cached(n=20).counts()[("real", "lung")] == 20
    _activate(later)
    assert pool.pool_cached(n=20).counts()[("real", "lung")] == 20  # kept: no query
    monkeypatch.setattr(pool, "POOL_TTL_S", 0.0)
    assert pool.pool_cached(n=20).counts()[("real", "lung")] == 24


def test_a_pool_kept_for_short_games_is_read_again_for_a_game_it_cannot_deal(catalog):
    catalog.fill(("lung",), real=6, gan=6, rnagan=6)
    more = _inactive(catalog, "real", "lung", 14) + _inactive(catalog, "gan", "lung", 14)
    more += _inactive(catalog, "rnagan", "lung", 14)
    assert pool.pool_status(n=6).ready  # kept
    _activate(more)
    assert pool.pool_status(n=20).ready


def test_a_tissue_needs_every_game_source_to_count(catalog):
    catalog.fill(("lung",), real=10, gan=5, rnagan=5)
    catalog.add("real", "pancreas", 30)
    status = pool.pool_status(n=20)
    assert status.tissues == ["lung"] and status.available == {"real": 10, "gan": 5, "rnagan": 5}
