"""Writes to the tile catalog. Every function is safe to call twice with the same input."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from generation.encoding import EncodedTile, encode_tile
from generation.loader import cached_generator, weights_sha256
from generation.models import Checkpoint, GenerationJob, Tile, WorkerHeartbeat, new_public_id
from generation.storage import (
    discard,
    promote,
    stage_file,
    staging_dir,
    staging_remove_if_empty,
    staging_sweep,
    tile_relative_path,
)
from training.utils.checkpoints import CONFIG_FILE, CheckpointError
from training.utils.io import read_json

log = logging.getLogger(__name__)


def heartbeat_record(*, token: str, hostname: str | None = None) -> WorkerHeartbeat:
    """Record that a worker answered; running it twice with one token keeps one row."""
    heartbeat, _ = WorkerHeartbeat.objects.get_or_create(
        token=token, defaults={"hostname": hostname or socket.gethostname()}
    )
    return heartbeat


@dataclass(frozen=True)
class TileOrigin:
    """What the catalog records about where one tile came from."""

    cohort: str = ""
    sample: str = ""
    seed: int | None = None
    job_index: int | None = None


def tiles_create(
    *,
    images: Sequence[np.ndarray] | np.ndarray,
    source: str,
    tissue: str,
    origins: Sequence[TileOrigin],
    checkpoint: Checkpoint | None = None,
    job: GenerationJob | None = None,
    staging: str | None = None,
) -> int:
    """Encode, write and catalog tiles; return how many of them are in the catalog afterwards.

    Two-phase (see generation/storage.py): staged files, inactive rows inserted in one statement that
    skips conflicts (same image, or a job index another worker already made), then promoted files and
    activated rows. Files whose row lost such a race are deleted, so nothing is left behind.
    """
    if len(images) != len(origins):
        raise ValueError(f"{len(images)} images but {len(origins)} origins")
    size = settings.RNAGAN_TILE_SIZE
    folder = staging_dir(staging or (f"job-{job.pk}" if job else f"import-{uuid.uuid4().hex}"))

    def encode_and_stage(rgb: np.ndarray) -> tuple[str, EncodedTile]:
        # Encoding and writing run together in the thread pool: both release the GIL.
        public_id = new_public_id()
        encoded = encode_tile(rgb, size)
        stage_file(staging=folder, public_id=public_id, data=encoded.data)
        return public_id, encoded

    threads = max(1, getattr(settings, "RNAGAN_ENCODE_THREADS", 4))
    if threads == 1 or len(images) < 4:
        staged = [encode_and_stage(rgb) for rgb in images]
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            staged = list(pool.map(encode_and_stage, images))
    rows = [
        Tile(
            public_id=public_id, source=source, tissue=tissue, sha256=enc.sha256, width=enc.width,
            height=enc.height, checkpoint=checkpoint, job=job, job_index=origin.job_index, seed=origin.seed,
            expression_cohort=origin.cohort, expression_sample=origin.sample,
            image=tile_relative_path(public_id), active=False,
        )
        for (public_id, enc), origin in zip(staged, origins, strict=True)
    ]
    with transaction.atomic():
        Tile.objects.bulk_create(rows, ignore_conflicts=True)
    kept = set(Tile.objects.filter(public_id__in=[r.public_id for r in rows]).values_list("public_id", flat=True))
    for row in rows:
        if row.public_id in kept:
            promote(staging=folder, public_id=row.public_id)
        else:
            discard(staging=folder, public_id=row.public_id)
    Tile.objects.filter(public_id__in=kept).update(active=True)
    staging_remove_if_empty(folder)
    return len(kept)


def tiles_deactivate(*, public_ids: Sequence[str]) -> int:
    return Tile.objects.filter(public_id__in=public_ids).update(active=False)


def checkpoint_register(*, run_dir: str, name: str) -> Checkpoint:
    """Register (or refresh) a trained run: kind and tissue come from its config; the weights must load."""
    run = Path(run_dir).resolve()
    if not (run / CONFIG_FILE).exists():
        raise CheckpointError(f"{run}: not a training run folder (no {CONFIG_FILE})")
    sha256 = weights_sha256(run)
    loaded = cached_generator(str(run), sha256)  # proves the weights load against the config
    kind = loaded.kind  # "gan" | "rnagan" | "noise", the Checkpoint.Kind values
    vae_run = str(loaded.vae_run) if getattr(loaded, "vae_run", None) else ""
    if kind == Checkpoint.Kind.RNAGAN and not vae_run:
        raise CheckpointError(f"{run}: an RNA-GAN run must name the β-VAE run it was trained with")
    checkpoint, _ = Checkpoint.objects.update_or_create(
        name=name,
        defaults={
            "kind": kind, "tissue": loaded.tissue, "run_dir": str(run), "weights_sha256": sha256,
            "config": read_json(run / CONFIG_FILE), "vae_run_dir": vae_run,
        },
    )
    return checkpoint


def generation_job_create(
    *,
    checkpoint: Checkpoint,
    requested: int,
    expression_source: str = GenerationJob.ExpressionSource.NONE,
    expression_ref: str = "",
    seed: int | None = None,
) -> GenerationJob:
    """Create a job row. Sending it to a worker is generation.tasks' business (`generation_job_submit`)."""
    kinds = GenerationJob.ExpressionSource
    if requested <= 0:
        raise ValueError("a job must request at least one tile")
    if checkpoint.kind == Checkpoint.Kind.RNAGAN and expression_source == kinds.NONE:
        expression_source = kinds.RANDOM_SAMPLE
    if checkpoint.kind != Checkpoint.Kind.RNAGAN and expression_source != kinds.NONE:
        raise ValueError(f"checkpoint {checkpoint.name} is {checkpoint.kind}: it takes no expression")
    if expression_source in (kinds.SAMPLE, kinds.EXPRESSION_FILE) and not expression_ref:
        raise ValueError(f"expression source {expression_source} needs a reference (sample ID or FILE#ROW)")
    job = GenerationJob(
        checkpoint=checkpoint, requested=requested, expression_source=expression_source,
        expression_ref=expression_ref,
    )
    if seed is not None:
        job.seed = seed
    job.full_clean()
    job.save()
    return job


def generation_jobs_claim_stalled(*, stale_after_s: int | None = None) -> list[GenerationJob]:
    """The jobs whose worker vanished (running but silent for long, or queued and never started), touched
    so that the next sweep leaves them alone while they are queued again."""
    stale_after_s = stale_after_s or settings.RNAGAN_JOB_STALE_AFTER_S
    staging_sweep(older_than_s=stale_after_s)
    cutoff = timezone.now() - timezone.timedelta(seconds=stale_after_s)
    stalled = list(
        GenerationJob.objects.filter(
            status__in=[GenerationJob.Status.RUNNING, GenerationJob.Status.QUEUED], updated__lt=cutoff
        )
    )
    with transaction.atomic():
        for job in stalled:
            GenerationJob.objects.filter(pk=job.pk).update(updated=timezone.now())
    return stalled


def pool_replenish(*, minimum: int | None = None) -> list[GenerationJob]:
    """Create the jobs that bring every (tissue, synthetic source) with a registered checkpoint to at least
    `minimum` active tiles; the caller queues them."""
    from django.db.models import F, Sum

    minimum = minimum if minimum is not None else settings.RNAGAN_POOL_MIN
    created = []
    latest: dict[tuple[str, str], Checkpoint] = {}
    for checkpoint in Checkpoint.objects.filter(kind__in=[Checkpoint.Kind.GAN, Checkpoint.Kind.RNAGAN]).order_by("created"):
        latest[(checkpoint.tissue, checkpoint.kind)] = checkpoint
    for (tissue, kind), checkpoint in sorted(latest.items()):
        with transaction.atomic():
            # Lock the checkpoint row so two beat ticks cannot both see a deficit and queue twice.
            Checkpoint.objects.select_for_update().get(pk=checkpoint.pk)
            active = Tile.objects.filter(tissue=tissue, source=kind, active=True).count()
            pending = GenerationJob.objects.filter(
                checkpoint__tissue=tissue, checkpoint__kind=kind,
                status__in=[GenerationJob.Status.QUEUED, GenerationJob.Status.RUNNING],
            ).aggregate(n=Sum(F("requested") - F("produced")))["n"] or 0
            deficit = minimum - active - pending
            if deficit > 0:
                created.append(generation_job_create(checkpoint=checkpoint, requested=deficit))
    return created
