"""Celery tasks: thin wrappers that take keyword-only primary keys and call one service."""

from __future__ import annotations

from config.celery import rnagan_task
from generation import jobs, services


@rnagan_task(time_limit=60)
def worker_heartbeat(*, token: str) -> int:
    """Write a heartbeat row: used by health checks and by the real-worker round-trip test."""
    return services.heartbeat_record(token=token).pk


@rnagan_task(time_limit=3600)
def run_generation_job(*, job_pk: int) -> int:
    return jobs.generation_job_run(job_pk=job_pk).produced


@rnagan_task(time_limit=120)
def replenish_pool() -> list[int]:
    return [job.pk for job in services.pool_replenish()]


@rnagan_task(time_limit=120)
def resume_stalled_jobs() -> list[int]:
    return services.generation_jobs_resume_stalled()
