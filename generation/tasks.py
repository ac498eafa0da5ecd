from __future__ import annotations

from config.celery import rnagan_task
from generation import services


@rnagan_task(time_limit=60)
def worker_heartbeat(*, token: str) -> int:
    """Write a heartbeat row: used by health checks and by the real-worker round-trip test."""
    return services.heartbeat_record(token=token).pk
