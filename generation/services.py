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

from generation.encoding import EncodedTile, encode_pixels, encode_synthetic, store_tile
from generation.loader import cached_generator, weights_sha256
from generation.models import Checkpoint, GenerationJob, Tile, WorkerHeartbeat, new_public_id
from generation.serving import tile_fits
from generation.storage import (
    discard,
    promote,
    stage_file,
    staging_dir,
    staging_remove_if_empty,
    staging_sweep,
    tile_relative_path,
)
from training.data.jpeg import JpegHistory
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
    images: Sequence[np.ndarray] | np.ndarray | None = None,
    jpegs: Sequence[bytes] | None = None,
    source: str,
    tissue: str,
    origins: Sequence[TileOrigin],
    checkpoint: Checkpoint | None = None,
    job: GenerationJob | None = None,
    staging: str | None = None,
) -> int:
    """Encode, write and catalog tiles; return how many of them are in the catalog afterwards.

    `images` are pixels: a checkpoint's (exactly the catalog size, round-tripped through its training
    slides' JPEG history, then the store encoder) or, for real tiles, a folder's (one store encoding).
    `jpegs` are a tile store's bytes, kept as they are (generation/encoding.py). A tile whose file would
    not fit the fixed served size (RNAGAN_TILE_SERVED_BYTES) is left out and logged.

    Two-phase (see generation/storage.py): staged files, inactive rows inserted in one statement that
    skips conflicts (same image, or a job index another worker already made), then promoted files and
    activated rows. Files whose row lost such a race are deleted, so nothing is left behind.
    """
    if (images is None) == (jpegs is None):
        raise ValueError("give images or jpegs")
    items = list(images if images is not None else jpegs)
    if len(items) != len(origins):
        raise ValueError(f"{len(items)} tiles but {len(origins)} origins")
    size = settings.RNAGAN_TILE_SIZE
    folder = staging_dir(staging or (f"job-{job.pk}" if job else f"import-{uuid.uuid4().hex}"))
    history = JpegHistory.from_dict(checkpoint.source_jpeg) if checkpoint is not None else None

    def encode(item, origin: TileOrigin) -> EncodedTile:
        if checkpoint is not None:
            return encode_synthetic(item, size, history=history,
                                    name=f"checkpoint {checkpoint.name} (seed {origin.seed})")
        name = f"{origin.cohort}/{origin.sample}"
        return store_tile(item, size, name=name) if jpegs is not None else encode_pixels(item, size, name=name)

    def encode_and_stage(pair) -> tuple[str, EncodedTile] | None:
        # Encoding and writing run together in the thread pool: both release the GIL.
        encoded = encode(*pair)
        if not tile_fits(encoded.data):
            log.warning("tile %s left out: %d bytes do not fit RNAGAN_TILE_SERVED_BYTES=%d",
                        pair[1], len(encoded.data), settings.RNAGAN_TILE_SERVED_BYTES)
            return None
        public_id = new_public_id()
        stage_file(staging=folder, public_id=public_id, data=encoded.data)
        return public_id, encoded

    pairs = list(zip(items, origins, strict=True))
    threads = max(1, getattr(settings, "RNAGAN_ENCODE_THREADS", 4))
    if threads == 1 or len(pairs) < 4:
        results = [encode_and_stage(pair) for pair in pairs]
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            results = list(pool.map(encode_and_stage, pairs))
    kept_pairs = [(result, origin) for result, origin in zip(results, origins, strict=True) if result]
    staged = [result for result, _ in kept_pairs]
    origins = [origin for _, origin in kept_pairs]
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


def checkpoint_register(*, run_dir: str, name: str, tiles: str | None = None) -> Checkpoint:
    """Register (or refresh) a trained run: kind and tissue come from its config; the weights must load;
    generators draw the catalog's size natively.

    The JPEG history its tiles will be given is that of the slides it was trained on, read from the
    tile store its config names (or `tiles`, when the store lives elsewhere on this machine).
    """
    from generation.encoding import store_history

    run = Path(run_dir).resolve()
    if not (run / CONFIG_FILE).exists():
        raise CheckpointError(f"{run}: not a training run folder (no {CONFIG_FILE})")
    sha256 = weights_sha256(run)
    loaded = cached_generator(str(run), sha256)  # proves the weights load against the config
    kind = loaded.kind  # "gan" | "rnagan" | "noise", the Checkpoint.Kind values
    vae_run = str(loaded.vae_run) if getattr(loaded, "vae_run", None) else ""
    if kind == Checkpoint.Kind.RNAGAN and not vae_run:
        raise CheckpointError(f"{run}: an RNA-GAN run must name the β-VAE run it was trained with")
    if loaded.image_size != settings.RNAGAN_TILE_SIZE:
        raise CheckpointError(
            f"checkpoint {name} ({run}) draws {loaded.image_size} px tiles; the catalog takes "
            f"{settings.RNAGAN_TILE_SIZE} px (RNAGAN_TILE_SIZE) and never upsamples"
        )
    config = read_json(run / CONFIG_FILE)
    store = tiles or config.get("tiles")
    try:
        history = store_history(store, tissue=loaded.tissue) if store else None
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    except FileNotFoundError:
        raise CheckpointError(
            f"{run}: cannot read the tile store {store} its generator was trained on, which tells the JPEG "
            "history its tiles must be given; pass the store's path on this machine (--tiles)"
        ) from None
    checkpoint, _ = Checkpoint.objects.update_or_create(
        name=name,
        defaults={
            "kind": kind, "tissue": loaded.tissue, "run_dir": str(run), "weights_sha256": sha256,
            "config": config, "vae_run_dir": vae_run,
            "source_jpeg": history.to_dict() if history else None,
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
    `minimum` active tiles with exposures left; the caller queues them."""
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
            # Tiles dealt to RNAGAN_TILE_MAX_EXPOSURES games have left the pool: they do not count.
            active = Tile.objects.filter(tissue=tissue, source=kind, active=True,
                                         exposures__lt=settings.RNAGAN_TILE_MAX_EXPOSURES).count()
            pending = GenerationJob.objects.filter(
                checkpoint__tissue=tissue, checkpoint__kind=kind,
                status__in=[GenerationJob.Status.QUEUED, GenerationJob.Status.RUNNING],
            ).aggregate(n=Sum(F("requested") - F("produced")))["n"] or 0
            deficit = minimum - active - pending
            if deficit > 0:
                created.append(generation_job_create(checkpoint=checkpoint, requested=deficit))
    return created
