"""The blinded rating study: studies, their frozen tiles, raters, the items each rater is dealt, ratings.

A rater's items are a prefix-answered list: an item can be answered only when every earlier one is, so
`Rater.next_position` (the first unanswered item) is all the state the form needs.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from generation.models import Tile

COMMENT_MAX_LENGTH = 2000
QUALITY_RANGE = (1, 5)
REPEAT_MIN_GAP = 10  # a hidden repeat comes at least this many items after the first showing


def new_rater_token() -> str:
    # 192 random bits in lower-case hex: the link is the rater's only credential, and a hex string cannot
    # spell a source or generator name, so the blinding scan never trips over a token.
    return secrets.token_hex(24)


def new_item_key() -> str:
    return secrets.token_hex(16)


def default_cover_text() -> str:
    return (
        "Thank you for taking part.\n\n"
        "The tissue tiles in this study will be used to build machine-learning models, and we would like "
        "your expert view of their quality. For each tile, please tell us:\n\n"
        "1. which tissue it shows,\n"
        "2. the quality of the morphological structures, from 1 (very bad) to 5 (very good),\n"
        "3. whether you see artifacts in the image (for example image aberrations).\n\n"
        "Your answers are saved as you go; you can close the page and open your link again to go on."
    )


class Study(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    class Selection(models.TextChoices):
        RANDOM = "random", "Random draw"
        BEST_OF = "best-of", "Best of N, curated by staff"

    name = models.SlugField(max_length=100, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    tissues = models.JSONField(help_text="tissue names, in the order the form offers them")
    sources = models.JSONField(help_text="catalog sources in the study")
    per_cell = models.PositiveIntegerField(help_text="tiles kept per (source, tissue) cell")
    selection = models.CharField(max_length=10, choices=Selection.choices, default=Selection.RANDOM)
    candidates = models.PositiveIntegerField(null=True, blank=True, help_text="N for best-of N")
    anchors = models.PositiveIntegerField(default=0, help_text="tiles every rater rates")
    block_size = models.PositiveIntegerField(null=True, blank=True, help_text="empty: one block of every tile")
    min_raters = models.PositiveIntegerField(default=1)
    repeats = models.PositiveIntegerField(default=0, help_text="hidden repeats per rater")
    seed = models.BigIntegerField()
    cover_text = models.TextField(default=default_cover_text, help_text="Markdown; raw HTML is not rendered")
    # Every item page shows its tile at this size (the study's largest, 1:1), so no page differs by tile.
    tile_width = models.PositiveIntegerField(default=0)
    tile_height = models.PositiveIntegerField(default=0)
    debrief = models.BooleanField(default=True, help_text="ask finished raters what they suspected")
    stats_published = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    curated_at = models.DateTimeField(null=True, blank=True)
    curated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-created"]
        verbose_name_plural = "studies"
        constraints = [
            models.CheckConstraint(condition=Q(per_cell__gt=0), name="studies_per_cell_positive"),
            models.CheckConstraint(condition=Q(min_raters__gt=0), name="studies_min_raters_positive"),
            models.CheckConstraint(
                condition=Q(selection="random", candidates__isnull=True)
                | Q(selection="best-of", candidates__gte=F("per_cell")),
                name="studies_best_of_has_enough_candidates",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN

    @property
    def ready(self) -> bool:
        """Raters can be invited: the tiles are settled (a best-of study once curated)."""
        return self.selection == self.Selection.RANDOM or self.curated_at is not None


class StudyTile(models.Model):
    """A catalog tile frozen into a study, with what the analysis needs copied so it never drifts."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="tiles")
    code = models.CharField(max_length=16, help_text="the tile's name in exports, e.g. t0007")
    tile = models.ForeignKey(Tile, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=10, choices=Tile.Source.choices)
    tissue = models.CharField(max_length=100)
    checkpoint = models.CharField(max_length=100, blank=True)
    generator_config_hash = models.CharField(max_length=64, blank=True)
    expression_origin = models.CharField(max_length=401, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    # A best-of candidate is in the study only once a curator picked it; a random draw is in at once.
    included = models.BooleanField(default=True)
    picked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    picked_at = models.DateTimeField(null=True, blank=True)
    is_anchor = models.BooleanField(default=False)
    block = models.PositiveIntegerField(null=True, blank=True, help_text="empty for anchors")

    class Meta:
        ordering = ["study", "code"]
        constraints = [
            models.UniqueConstraint(fields=["study", "code"], name="studies_tile_code_unique"),
            models.UniqueConstraint(fields=["study", "tile"], name="studies_tile_once_per_study"),
        ]

    def __str__(self) -> str:
        return f"{self.study_id}/{self.code}"


class Rater(models.Model):
    class Suspected(models.TextChoices):
        YES = "yes", "Yes"
        NO = "no", "No"
        UNSURE = "unsure", "Unsure"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="raters")
    code = models.CharField(max_length=16, help_text="the rater's name in exports, e.g. R03")
    index = models.PositiveIntegerField(help_text="0-based invitation order; picks the rater's block")
    token = models.CharField(max_length=48, unique=True, default=new_rater_token, editable=False)
    label = models.CharField(max_length=100, blank=True, help_text="staff's note on who this is")
    specialty = models.CharField(max_length=100, blank=True)
    years_in_practice = models.PositiveSmallIntegerField(null=True, blank=True)
    profile_done = models.BooleanField(default=False)
    n_items = models.PositiveIntegerField()
    next_position = models.PositiveIntegerField(default=1, help_text="the first unanswered item")
    created = models.DateTimeField(auto_now_add=True)
    last_active = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True, help_text="ratings are locked from here")
    suspected_synthetic = models.CharField(max_length=10, choices=Suspected.choices, blank=True)
    giveaway = models.TextField(blank=True, max_length=COMMENT_MAX_LENGTH)
    debriefed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["study", "index"]
        constraints = [
            models.UniqueConstraint(fields=["study", "code"], name="studies_rater_code_unique"),
            models.UniqueConstraint(fields=["study", "index"], name="studies_rater_index_unique"),
            models.CheckConstraint(condition=Q(next_position__gte=1) & Q(next_position__lte=F("n_items") + 1),
                                   name="studies_rater_next_position_in_range"),
        ]

    def __str__(self) -> str:
        return f"{self.study_id}/{self.code}"

    @property
    def all_answered(self) -> bool:
        return self.next_position > self.n_items


class Item(models.Model):
    """One presentation to one rater: position in their order, the tile, and the opaque key of its URL."""

    rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    study_tile = models.ForeignKey(StudyTile, on_delete=models.PROTECT, related_name="items")
    key = models.CharField(max_length=32, unique=True, default=new_item_key, editable=False)
    is_repeat = models.BooleanField(default=False)
    first_served_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["rater", "position"]
        constraints = [
            models.UniqueConstraint(fields=["rater", "position"], name="studies_item_position_unique"),
            models.UniqueConstraint(fields=["rater", "study_tile", "is_repeat"], name="studies_item_tile_once"),
            models.CheckConstraint(condition=Q(position__gte=1), name="studies_item_position_from_one"),
        ]

    def __str__(self) -> str:
        return f"{self.rater_id}#{self.position}"


class Rating(models.Model):
    """The current answer to an item; every version, the first included, is a RatingRevision."""

    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="rating")
    tissue_answer = models.CharField(max_length=100)
    quality = models.PositiveSmallIntegerField()
    artifacts = models.BooleanField()
    comment = models.TextField(blank=True, max_length=COMMENT_MAX_LENGTH)
    seconds = models.FloatField(help_text="server time from the item first served to the first answer")
    active_seconds = models.FloatField(null=True, blank=True, help_text="time the page was in view (JavaScript)")
    answered_at = models.DateTimeField()
    revisions = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(quality__gte=QUALITY_RANGE[0], quality__lte=QUALITY_RANGE[1]),
                                   name="studies_rating_quality_1_to_5"),
        ]

    def __str__(self) -> str:
        return f"rating of {self.item_id}"


class RatingRevision(models.Model):
    rating = models.ForeignKey(Rating, on_delete=models.CASCADE, related_name="history")
    number = models.PositiveIntegerField()
    tissue_answer = models.CharField(max_length=100)
    quality = models.PositiveSmallIntegerField()
    artifacts = models.BooleanField()
    comment = models.TextField(blank=True)
    seconds = models.FloatField()
    active_seconds = models.FloatField(null=True, blank=True)
    created = models.DateTimeField()

    class Meta:
        ordering = ["rating", "number"]
        constraints = [
            models.UniqueConstraint(fields=["rating", "number"], name="studies_revision_number_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.rating_id} v{self.number}"
