"""The statistics refresh, scheduled by CELERY_BEAT_SCHEDULE["stats-refresh"] in config/settings.py."""

from __future__ import annotations

from config.celery import rnagan_task
from stats import services


@rnagan_task(time_limit=600)
def stats_refresh(*, force: bool = False) -> dict:
    """Recompute what changed since the cached results (debounced by the beat period); idempotent."""
    return services.stats_refresh_all(force=force)
