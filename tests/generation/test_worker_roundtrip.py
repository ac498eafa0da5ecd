"""A task crosses real Redis to a real worker process, and its effect lands in PostgreSQL."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from django.db import connection

from generation.models import WorkerHeartbeat
from generation.tasks import worker_heartbeat

pytestmark = pytest.mark.worker


def _wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_task_sent_through_redis_is_run_by_a_worker_and_written_to_postgresql(celery_worker_factory):
    assert connection.vendor == "postgresql"
    worker = celery_worker_factory()
    token = uuid.uuid4().hex

    worker_heartbeat.apply_async(kwargs={"token": token}, queue=worker.queue)

    assert _wait_for(lambda: WorkerHeartbeat.objects.filter(token=token).exists()), worker.log()
    assert WorkerHeartbeat.objects.get(token=token).hostname


def test_the_heartbeat_task_is_safe_to_run_twice(celery_worker_factory):
    # The token is unique in the database, so the row count cannot tell; what can fail is the second run:
    # a task that inserted blindly would raise IntegrityError there instead of succeeding.
    worker = celery_worker_factory()
    token = uuid.uuid4().hex
    for _ in range(2):
        worker_heartbeat.apply_async(kwargs={"token": token}, queue=worker.queue)
    finished = re.compile(r"worker_heartbeat\[[^\]]+\] (succeeded|raised|retry)")
    assert _wait_for(lambda: len(finished.findall(worker.log())) >= 2), worker.log()
    assert finished.findall(worker.log()) == ["succeeded", "succeeded"], worker.log()
    assert WorkerHeartbeat.objects.filter(token=token).count() == 1


def test_every_task_acknowledges_late_and_has_time_limits():
    assert worker_heartbeat.acks_late
    assert worker_heartbeat.reject_on_worker_lost
    assert worker_heartbeat.soft_time_limit < worker_heartbeat.time_limit


def test_database_errors_are_retried_as_transient():
    from django.db.utils import OperationalError

    assert OperationalError in worker_heartbeat.autoretry_for
