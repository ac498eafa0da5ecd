"""Writes for the quiz: dealing and starting a game, storing answers, finishing games, crowd refresh.

The server is the only judge. A game's truth lives in its rounds and leaves the server only in the
reply to an answer that is already stored.
"""

from __future__ import annotations

import random
import re
import secrets
import unicodedata
from collections import Counter
from dataclasses import dataclass

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from config.converters import POSITION_MAX
from generation.models import Tile
from quiz import selectors
from quiz.models import NICKNAME_MAX_LENGTH, Game, GameRound
from quiz.pool import (
    GAME_SOURCES,
    GAN,
    REAL,
    RNAGAN,
    Pool,
    max_exposures,
    pool_cached,
    pool_forget,
    pool_status_from,
)


class QuizError(Exception):
    """A refusal the player should read; `status` is the HTTP status a view answers with."""

    status = 400


class PoolTooSmall(QuizError):
    status = 409


class PoolChanged(QuizError):
    status = 503


class GameNotFound(QuizError):
    status = 404


class GameExpired(QuizError):
    status = 410


class GameFinished(QuizError):
    status = 409


class RoundAlreadyAnswered(QuizError):
    status = 409


class RoundOutOfOrder(QuizError):
    status = 409


# ---------------------------------------------------------------------------------------------- dealing

def draw_sources(n: int, rng: random.Random) -> list[str]:
    """One source per round, each drawn on its own: real with probability ½, otherwise GAN or RNA-GAN with
    equal odds. No quota: the rounds left never follow from the rounds seen, so counting wins nothing."""
    return [REAL if rng.random() < 0.5 else (GAN if rng.random() < 0.5 else RNAGAN) for _ in range(n)]


def deal(pool: Pool, *, n: int, seen: set[int], seed: int) -> list[tuple[int, str]]:
    """Pick n tiles as (tile id, source), in play order; the same pool, seen set and seed give the same deal.

    Sources follow `draw_sources`. Tissues are assigned round-robin over one shuffled list of the playable
    tissues (`pool.playable_tissues`: each holds ⌈n/T⌉ tiles of every source), so every tissue gets ⌊n/T⌋
    or ⌈n/T⌉ rounds whatever the sources drawn, and no cell can run short: which tissue a round shows never
    depends on its source. Within a cell, tiles this player has not seen come first.
    """
    rng = random.Random(seed)
    size = pool.counts()
    status = pool_status_from(size, n=n)
    if not status.ready:
        raise PoolTooSmall(status.shortfall_message())

    tissues = list(status.playable)
    rng.shuffle(tissues)
    plan: Counter = Counter(
        (source, tissues[k % len(tissues)]) for k, source in enumerate(draw_sources(n, rng))
    )
    short = [cell for cell, quota in plan.items() if quota > size[cell]]
    assert not short, f"playable tissues hold ⌈n/T⌉ tiles of every source, yet {short} ran short"

    picks: list[tuple[int, str]] = []
    for source in GAME_SOURCES:
        for tissue in tissues:
            quota = plan[(source, tissue)]
            if not quota:
                continue
            cell = (source, tissue)
            # A sample of quota + (seen tiles in the cell) distinct tiles holds at least min(quota, unseen)
            # unseen ones, so sampling that many (not shuffling the whole cell) keeps fresh tiles first.
            repeats = len(seen & pool.members[cell])
            drawn = rng.sample(pool.cells[cell], min(size[cell], quota + repeats))
            fresh_first = [i for i in drawn if i not in seen] + [i for i in drawn if i in seen]
            picks.extend((tile_id, source) for tile_id in fresh_first[:quota])
    rng.shuffle(picks)
    return picks


_NICKNAME_SPACE = re.compile(r"\s+")


def nickname_normalize(raw: str) -> str:
    """Printable characters only, single spaces, at most NICKNAME_MAX_LENGTH characters."""
    # Whitespace first: tabs and newlines are control characters too, and "a\nb" must read "a b", not "ab".
    text = _NICKNAME_SPACE.sub(" ", unicodedata.normalize("NFKC", raw or ""))
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] not in {"C"})
    return _NICKNAME_SPACE.sub(" ", text).strip()[:NICKNAME_MAX_LENGTH].strip()


def _rounds_insert_sql(count: int) -> str:
    """Insert a game's rounds from (position, tile id) pairs, keeping only tiles still active with
    exposures left (the parameter after the pairs is the cap).

    The truth stored with each round is the tile row's own source. One statement replaces the ORM's
    bulk_create plus a query re-checking that the (possibly cached) pool's tiles are still active.
    """
    q = connection.ops.quote_name
    rounds, tiles = q(GameRound._meta.db_table), q(Tile._meta.db_table)
    pairs = ", ".join(["(%s, %s)"] * count)
    # column1/column2 name a VALUES list's columns in both PostgreSQL and SQLite.
    return f"""
        INSERT INTO {rounds} (game_id, position, tile_id, source, answer, confidence)
        SELECT %s, v.column1, t.id, t.source, '', ''
          FROM (VALUES {pairs}) v JOIN {tiles} t ON t.id = v.column2
         WHERE t.active AND t.exposures < %s
    """


def _exposures_sql(count: int) -> str:
    """Count one more exposure for each dealt tile that still has one left. Under concurrent games the
    row lock makes PostgreSQL re-check the cap on the updated row, so no tile ever exceeds it."""
    q = connection.ops.quote_name
    tiles = q(Tile._meta.db_table)
    marks = ", ".join(["%s"] * count)
    return f"UPDATE {tiles} SET exposures = exposures + 1 WHERE id IN ({marks}) AND exposures < %s"


class _StalePool(Exception):
    """Fewer rounds were inserted than dealt: the kept pool named a tile that is no longer active."""


def game_start(*, session_key: str, nickname: str = "", n: int | None = None, seed: int | None = None,
               audit: bool = False) -> Game:
    """Deal a new game for a browser session; raises PoolTooSmall with a readable message.

    Each dealt tile uses one of its RNAGAN_TILE_MAX_EXPOSURES; an `audit` game (audit_blinding) uses none
    and never counts in the crowd statistics or the leaderboard.
    """
    if not session_key:
        raise ValueError("a game needs the player's session key")
    conf = selectors.quiz_settings()
    n = n or conf.rounds
    seed = secrets.randbits(63) if seed is None else seed
    seen = selectors.tiles_seen(session_key=session_key)
    nickname = nickname_normalize(nickname)
    for _attempt in range(2):
        picks = deal(pool_cached(n=n), n=n, seen=seen, seed=seed)
        now = timezone.now()
        game = Game(session_key=session_key, nickname=nickname, seed=seed, n=n, created=now,
                    expires=now + conf.game_ttl, audit=audit)
        # Field checks only: the unique tokens (192 random bits) and the check constraints are enforced by
        # the database at INSERT, and validating them here cost four extra queries per game started.
        game.full_clean(validate_unique=False, validate_constraints=False)
        try:
            with transaction.atomic():
                game.save()
                params = [game.pk]
                for position, (tile_id, _source) in enumerate(picks, start=1):
                    params += [position, tile_id]
                cap = max_exposures()
                with connection.cursor() as cursor:
                    cursor.execute(_rounds_insert_sql(len(picks)), [*params, cap])
                    if cursor.rowcount != len(picks):
                        raise _StalePool
                    if not audit:
                        cursor.execute(_exposures_sql(len(picks)), [*(t for t, _ in picks), cap])
                        if cursor.rowcount != len(picks):
                            raise _StalePool
        except _StalePool:
            # A dealt tile was deactivated or used up after the pool was read: read it again, deal again.
            pool_forget()
            continue
        return game
    raise PoolChanged("The tile catalog changed while your game was being dealt. Please start again.")


# ---------------------------------------------------------------------------------------------- answering

@dataclass(frozen=True)
class AnswerReceipt:
    """What the player may learn once an answer is stored: the verdict on that round and the progress."""

    game_id: int
    position: int
    n: int
    answer: str
    correct: bool
    source: str
    tissue: str
    score: int

    @property
    def completed(self) -> bool:
        return self.position == self.n


def _answer_sql() -> str:
    """The one statement that checks, judges and stores an answer, and reads back the verdict.

    It matches only the unanswered round at `position` of a live game (token known, not completed, not
    expired) whose previous round is answered. PostgreSQL re-checks `answered_at IS NULL` on the row
    after a concurrent writer commits, so of two simultaneous answers exactly one is stored; the ORM's
    UPDATE cannot RETURN, and would need a second round trip for the verdict. The running score counts
    only the rounds before this one, which are settled, so it reads the same under PostgreSQL's
    statement snapshot and SQLite's row-by-row RETURNING (SQLite ≥ 3.35).
    """
    q = connection.ops.quote_name
    rounds, games, tiles = q(GameRound._meta.db_table), q(Game._meta.db_table), q(Tile._meta.db_table)
    return f"""
        UPDATE {rounds}
           SET answer = %s, confidence = %s, answered_at = %s,
               correct = CASE WHEN source = %s THEN %s ELSE %s END
         WHERE answered_at IS NULL
           AND position = %s
           AND game_id = (SELECT id FROM {games} WHERE token = %s AND completed IS NULL AND expires > %s)
           AND (position = 1 OR EXISTS (
                 SELECT 1 FROM {rounds} previous
                  WHERE previous.game_id = {rounds}.game_id AND previous.position = {rounds}.position - 1
                    AND previous.answered_at IS NOT NULL))
     RETURNING game_id, source, correct,
               (SELECT n FROM {games} g WHERE g.id = {rounds}.game_id),
               (SELECT tissue FROM {tiles} t WHERE t.id = {rounds}.tile_id),
               (SELECT count(*) FROM {rounds} earlier
                 WHERE earlier.game_id = {rounds}.game_id AND earlier.position < {rounds}.position
                   AND earlier.correct)
    """


def quiz_answer_submit(*, game_token: str, position: int, answer: str, confidence: str) -> AnswerReceipt:
    """Store the answer to round `position` of a game, once, in order, while the game is live.

    One statement on the hot path (see `_answer_sql`); the last round adds a second that marks the game
    completed. Refusals take a slower path that says why.
    """
    if answer not in GameRound.Answer.values or confidence not in GameRound.Confidence.values:
        raise QuizError("Choose Real or Synthetic, and Sure or Unsure.")
    if not 1 <= position <= POSITION_MAX:
        raise GameNotFound(f"This game has no tile {position}.")  # before the query: the driver would overflow
    now = timezone.now()
    says_real = answer == GameRound.Answer.REAL
    stamp = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(_answer_sql(), [answer, confidence, stamp, REAL, says_real, not says_real,
                                       position, game_token, stamp])
        row = cursor.fetchone()
    if row is None:
        raise _refusal(game_token=game_token, position=position, now=now)
    game_id, source, correct, n, tissue, earlier_correct = row
    receipt = AnswerReceipt(game_id=game_id, position=position, n=n, answer=answer, correct=bool(correct),
                            source=source, tissue=tissue, score=earlier_correct + bool(correct))
    if receipt.completed:
        Game.objects.filter(pk=receipt.game_id, completed__isnull=True).update(completed=now, score=receipt.score)
    return receipt


def _refusal(*, game_token: str, position: int, now) -> QuizError:
    """Say why an answer was not stored (the slow path: only refused answers come here)."""
    game = Game.objects.filter(token=game_token).first()
    if game is None:
        return GameNotFound("There is no such game.")
    if game.completed is not None:
        return GameFinished("This game is over: every tile has been answered.")
    if game.expires <= now:
        return GameExpired("This game has expired. Start a new one!")
    this_round = game.rounds.filter(position=position).first()
    if this_round is None:
        return GameNotFound(f"This game has no tile {position}.")
    if this_round.answered_at is not None:
        return RoundAlreadyAnswered(f"Tile {position} is already answered: an answer cannot be changed.")
    return RoundOutOfOrder(f"Answer the tiles in order: tile {position} is not up yet.")


def game_finish(*, game: Game) -> Game:
    """Mark a game whose rounds are all answered as completed (idempotent).

    `quiz_answer_submit` does this with the last answer; this mends a game whose last answer was stored by
    a process that died before its completion UPDATE.
    """
    if game.completed is not None:
        return game
    counts = game.rounds.aggregate(answered=Count("pk", filter=Q(answered_at__isnull=False)),
                                   score=Count("pk", filter=Q(correct=True)))
    if counts["answered"] == game.n:
        last = game.rounds.order_by("-answered_at").values_list("answered_at", flat=True).first()
        Game.objects.filter(pk=game.pk, completed__isnull=True).update(completed=last, score=counts["score"])
        game.refresh_from_db()
    return game


def crowd_stats_refresh() -> dict:
    """Recompute the crowd statistics and put them in the shared cache (run by the beat task)."""
    stats = selectors.crowd_stats_compute()
    cache.set(selectors.CROWD_CACHE_KEY, stats, selectors.CROWD_CACHE_TIMEOUT)
    return stats
