from __future__ import annotations

import socket

from generation.models import WorkerHeartbeat


def heartbeat_record(*, token: str, hostname: str | None = None) -> WorkerHeartbeat:
    """Record that a worker answered; running it twice with one token keeps one row."""
    heartbeat, _ = WorkerHeartbeat.objects.get_or_create(
        token=token, defaults={"hostname": hostname or socket.gethostname()}
    )
    return heartbeat
