"""The rater path's SQL, written by hand: the item page's one read, and the statements of a save.

Why not the ORM here: profiled (cProfile on CPU time, 17 item pages and saves against PostgreSQL), building
and compiling the ORM's joined queries took about a third of each request's CPU, and these two requests are
all a rater's load. Everything else in the app uses the ORM. Table and column names are Django's defaults
for studies/models.py; tests/studies exercise every statement. The statements are plain SQL that PostgreSQL
and SQLite (the demo) both run; only the row lock is PostgreSQL's (the demo's SQLite transactions take the
write lock when they begin, which serialises saves just the same).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

_RATER_COLUMNS = ("r.id, r.token, r.n_items, r.next_position, r.finished_at, s.status, s.tissues, "
                  "s.tile_width, s.tile_height")
_ITEM_COLUMNS = ("i.id, i.key, i.position, i.first_served_at, "
                 "g.id, g.tissue_answer, g.quality, g.artifacts, g.comment, g.revisions")


@dataclass(frozen=True)
class RaterRow:
    id: int
    token: str
    n_items: int
    next_position: int
    finished_at: datetime | None
    study_open: bool
    tissues: list[str]
    tile_width: int
    tile_height: int

    @property
    def all_answered(self) -> bool:
        return self.next_position > self.n_items


@dataclass(frozen=True)
class RatingRow:
    id: int
    tissue_answer: str
    quality: int
    artifacts: bool
    comment: str
    revisions: int


@dataclass
class ItemRow:
    id: int
    key: str
    position: int
    first_served_at: datetime | None
    rating: RatingRow | None


def _dt(value) -> datetime | None:
    """A stored time as an aware datetime (SQLite hands raw queries naive UTC, or text)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


def _param(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)


def _rater(row) -> RaterRow:
    tissues = row[6] if not isinstance(row[6], str) else json.loads(row[6])
    return RaterRow(id=row[0], token=row[1], n_items=row[2], next_position=row[3], finished_at=_dt(row[4]),
                    study_open=row[5] == "open", tissues=tissues, tile_width=row[7], tile_height=row[8])


def _item(row) -> ItemRow:
    rating = None if row[4] is None else RatingRow(row[4], row[5], row[6], bool(row[7]), row[8], row[9])
    return ItemRow(id=row[0], key=row[1], position=row[2], first_served_at=_dt(row[3]), rating=rating)


def item_page(*, token: str, position: int) -> tuple[RaterRow, ItemRow] | None:
    """A live rater and their item at `position` (with its rating, if any), in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_RATER_COLUMNS}, {_ITEM_COLUMNS} FROM studies_item i "
            "JOIN studies_rater r ON r.id = i.rater_id JOIN studies_study s ON s.id = r.study_id "
            "LEFT JOIN studies_rating g ON g.item_id = i.id "
            "WHERE r.token = %s AND r.revoked_at IS NULL AND i.position = %s",
            [token, position],
        )
        row = cursor.fetchone()
    return None if row is None else (_rater(row), _item(row[9:]))


def rater_lock(*, token: str) -> RaterRow | None:
    """A live rater's row, locked until the transaction ends (every save of one rater runs alone)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_RATER_COLUMNS} FROM studies_rater r JOIN studies_study s ON s.id = r.study_id "
            "WHERE r.token = %s AND r.revoked_at IS NULL"
            + (" FOR UPDATE OF r" if connection.features.has_select_for_update_of else ""),
            [token],
        )
        row = cursor.fetchone()
    return None if row is None else _rater(row)


def rater_item(*, rater_id: int, position: int) -> ItemRow | None:
    # Read after the rater's lock, in its own statement: it sees any rating a save before it committed.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_ITEM_COLUMNS} FROM studies_item i LEFT JOIN studies_rating g ON g.item_id = i.id "
            "WHERE i.rater_id = %s AND i.position = %s",
            [rater_id, position],
        )
        row = cursor.fetchone()
    return None if row is None else _item(row)


def rating_insert(*, item_id: int, answer: dict, seconds: float, active_seconds: float | None,
                  at: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO studies_rating (item_id, tissue_answer, quality, artifacts, comment, seconds, "
            "active_seconds, answered_at, revisions) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 1) RETURNING id",
            [item_id, answer["tissue_answer"], answer["quality"], answer["artifacts"], answer["comment"], seconds,
             active_seconds, _param(at)],
        )
        return cursor.fetchone()[0]


def rating_revise(*, rating_id: int, answer: dict, at: datetime) -> int:
    """Overwrite the current answer and count a revision; returns the new revision number."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE studies_rating SET tissue_answer = %s, quality = %s, artifacts = %s, comment = %s, "
            "answered_at = %s, revisions = revisions + 1 WHERE id = %s RETURNING revisions",
            [answer["tissue_answer"], answer["quality"], answer["artifacts"], answer["comment"], _param(at), rating_id],
        )
        return cursor.fetchone()[0]


def revision_insert(*, rating_id: int, number: int, answer: dict, seconds: float, active_seconds: float | None,
                    at: datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO studies_ratingrevision (rating_id, number, tissue_answer, quality, artifacts, comment, "
            "seconds, active_seconds, created) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [rating_id, number, answer["tissue_answer"], answer["quality"], answer["artifacts"], answer["comment"],
             seconds, active_seconds, _param(at)],
        )


def rater_advance(*, rater_id: int, next_position: int, at: datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE studies_rater SET next_position = %s, last_active = %s WHERE id = %s",
                       [next_position, _param(at), rater_id])


def item_mark_served(*, item_id: int, at: datetime) -> datetime:
    """Stamp an item's first showing once; returns the stamp that holds (an earlier tab's, if any)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE studies_item SET first_served_at = COALESCE(first_served_at, %s) WHERE id = %s "
            "RETURNING first_served_at",
            [_param(at), item_id],
        )
        return _dt(cursor.fetchone()[0])
