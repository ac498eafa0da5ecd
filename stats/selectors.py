"""Reads for the statistics: the game's answered rounds as tidy, anonymous frames, and the cached results.

Players and games appear only as salted hashes (settings.RNAGAN_EXPORT_SALT): no session key, no IP and no
database key leaves this module.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import datetime

import pandas as pd
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Avg, Count, Max, Sum
from pandas.api.types import union_categoricals

from quiz.models import Game
from studies import selectors as study_selectors
from studies.models import Rating, Study

GAME_PAGE_KEY = "stats:game:page:v1"
GAME_TABLES_KEY = "stats:game:tables:v1"
CHUNK_ROWS = 50_000
ANSWER_COLUMNS = ["player", "game", "tile", "source", "tissue", "answer", "confidence", "correct", "position",
                  "answered_at"]
CATEGORICAL = ["player", "game", "tile", "source", "tissue", "answer", "confidence"]



def _not_audit() -> str:
    """Audit games (played by audit_blinding, issue #11) test the blinding: never the crowd's answers."""
    has_audit = any(field.name == "audit" for field in Game._meta.get_fields())
    return "AND NOT g.audit" if has_audit else ""


_ANSWERED = f"""
    FROM quiz_gameround r
    JOIN quiz_game g ON g.id = r.game_id
    JOIN generation_tile t ON t.id = r.tile_id
    WHERE r.answered_at IS NOT NULL {_not_audit()}
"""


def pseudonym(kind: str, value: object, *, salt: str | None = None) -> str:
    """A stable, salted, one-way stand-in for a player or game (16 hex digits, 64 bits)."""
    key = (salt if salt is not None else settings.RNAGAN_EXPORT_SALT).encode()
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:16]


def _anonymise(rows: list[tuple], salt: str) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["game_id", "session_key", *ANSWER_COLUMNS[2:]])
    for kind, column, target in (("player", "session_key", "player"), ("game", "game_id", "game")):
        codes = frame[column].astype("category")
        names = [pseudonym(kind, value, salt=salt) for value in codes.cat.categories]
        frame[target] = codes.cat.rename_categories(names)
    frame["correct"] = frame["correct"].astype(bool)
    frame["position"] = frame["position"].astype("int16")
    frame["answered_at"] = pd.to_datetime(frame["answered_at"], utc=True)
    return frame[ANSWER_COLUMNS]


def game_answer_chunks(*, salt: str | None = None, until: datetime | None = None,
                       chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Every answered round (answered at or before `until`, when given), oldest first, in frames of at most
    `chunk_rows` (a server-side cursor on PostgreSQL, so memory stays flat however many answers there are)."""
    salt = salt if salt is not None else settings.RNAGAN_EXPORT_SALT
    bound = "" if until is None else "AND r.answered_at <= %s"
    sql = ("SELECT r.game_id, g.session_key, t.public_id, r.source, t.tissue, r.answer, r.confidence, "
           f"r.correct, r.position, r.answered_at {_ANSWERED} {bound} ORDER BY r.id")
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, [] if until is None else [until])
        while rows := cursor.fetchmany(chunk_rows):
            yield _anonymise(rows, salt)


def game_answers_frame(*, salt: str | None = None) -> pd.DataFrame:
    """All answered rounds in one frame; the text columns are categorical (a tenth of the memory)."""
    chunks = []
    for chunk in game_answer_chunks(salt=salt):
        chunks.append(chunk.astype({column: "category" for column in CATEGORICAL}))
    if not chunks:
        frame = pd.DataFrame({column: pd.Series(dtype="object") for column in ANSWER_COLUMNS})
        return frame.astype({"correct": bool, "position": "int16"})
    columns = {}
    for column in ANSWER_COLUMNS:
        if column in CATEGORICAL:
            columns[column] = pd.Series(union_categoricals([c[column] for c in chunks]))
        else:
            columns[column] = pd.concat([c[column] for c in chunks], ignore_index=True)
    return pd.DataFrame(columns)


def game_exposures_frame() -> pd.DataFrame:
    """Rounds dealt per tile, answered or not."""
    sql = f"""SELECT t.public_id, t.source, t.tissue, count(*) FROM quiz_gameround r
              JOIN quiz_game g ON g.id = r.game_id JOIN generation_tile t ON t.id = r.tile_id
              WHERE TRUE {_not_audit()} GROUP BY t.public_id, t.source, t.tissue"""
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return pd.DataFrame(cursor.fetchall(), columns=["tile", "source", "tissue", "exposures"])


def _ratings_fingerprint(ratings) -> list:
    seen = ratings.aggregate(n=Count("pk"), latest=Max("answered_at"), revisions=Sum("revisions"))
    return [seen["n"], seen["latest"].isoformat() if seen["latest"] else None, seen["revisions"] or 0]


def game_fingerprint() -> list:
    """Changes whenever a round is answered (or an expert rating changes, for crowd against experts):
    the refresh task recomputes only when it moved."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), max(r.answered_at) {_ANSWERED}")
        count, latest = cursor.fetchone()
    # SQLite (the demo) returns the raw text of max(); PostgreSQL a datetime: either way a stable string.
    latest = latest.isoformat() if hasattr(latest, "isoformat") else latest
    return [int(count), latest, *_ratings_fingerprint(Rating.objects.all())]


def expert_tile_quality() -> pd.DataFrame:
    """Mean expert quality per catalog tile (first presentations, every study), keyed like the game's tiles."""
    rows = (Rating.objects.filter(item__is_repeat=False)
            .values("item__study_tile__tile__public_id")
            .annotate(mean_quality=Avg("quality"), ratings=Count("pk")))
    return pd.DataFrame([{"tile": r["item__study_tile__tile__public_id"], "mean_quality": r["mean_quality"],
                          "ratings": r["ratings"]} for r in rows], columns=["tile", "mean_quality", "ratings"])


# ---------------------------------------------------------------------------------------------- studies

def study_key(study: Study) -> str:
    return f"stats:study:{study.pk}:page:v1"


def study_fingerprint(*, study: Study) -> list:
    """Moves with every new or changed rating and every debrief answer of the study."""
    debriefs = study.raters.filter(debriefed_at__isnull=False).aggregate(n=Count("pk"), latest=Max("debriefed_at"))
    return [*_ratings_fingerprint(Rating.objects.filter(item__rater__study=study)), debriefs["n"],
            debriefs["latest"].isoformat() if debriefs["latest"] else None]


def study_frames(*, study: Study) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(ratings, tiles, raters) as the studies app defines them."""
    return (study_selectors.study_ratings_frame(study=study), study_selectors.study_tiles_frame(study=study),
            study_selectors.study_raters_frame(study=study))


def study_stats_cached(*, study: Study) -> dict | None:
    return cache.get(study_key(study))


def studies_listed() -> list[Study]:
    return list(Study.objects.order_by("-created"))


def study_stats_visible(*, study: Study, user) -> bool:
    """Staff always; anyone once the study is closed and its statistics are published."""
    if user.is_active and user.is_staff:
        return True
    return study.stats_published and study.status == Study.Status.CLOSED


def game_stats_cached() -> dict | None:
    """What the page shows: {result, figures, fingerprint}; None until the task has run once."""
    return cache.get(GAME_PAGE_KEY)


def game_tables_cached() -> dict | None:
    """The per-tile and per-player tables of the last computation, for the exports."""
    return cache.get(GAME_TABLES_KEY)
