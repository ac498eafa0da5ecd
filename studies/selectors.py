"""Reads for the rating study: what a rater's token reaches, the staff dashboard, and tidy frames.

The three `study_*_frame` functions are the analysis's only view of a study (one row per rating, tile and
rater; columns fixed, documented in each docstring); the statistics and exports build on them.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
from django.core.files.storage import default_storage
from django.db.models import Count, F, Q

from studies import queries
from studies.models import Item, Rater, Rating, Study, StudyTile

RATINGS_COLUMNS = ["rater", "tile", "source", "tissue", "tissue_answer", "quality", "artifacts", "position",
                   "is_repeat", "is_anchor", "seconds", "active_seconds", "answered_at", "revisions"]
TILES_COLUMNS = ["tile", "source", "tissue", "checkpoint", "generator_config_hash", "expression_origin",
                 "selection", "seed", "is_anchor"]
RATERS_COLUMNS = ["rater", "label", "specialty", "years_in_practice", "assigned", "answered", "finished_at",
                  "suspected_synthetic", "giveaway"]


def rater_by_token(*, token: str) -> Rater | None:
    """The rater this link belongs to, or None (unknown or revoked: both look the same from outside)."""
    if not token or len(token) != 48:
        return None
    return Rater.objects.select_related("study").filter(token=token, revoked_at__isnull=True).first()


def item_page(*, token: str, position: int) -> tuple[queries.RaterRow, queries.ItemRow] | None:
    """A live rater and their item at `position` with its rating, in one statement; None when the token or
    position is unknown (whether the rater may see the item yet is the caller's check)."""
    if not token or len(token) != 48:
        return None
    return queries.item_page(token=token, position=position)


def item_tile_path(*, token: str, key: str) -> Path | None:
    """The stored file of an item's tile, if this token may fetch it now: the current or an answered item of
    a live rater in an open study. One query, the same for every source."""
    name = (Item.objects.filter(key=key, rater__token=token, rater__revoked_at__isnull=True,
                                rater__study__status=Study.Status.OPEN)
            .filter(position__lte=F("rater__next_position"))
            .values_list("study_tile__tile__image", flat=True).first())
    return None if name is None else Path(default_storage.path(name))


# ------------------------------------------------------------------------------------------- staff


@dataclass(frozen=True)
class RaterProgress:
    rater: Rater
    answered: int
    assigned: int
    median_seconds: float | None


def study_progress(*, study: Study) -> list[RaterProgress]:
    seconds: dict[int, list[float]] = {}
    for rater_id, value in Rating.objects.filter(item__rater__study=study).values_list("item__rater_id", "seconds"):
        seconds.setdefault(rater_id, []).append(value)
    return [
        RaterProgress(rater=r, answered=min(r.next_position - 1, r.n_items), assigned=r.n_items,
                      median_seconds=statistics.median(seconds[r.pk]) if seconds.get(r.pk) else None)
        for r in study.raters.all()
    ]


def studies_overview() -> list[Study]:
    return list(Study.objects.annotate(
        n_tiles=Count("tiles", filter=Q(tiles__included=True), distinct=True),
        n_raters=Count("raters", distinct=True),
    ))


def study_cells(*, study: Study) -> list[dict]:
    """Candidates grouped by cell for the curation page."""
    cells = []
    tiles = list(study.tiles.order_by("code"))
    for source in study.sources:
        for tissue in study.tissues:
            cells.append({"source": source, "tissue": tissue,
                          "tiles": [t for t in tiles if t.source == source and t.tissue == tissue]})
    return cells


def study_coverage(*, study: Study) -> dict:
    """Ratings each included tile will get from the raters invited so far (first showings only)."""
    counts = dict(StudyTile.objects.filter(study=study, included=True)
                  .annotate(n=Count("items", filter=Q(items__is_repeat=False, items__rater__revoked_at__isnull=True)))
                  .values_list("code", "n"))
    blocks = (StudyTile.objects.filter(study=study, included=True, block__isnull=False)
              .values("block").distinct().count()) or 1
    return {"min": min(counts.values(), default=0), "max": max(counts.values(), default=0), "blocks": blocks,
            "raters_needed": study.min_raters * blocks}


# ------------------------------------------------------------------------------------------- frames

def study_ratings_frame(*, study: Study) -> pd.DataFrame:
    """One row per current rating.

    rater (rater code), tile (study-tile code), source, tissue, tissue_answer, quality (int 1–5), artifacts
    (bool), position (1-based in the rater's order), is_repeat (a hidden repeat showing), is_anchor, seconds
    (server time from the item first served to its first answer), active_seconds (NaN without JavaScript),
    answered_at (UTC, when the current answer was stored), revisions (stored versions, 1 when never changed).
    """
    rows = Rating.objects.filter(item__rater__study=study).order_by("item__rater__index", "item__position").values_list(
        "item__rater__code", "item__study_tile__code", "item__study_tile__source", "item__study_tile__tissue",
        "tissue_answer", "quality", "artifacts", "item__position", "item__is_repeat", "item__study_tile__is_anchor",
        "seconds", "active_seconds", "answered_at", "revisions",
    )
    frame = pd.DataFrame.from_records(list(rows), columns=RATINGS_COLUMNS)
    return frame.astype({
        "rater": str, "tile": str, "source": str, "tissue": str, "tissue_answer": str, "quality": "int64",
        "artifacts": bool, "position": "int64", "is_repeat": bool, "is_anchor": bool, "seconds": "float64",
        "active_seconds": "float64", "answered_at": "datetime64[ns, UTC]", "revisions": "int64",
    })


def study_tiles_frame(*, study: Study) -> pd.DataFrame:
    """One row per tile in the study (curated-out best-of candidates are not).

    tile, source, tissue, checkpoint (name or ""), generator_config_hash (or ""), expression_origin (or ""),
    selection ("random" | "best-of"), seed (nullable Int64), is_anchor.
    """
    rows = study.tiles.filter(included=True).order_by("code").values_list(
        "code", "source", "tissue", "checkpoint", "generator_config_hash", "expression_origin", "seed", "is_anchor")
    frame = pd.DataFrame.from_records(
        [(*r[:6], study.selection, r[6], r[7]) for r in rows], columns=TILES_COLUMNS)
    return frame.astype({
        "tile": str, "source": str, "tissue": str, "checkpoint": str, "generator_config_hash": str,
        "expression_origin": str, "selection": str, "seed": "Int64", "is_anchor": bool,
    })


def study_raters_frame(*, study: Study) -> pd.DataFrame:
    """One row per rater, revoked ones included (their answers are data too).

    rater, label, specialty, years_in_practice (nullable Int64), assigned, answered, finished_at (UTC or NaT),
    suspected_synthetic ("yes" | "no" | "unsure" | None before the debrief), giveaway (str, "" when none).
    """
    records = []
    for r in study.raters.order_by("index"):
        finished: datetime | None = r.finished_at
        records.append((r.code, r.label, r.specialty, r.years_in_practice, r.n_items,
                        min(r.next_position - 1, r.n_items), finished, r.suspected_synthetic or None, r.giveaway))
    frame = pd.DataFrame.from_records(records, columns=RATERS_COLUMNS)
    frame = frame.astype({"rater": str, "label": str, "specialty": str, "years_in_practice": "Int64",
                          "assigned": "int64", "answered": "int64", "giveaway": str})
    frame["finished_at"] = pd.to_datetime(frame["finished_at"], utc=True)
    frame["suspected_synthetic"] = frame["suspected_synthetic"].astype(object).where(
        frame["suspected_synthetic"].notna(), None)
    return frame
