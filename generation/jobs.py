"""Running a generation job: make only the tiles still missing, in batches, until the job has N.

Safe to run twice, concurrently, or after a killed worker:
- an advisory lock (PostgreSQL) lets one worker at a time work on a job; a second returns at once;
- tile i of a job has a fixed seed and expression, and (job, job_index) is unique in the database,
  so a re-run makes exactly the missing indices and a lost race inserts nothing;
- progress is committed batch by batch, so a killed worker loses at most one batch.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from generation.encoding import TileSizeError
from generation.expressions import ExpressionError, plan_inputs
from generation.loader import cached_generator
from generation.models import Checkpoint, GenerationJob
from generation.services import TileOrigin, tiles_create
from generation.storage import staging_dir, staging_reconcile
from training.utils.checkpoints import CheckpointError

log = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x52474A  # "RGJ": keeps our advisory locks apart from anyone else's
_local_locks: dict[int, threading.Lock] = {}
_local_guard = threading.Lock()


@contextlib.contextmanager
def job_lease(job_pk: int) -> Iterator[bool]:
    """Hold the job's lease for the duration; yields False when another worker holds it.

    On PostgreSQL a session advisory lock, released by the server if the worker dies. Elsewhere (the
    SQLite demo runs one worker process) a process-local lock.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, job_pk])
            acquired = cursor.fetchone()[0]
        try:
            yield acquired
        finally:
            if acquired:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_NAMESPACE, job_pk])
        return
    with _local_guard:
        lock = _local_locks.setdefault(job_pk, threading.Lock())
    acquired = lock.acquire(blocking=False)
    try:
        yield acquired
    finally:
        if acquired:
            lock.release()


def _finish(job: GenerationJob, *, status: str, error: str = "") -> GenerationJob:
    job.produced = job.tiles.count()
    job.status = status
    job.error = error
    job.finished = timezone.now()
    job.save(update_fields=["produced", "status", "error", "finished", "updated"])
    return job


def generation_job_run(*, job_pk: int, batch_size: int | None = None) -> GenerationJob:
    batch_size = batch_size or settings.RNAGAN_GENERATION_BATCH
    with job_lease(job_pk) as acquired:
        if not acquired:
            log.info("job %s is being run by another worker", job_pk)
            return GenerationJob.objects.get(pk=job_pk)
        with transaction.atomic():
            job = GenerationJob.objects.select_for_update().select_related("checkpoint").get(pk=job_pk)
            if job.status == GenerationJob.Status.DONE:
                return job
            job.status = GenerationJob.Status.RUNNING
            job.started = job.started or timezone.now()
            job.error = ""
            job.save(update_fields=["status", "started", "error", "updated"])

        checkpoint: Checkpoint = job.checkpoint
        # A worker killed mid-batch left staged files: keep those whose rows committed, drop the rest.
        staging_reconcile(staging_dir(f"job-{job.pk}"))
        done = set(job.tiles.values_list("job_index", flat=True))
        missing = [i for i in range(job.requested) if i not in done]
        if not missing:
            return _finish(job, status=GenerationJob.Status.DONE)
        try:
            loaded = cached_generator(checkpoint.run_dir, checkpoint.weights_sha256)
            inputs = plan_inputs(job, loaded, missing)
        except (CheckpointError, ExpressionError) as exc:
            # Permanent: retrying cannot fix a corrupt checkpoint or an unknown sample.
            log.error("job %s failed: %s", job_pk, exc)
            return _finish(job, status=GenerationJob.Status.FAILED, error=str(exc))

        from training.inference.generate import generate

        for start in range(0, len(inputs), batch_size):
            chunk = inputs[start : start + batch_size]
            expression = None
            if chunk[0].expression is not None:
                expression = np.stack([item.expression for item in chunk])
            images = generate(loaded, len(chunk), expression=expression, seeds=[item.seed for item in chunk])
            try:
                tiles_create(
                    images=images, source=checkpoint.kind, tissue=checkpoint.tissue, checkpoint=checkpoint, job=job,
                    origins=[TileOrigin(cohort=i.cohort, sample=i.sample, seed=i.seed, job_index=i.index)
                             for i in chunk],
                )
            except TileSizeError as exc:  # permanent: the generator's size will not change on a retry
                log.error("job %s failed: %s", job_pk, exc)
                return _finish(job, status=GenerationJob.Status.FAILED, error=str(exc))
            job.produced = job.tiles.count()
            job.save(update_fields=["produced", "updated"])
        produced = job.tiles.count()
        if produced < job.requested:
            return _finish(job, status=GenerationJob.Status.FAILED,
                           error=f"made {produced} of {job.requested} tiles (identical images, or files over "
                                 "RNAGAN_TILE_SERVED_BYTES, were skipped; see the worker log)")
        return _finish(job, status=GenerationJob.Status.DONE)
