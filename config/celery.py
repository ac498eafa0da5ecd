"""The Celery app and the one decorator every task is declared with.

`rnagan_task` sets the policy once: late acknowledgement (a task whose worker dies is redelivered),
bounded retries with backoff on transient errors, and time limits derived from each other.
Tasks must therefore be idempotent; see generation/tasks.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from celery import Celery
from django.db.utils import InterfaceError, OperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("rnagan")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# A lost connection, a busy or restarting database, a full queue: worth another try after a backoff.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError, TimeoutError, OSError, OperationalError, InterfaceError,
)


def rnagan_task(
    *,
    time_limit: int = 600,
    max_retries: int = 3,
    queue: str | None = None,
    autoretry_for: tuple[type[BaseException], ...] = TRANSIENT_ERRORS,
) -> Callable[[Callable[..., Any]], Any]:
    """Declare a task with the project's delivery policy.

    The soft limit is 90 % of the hard one so a task can clean up (delete a temporary file, mark a
    job failed) before the worker kills it.
    """
    options: dict[str, Any] = {
        "acks_late": True,
        "reject_on_worker_lost": True,
        "autoretry_for": autoretry_for,
        "max_retries": max_retries,
        "retry_backoff": True,
        "retry_backoff_max": 300,
        "retry_jitter": True,
        "time_limit": time_limit,
        "soft_time_limit": int(time_limit * 0.9),
    }
    if queue:
        options["queue"] = queue
    return app.task(**options)
