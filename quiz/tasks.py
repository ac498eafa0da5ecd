"""Periodic quiz work: the crowd statistics the leaderboard and results pages read from the cache."""

from __future__ import annotations

from config.celery import rnagan_task
from quiz import services

CROWD_STATS_EVERY_SECONDS = 60.0

# Wired into CELERY_BEAT_SCHEDULE by the settings. A refresh that waited longer than its period is
# dropped: the next one is coming and would do the same work.
BEAT_SCHEDULE = {
    "quiz-crowd-stats-refresh": {
        "task": "quiz.tasks.crowd_stats_refresh",
        "schedule": CROWD_STATS_EVERY_SECONDS,
        "options": {"expires": CROWD_STATS_EVERY_SECONDS - 5},
    },
}


@rnagan_task(time_limit=120)
def crowd_stats_refresh() -> int:
    """Recompute the crowd statistics into the shared cache; safe to run any number of times."""
    return services.crowd_stats_refresh()["games"]
