"""Periodic quiz work: the crowd statistics the leaderboard and results pages read from the cache."""

from __future__ import annotations

from config.celery import rnagan_task
from quiz import services

# Scheduled every 60 s by CELERY_BEAT_SCHEDULE in config/settings.py.


@rnagan_task(time_limit=120)
def crowd_stats_refresh() -> int:
    """Recompute the crowd statistics into the shared cache; safe to run any number of times."""
    return services.crowd_stats_refresh()["games"]
