"""Writes for the statistics: compute the analysis and keep it in the shared cache the page reads."""

from __future__ import annotations

import logging
import time

from django.core.cache import cache

from stats import selectors
from stats.analysis import figures, game, report

log = logging.getLogger(__name__)


def game_stats_compute(*, fingerprint: list | None = None) -> tuple[dict, dict]:
    """The game's analysis: (page payload, export tables). Reads every answered round once."""
    answers = selectors.game_answers_frame()
    exposures = selectors.game_exposures_frame()
    result = report.analyse_game(answers, exposures)
    drawn = [{"name": d.name, "svg": d.svg, "caption": d.caption} for d in figures.game_figures(result)]
    tables = {"tiles": game.tile_summary(answers, exposures), "players": game.per_player(answers)}
    page = {"result": result, "figures": drawn, "fingerprint": fingerprint or selectors.game_fingerprint()}
    return page, tables


def game_stats_refresh(*, force: bool = False) -> bool:
    """Recompute the game's statistics into the cache if answers changed since; True when it recomputed.

    Safe to run twice or concurrently: both would write the same result for the same fingerprint.
    """
    fingerprint = selectors.game_fingerprint()
    cached = selectors.game_stats_cached()
    if not force and cached is not None and cached.get("fingerprint") == fingerprint:
        return False
    started = time.monotonic()
    page, tables = game_stats_compute(fingerprint=fingerprint)
    page["seconds"] = round(time.monotonic() - started, 2)
    # The tables first: a page that shows a result can always export it.
    cache.set(selectors.GAME_TABLES_KEY, tables, None)
    cache.set(selectors.GAME_PAGE_KEY, page, None)
    log.info("game statistics over %s answers in %.1f s", fingerprint[0], page["seconds"])
    return True
