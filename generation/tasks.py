"""Celery tasks: thin wrappers that take keyword-only primary keys and call one service.

Jobs are sent to workers from here only, once the transaction that wrote them commits (a worker must see
the row): the services create and claim job rows and never import this module.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from config.celery import rnagan_task
from generation import jobs, services
from generation.models import GenerationJob


@rnagan_task(time_limit=60)
def worker_heartbeat(*, token: str) -> int:
    """Write a heartbeat row: used by health checks and by the real-worker round-trip test."""
    return services.heartbeat_record(token=token).pk


@rnagan_task(time_limit=3600)
def run_generation_job(*, job_pk: int) -> int:
    return jobs.generation_job_run(job_pk=job_pk).produced


@rnagan_task(time_limit=120)
def replenish_pool() -> list[int]:
    created = services.pool_replenish()
    for job in created:
        generation_job_queue(job=job)
    return [job.pk for job in created]


@rnagan_task(time_limit=120)
def resume_stalled_jobs() -> list[int]:
    return generation_jobs_resume_stalled()


def generation_job_queue(*, job: GenerationJob, queue: str | None = None) -> None:
    """Send the job to a worker once the current transaction commits (at once outside one)."""
    target = queue or settings.RNAGAN_GENERATION_QUEUE
    transaction.on_commit(lambda: run_generation_job.apply_async(kwargs={"job_pk": job.pk}, queue=target))


def generation_job_submit(*, queue: str | None = None, **fields) -> GenerationJob:
    """Create a job (services.generation_job_create takes `fields`) and queue it on commit."""
    job = services.generation_job_create(**fields)
    generation_job_queue(job=job, queue=queue)
    return job


def generation_jobs_resume_stalled(*, stale_after_s: int | None = None, queue: str | None = None) -> list[int]:
    """Queue again the jobs whose worker vanished; their primary keys."""
    stalled = services.generation_jobs_claim_stalled(stale_after_s=stale_after_s)
    for job in stalled:
        generation_job_queue(job=job, queue=queue)
    return [job.pk for job in stalled]
