"""The tile catalog: checkpoints, tiles (real and synthetic, one table) and generation jobs."""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q


def new_public_id() -> str:
    # 16 random bytes, URL-safe: opaque and never sequential, so nothing about a tile can be guessed from it.
    return secrets.token_urlsafe(16)


def new_job_seed() -> int:
    # Jobs differ by seed, so two jobs on one checkpoint never draw the same tiles.
    return secrets.randbits(40)


class WorkerHeartbeat(models.Model):
    """A row written by a worker when asked: proof that the queue, a worker and the database connect."""

    token = models.CharField(max_length=64, unique=True)
    hostname = models.CharField(max_length=255)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.hostname} @ {self.created:%Y-%m-%d %H:%M:%S}"


class Checkpoint(models.Model):
    class Kind(models.TextChoices):
        GAN = "gan", "GAN (noise input)"
        RNAGAN = "rnagan", "RNA-GAN (expression input)"
        NOISE = "noise", "Narrow-noise ablation"

    name = models.SlugField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    tissue = models.CharField(max_length=100)
    run_dir = models.CharField(max_length=1024, help_text="the training run folder (weights + config.json)")
    weights_sha256 = models.CharField(max_length=64)
    config = models.JSONField(default=dict)
    vae_run_dir = models.CharField(max_length=1024, blank=True, help_text="the β-VAE run an RNA-GAN needs")
    # training.data.jpeg.JpegHistory of the slides its training tiles were cut from ({quality, subsampling,
    # colorspace, exact}); its tiles get a JPEG round trip like it before the store encoder. Null: the
    # slides' compression left no trace in the tiles (not JPEG, or resampled).
    source_jpeg = models.JSONField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="gan") | Q(kind="noise") | ~Q(vae_run_dir=""), name="rnagan_checkpoint_needs_vae"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}, {self.tissue})"


class Tile(models.Model):
    class Source(models.TextChoices):
        REAL = "real", "Real"
        GAN = "gan", "GAN"
        RNAGAN = "rnagan", "RNA-GAN"
        NOISE = "noise", "Noise ablation"

    public_id = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    source = models.CharField(max_length=10, choices=Source.choices)
    tissue = models.CharField(max_length=100)
    image = models.FileField(upload_to="tiles/", max_length=255)
    sha256 = models.CharField(max_length=64, unique=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    checkpoint = models.ForeignKey(Checkpoint, null=True, blank=True, on_delete=models.PROTECT, related_name="tiles")
    # Where the expression came from: a cohort + sample ID, or "vae-sampled" for decode(centroid + noise).
    expression_cohort = models.CharField(max_length=200, blank=True)
    expression_sample = models.CharField(max_length=200, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    job = models.ForeignKey("GenerationJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="tiles")
    job_index = models.PositiveIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    active = models.BooleanField(default=True)
    # Games this tile was dealt to (audit games excepted); at RNAGAN_TILE_MAX_EXPOSURES it leaves the pool.
    exposures = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["created", "id"]
        constraints = [
            # A job's i-th tile exists at most once, however many workers run the job.
            models.UniqueConstraint(fields=["job", "job_index"], name="one_tile_per_job_index"),
            models.CheckConstraint(
                condition=Q(source="real", checkpoint__isnull=True) | (~Q(source="real") & Q(checkpoint__isnull=False)),
                name="synthetic_tiles_have_a_checkpoint",
            ),
        ]
        indexes = [models.Index(fields=["source", "tissue", "active"])]

    def __str__(self) -> str:
        return self.public_id


class GenerationJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    class ExpressionSource(models.TextChoices):
        NONE = "none", "no expression (GAN)"
        SAMPLE = "sample", "one cohort sample"
        RANDOM_SAMPLE = "random-sample", "random cohort samples"
        EXPRESSION_FILE = "expression-file", "a row of an expression table"
        VAE_TISSUE = "vae-tissue", "decoded from the VAE around a tissue centroid"

    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.PROTECT, related_name="jobs")
    requested = models.PositiveIntegerField()
    expression_source = models.CharField(max_length=20, choices=ExpressionSource.choices, default=ExpressionSource.NONE)
    expression_ref = models.CharField(max_length=1024, blank=True, help_text="sample ID, 'file#row', or tissue")
    seed = models.BigIntegerField(default=new_job_seed)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    produced = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    # Touched after every batch: a running job whose row has not moved for long lost its worker.
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created"]
        constraints = [models.CheckConstraint(condition=Q(requested__gt=0), name="job_requests_tiles")]

    def __str__(self) -> str:
        return f"job {self.pk}: {self.requested} × {self.checkpoint_id} ({self.status})"
