"""Writes for the statistics: compute the analysis and keep it in the shared cache the page reads."""

from __future__ import annotations

import logging
import time

import pandas as pd
from django.core.cache import cache
from django.db import transaction

from stats import presenting, selectors
from stats.analysis import figures, game, report
from studies.models import Study

log = logging.getLogger(__name__)


def game_stats_compute(*, fingerprint: list | None = None) -> tuple[dict, dict]:
    """The game's analysis: (page payload, export tables). Reads every answered round once."""
    answers = selectors.game_answers_frame()
    exposures = selectors.game_exposures_frame()
    result = report.analyse_game(answers, exposures, selectors.expert_tile_quality())
    drawn = [{"name": d.name, "svg": d.svg, "caption": d.caption} for d in figures.game_figures(result)]
    tables = {"tiles": game.tile_summary(answers, exposures), "players": game.per_player(answers)}
    latest = answers["answered_at"].max() if len(answers) else None
    page = {"result": result, "figures": drawn, "fingerprint": fingerprint or selectors.game_fingerprint(),
            # The exports write the answers up to here, so their tables and the cached result agree.
            "answered_until": None if latest is None or pd.isna(latest) else latest.to_pydatetime()}
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


class StatsError(ValueError):
    """A refusal a researcher should read (never a traceback)."""


def study_stats_compute(*, study: Study, fingerprint: list | None = None) -> dict:
    ratings, _, raters = selectors.study_frames(study=study)
    if ratings.empty:
        return {"result": None, "figures": [], "fingerprint": fingerprint or selectors.study_fingerprint(study=study),
                "note": "no ratings yet"}
    result = report.analyse_study(ratings, raters, name=study.name, file=f"study {study.name}")
    return {**presenting.study_payload(result),
            "fingerprint": fingerprint or selectors.study_fingerprint(study=study), "note": ""}


def study_stats_refresh(*, study: Study, force: bool = False) -> bool:
    """Recompute one study's statistics into the cache if its ratings changed; True when it recomputed."""
    fingerprint = selectors.study_fingerprint(study=study)
    cached = selectors.study_stats_cached(study=study)
    if not force and cached is not None and cached.get("fingerprint") == fingerprint:
        return False
    started = time.monotonic()
    payload = study_stats_compute(study=study, fingerprint=fingerprint)
    payload["seconds"] = round(time.monotonic() - started, 2)
    cache.set(selectors.study_key(study), payload, None)
    log.info("study %s statistics over %s ratings in %.1f s", study.name, fingerprint[0], payload["seconds"])
    return True


def stats_refresh_all(*, force: bool = False) -> dict:
    done = {"game": game_stats_refresh(force=force)}
    for study in Study.objects.order_by("pk"):
        done[f"study:{study.name}"] = study_stats_refresh(study=study, force=force)
    return done


def study_stats_publish(*, study: Study, published: bool) -> Study:
    """Publish a closed study's statistics read-only (or withdraw them); an open study cannot be published."""
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        if published and study.status != Study.Status.CLOSED:
            raise StatsError(f"{study.name} is still open: close it before publishing its statistics")
        study.stats_published = published
        study.save(update_fields=["stats_published"])
    return study
