"""The public quiz: a game deals N catalog tiles, one round each, and stores one answer per round."""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q

from generation.models import Tile

NICKNAME_MAX_LENGTH = 24


def new_game_token() -> str:
    # 24 random bytes (192 bits), URL-safe: the token is the only credential a player holds.
    return secrets.token_urlsafe(24)


class Game(models.Model):
    # `token` lets its holder play and see the results; `share_token` only shows the finished results,
    # so a shared link can never be used to answer.
    token = models.CharField(max_length=43, unique=True, default=new_game_token, editable=False)
    share_token = models.CharField(max_length=43, unique=True, default=new_game_token, editable=False)
    nickname = models.CharField(max_length=NICKNAME_MAX_LENGTH, blank=True)
    session_key = models.CharField(max_length=40, db_index=True, help_text="the player's browser session")
    seed = models.BigIntegerField(help_text="drew the tiles and their order")
    n = models.PositiveSmallIntegerField(help_text="rounds in this game")
    created = models.DateTimeField()
    expires = models.DateTimeField()
    completed = models.DateTimeField(null=True, blank=True)
    score = models.PositiveSmallIntegerField(null=True, blank=True, help_text="correct answers, set on completion")
    audit = models.BooleanField(
        default=False, help_text="played by audit_blinding: not in the crowd statistics or leaderboard, uses no exposures",
    )

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.CheckConstraint(condition=Q(n__gt=0), name="quiz_game_has_rounds"),
            models.CheckConstraint(
                condition=Q(completed__isnull=True, score__isnull=True)
                | Q(completed__isnull=False, score__isnull=False, score__lte=models.F("n")),
                name="quiz_game_score_iff_completed",
            ),
        ]
        indexes = [
            models.Index(
                fields=["n", "-score", "completed"], name="quiz_game_leaderboard",
                condition=Q(completed__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        state = f"{self.score}/{self.n}" if self.completed else "in play"
        return f"game {self.pk} ({state})"


class GameRound(models.Model):
    class Answer(models.TextChoices):
        REAL = "real", "Real"
        SYNTHETIC = "synthetic", "Synthetic"

    class Confidence(models.TextChoices):
        SURE = "sure", "Sure"
        UNSURE = "unsure", "Unsure"

    game = models.ForeignKey(Game, on_delete=models.CASCADE, related_name="rounds")
    position = models.PositiveSmallIntegerField(help_text="1 … n, the order the tiles are shown in")
    tile = models.ForeignKey(Tile, on_delete=models.PROTECT, related_name="+")
    # The truth as dealt, copied from the tile: the answer path judges with a one-table UPDATE, and a
    # game's verdicts stay fixed whatever later happens to the catalog row.
    source = models.CharField(max_length=10, choices=Tile.Source.choices)
    answer = models.CharField(max_length=10, choices=Answer.choices, blank=True)
    confidence = models.CharField(max_length=10, choices=Confidence.choices, blank=True)
    correct = models.BooleanField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["game", "position"]
        constraints = [
            models.UniqueConstraint(fields=["game", "position"], name="quiz_one_round_per_position"),
            models.UniqueConstraint(fields=["game", "tile"], name="quiz_no_tile_twice_in_a_game"),
            models.CheckConstraint(condition=Q(position__gte=1), name="quiz_positions_start_at_one"),
            models.CheckConstraint(
                condition=Q(answer="", confidence="", correct__isnull=True, answered_at__isnull=True)
                | (
                    Q(answer__in=["real", "synthetic"], confidence__in=["sure", "unsure"])
                    & Q(correct__isnull=False, answered_at__isnull=False)
                ),
                name="quiz_round_answered_all_at_once",
            ),
        ]

    def __str__(self) -> str:
        return f"game {self.game_id} round {self.position}"

    @property
    def is_synthetic(self) -> bool:
        return self.source != Tile.Source.REAL
