"""Reads for the quiz: settings, tiles a player has seen, a game's state and results, the crowd, the leaderboard.

The tile pool a game deals from is in quiz.pool.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from generation.models import Tile
from quiz.models import Game, GameRound
from quiz.pool import GAME_SOURCES, GAN, REAL, RNAGAN, SOURCE_LABELS  # noqa: F401 - re-exported

SOURCE_VERDICT_LABELS = {REAL: "Real tiles recognised", GAN: "GAN tiles detected", RNAGAN: "RNA-GAN tiles detected"}

CROWD_CACHE_KEY = "quiz:crowd-stats:v1"
CROWD_CACHE_TIMEOUT = 15 * 60  # the beat task refreshes every minute; this only bounds staleness if beat stops
LEADERBOARD_SIZE = 50


@dataclass(frozen=True)
class QuizSettings:
    rounds: int
    game_ttl: timedelta
    demo_cohort: bool


def quiz_settings() -> QuizSettings:
    rounds = int(getattr(settings, "RNAGAN_QUIZ_ROUNDS", 20))
    ttl = int(getattr(settings, "RNAGAN_QUIZ_GAME_TTL", 2 * 60 * 60))
    if rounds < 2 or ttl <= 0:
        raise ValueError(f"RNAGAN_QUIZ_ROUNDS={rounds} must be ≥ 2 and RNAGAN_QUIZ_GAME_TTL={ttl} positive")
    return QuizSettings(rounds=rounds, game_ttl=timedelta(seconds=ttl),
                        demo_cohort=bool(getattr(settings, "RNAGAN_DEMO_COHORT", False)))


# ---------------------------------------------------------------------------------------------- the player

def tiles_seen(*, session_key: str) -> set[int]:
    return set(GameRound.objects.filter(game__session_key=session_key).values_list("tile_id", flat=True))


# ---------------------------------------------------------------------------------------------- a game

@dataclass(frozen=True)
class RoundState:
    """What the play page needs of a round; the truth fields are shown only for answered rounds."""

    position: int
    answered: bool
    correct: bool | None
    source: str
    tissue: str

    @property
    def is_synthetic(self) -> bool:
        return self.source != REAL

    @property
    def source_label(self) -> str:
        return SOURCE_LABELS[self.source]


@dataclass
class PlayState:
    game: Game
    rounds: list[RoundState]
    expired: bool

    @property
    def answered(self) -> int:
        return sum(1 for r in self.rounds if r.answered)

    @property
    def score(self) -> int:
        return sum(1 for r in self.rounds if r.correct)

    @property
    def current(self) -> RoundState | None:
        return next((r for r in self.rounds if not r.answered), None)

    @property
    def last_answered(self) -> RoundState | None:
        done = [r for r in self.rounds if r.answered]
        return done[-1] if done else None


def play_state(*, token: str) -> PlayState | None:
    """The game and its rounds as plain tuples: the play page is on every game's path, model rows cost."""
    game = Game.objects.filter(token=token).first()
    if game is None:
        return None
    rows = game.rounds.order_by("position").values_list("position", "answered_at", "correct", "source", "tile__tissue")
    rounds = [RoundState(position, answered_at is not None, correct, source, tissue)
              for position, answered_at, correct, source, tissue in rows]
    expired = game.completed is None and game.expires <= timezone.now()
    return PlayState(game=game, rounds=rounds, expired=expired)


# Every tile a player sees comes through here, so the lookup is plain SQL: building the same query with
# the ORM (two joins, the models' default orderings) cost three times the CPU of running it.
def _round_image_sql(by: str) -> str:
    q = connection.ops.quote_name
    rounds, games, tiles = q(GameRound._meta.db_table), q(Game._meta.db_table), q(Tile._meta.db_table)
    return f"""
        SELECT t.image FROM {rounds} r
          JOIN {games} g ON g.id = r.game_id
          JOIN {tiles} t ON t.id = r.tile_id
         WHERE r.position = %s AND {by}
    """


# A playing game shows a round only once it is current (the round before it is answered) or answered,
# so no tile can be fetched, sized or hashed before its turn; a finished game's share link shows all.
_ROUND_IMAGE_BY = {
    "token": f"""g.token = %s AND (r.position = 1 OR EXISTS (
                SELECT 1 FROM {GameRound._meta.db_table} p
                 WHERE p.game_id = r.game_id AND p.position = r.position - 1 AND p.answered_at IS NOT NULL))""",
    "share_token": "g.share_token = %s AND g.completed IS NOT NULL",
}


def round_image_name(*, position: int, token: str | None = None, share_token: str | None = None) -> str | None:
    """The storage name of a round's tile that may be seen now: by play token when the round is current or
    answered, by share token when the game is finished; None otherwise."""
    if token is not None:
        by, key = "token", token
    elif share_token is not None:
        by, key = "share_token", share_token
    else:
        raise ValueError("give token or share_token")
    with connection.cursor() as cursor:
        cursor.execute(_round_image_sql(_ROUND_IMAGE_BY[by]), [position, key])
        row = cursor.fetchone()
    return row[0] if row else None


def game_by_share_token(*, share_token: str) -> Game | None:
    return Game.objects.filter(share_token=share_token, completed__isnull=False).first()


@dataclass(frozen=True)
class Tally:
    key: str
    label: str
    correct: int
    total: int

    @property
    def percent(self) -> int:
        return round(100 * self.correct / self.total) if self.total else 0


@dataclass
class GameResults:
    game: Game
    rounds: list[GameRound]
    score: int
    by_source: list[Tally]
    by_tissue: list[Tally]
    roc: dict
    crowd: dict
    percentile: int | None = None
    crowd_mean: float | None = None

    @property
    def has_real(self) -> bool:
        return any(r.source == REAL for r in self.rounds)


def synthetic_rating(answer: str, confidence: str) -> int:
    """The answer as a 4-level 'this is synthetic' rating, the scale the ROC curves are drawn on."""
    if answer == GameRound.Answer.SYNTHETIC:
        return 4 if confidence == GameRound.Confidence.SURE else 3
    return 1 if confidence == GameRound.Confidence.SURE else 2


def roc_curve(counts: Counter) -> dict:
    """ROC of synthetic-vs-real from counts keyed (is_synthetic, rating 1–4); points run (0,0) → (1,1)."""
    positives = sum(c for (syn, _), c in counts.items() if syn)
    negatives = sum(c for (syn, _), c in counts.items() if not syn)
    if not positives or not negatives:
        return {"points": [], "auc": None}
    points = [(0.0, 0.0)]
    for threshold in (4, 3, 2, 1):
        tpr = sum(c for (syn, r), c in counts.items() if syn and r >= threshold) / positives
        fpr = sum(c for (syn, r), c in counts.items() if not syn and r >= threshold) / negatives
        points.append((fpr, tpr))
    auc = sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False))
    return {"points": points, "auc": auc}


def _tallies(rows: Iterable[tuple[str, str, bool]], *, by: str) -> list[Tally]:
    correct: Counter = Counter()
    total: Counter = Counter()
    for source, tissue, ok in rows:
        key = source if by == "source" else tissue
        total[key] += 1
        correct[key] += bool(ok)
    if by == "source":
        return [Tally(s, SOURCE_VERDICT_LABELS[s], correct[s], total[s]) for s in GAME_SOURCES if total[s]]
    return [Tally(t, t, correct[t], total[t]) for t in sorted(total)]


def percentile_of(score: int, score_counts: list[int]) -> int | None:
    """Percent of the crowd's games this score beats, ties counted half."""
    games = sum(score_counts)
    if not games:
        return None
    below = sum(score_counts[:score]) if score < len(score_counts) else games
    ties = score_counts[score] if score < len(score_counts) else 0
    return round(100 * (below + ties / 2) / games)


def game_results(*, game: Game) -> GameResults:
    rounds = list(game.rounds.select_related("tile").order_by("position"))
    answered = [r for r in rounds if r.answered_at is not None]
    rows = [(r.source, r.tile.tissue, bool(r.correct)) for r in answered]
    counts = Counter((r.is_synthetic, synthetic_rating(r.answer, r.confidence)) for r in answered)
    crowd = crowd_stats()
    score = sum(1 for r in answered if r.correct)
    same_size = crowd["n"] == game.n
    return GameResults(
        game=game, rounds=rounds, score=score,
        by_source=_tallies(rows, by="source"), by_tissue=_tallies(rows, by="tissue"),
        roc=roc_curve(counts), crowd=crowd,
        percentile=percentile_of(score, crowd["score_counts"]) if same_size else None,
        crowd_mean=crowd["mean_score"] if same_size else None,
    )


# ---------------------------------------------------------------------------------------------- the crowd

def leaderboard_top(*, limit: int = LEADERBOARD_SIZE, n: int | None = None) -> list[dict]:
    """Best finished game per (nickname, browser session), highest score first, earliest first on ties.

    Only games of the current size compete, so a shorter game cannot top a full one.
    """
    n = n or quiz_settings().rounds
    best = (
        Game.objects.filter(completed__isnull=False, n=n, audit=False).exclude(nickname="")
        .annotate(place_for_player=Window(
            RowNumber(), partition_by=[F("nickname"), F("session_key")],
            order_by=[F("score").desc(), F("completed").asc()],
        ))
        .filter(place_for_player=1)
        .order_by("-score", "completed", "pk")
        .values("nickname", "score", "n", "completed")
    )
    return list(best[:limit])


def crowd_stats_compute() -> dict:
    """Everything the crowd pages show, as plain data for the cache."""
    n = quiz_settings().rounds
    score_counts = [0] * (n + 1)
    # Audit games (audit_blinding's scripted players) are not the crowd.
    for row in Game.objects.filter(completed__isnull=False, n=n, audit=False).values("score").annotate(c=Count("id")).order_by():
        score_counts[row["score"]] += row["c"]
    games = sum(score_counts)
    mean = sum(s * c for s, c in enumerate(score_counts)) / games if games else None

    cells = (GameRound.objects.filter(answered_at__isnull=False, source__in=GAME_SOURCES, game__audit=False)
             .values("source", "answer", "confidence", "tile__tissue", "correct").annotate(c=Count("id")).order_by())
    rows: list[tuple[str, str, bool]] = []
    roc_counts: Counter = Counter()
    for cell in cells:
        rows.extend([(cell["source"], cell["tile__tissue"], cell["correct"])] * cell["c"])
        roc_counts[(cell["source"] != REAL, synthetic_rating(cell["answer"], cell["confidence"]))] += cell["c"]
    answers = len(rows)
    return {
        "computed": timezone.now().isoformat(),
        "n": n,
        "games": games,
        "answers": answers,
        "mean_score": mean,
        "mean_percent": round(100 * mean / n) if mean is not None else None,
        "score_counts": score_counts,
        "by_source": [{**asdict(t), "percent": t.percent} for t in _tallies(rows, by="source")],
        "by_tissue": [{**asdict(t), "percent": t.percent} for t in _tallies(rows, by="tissue")],
        "roc": roc_curve(roc_counts),
        "leaderboard": leaderboard_top(limit=LEADERBOARD_SIZE, n=n),
    }


def crowd_stats() -> dict:
    """The cached crowd statistics; computed here on a miss so a fresh site shows them at once."""
    stats = cache.get(CROWD_CACHE_KEY)
    if stats is None or stats.get("n") != quiz_settings().rounds:
        stats = crowd_stats_compute()
        cache.set(CROWD_CACHE_KEY, stats, CROWD_CACHE_TIMEOUT)
    return stats


def roc_svg_points(points: list[tuple[float, float]], *, size: int = 200) -> str:
    """SVG polyline points for a ROC curve in a size × size box (y grows downwards in SVG)."""
    return " ".join(f"{x * size:.1f},{size - y * size:.1f}" for x, y in points)
