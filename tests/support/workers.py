"""A real Celery worker process for tests: started against the test database and the real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.db import connection

from config.celery import app

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """One `celery worker` subprocess consuming a private queue, so parallel tests never share work."""

    def __init__(
        self, *, queue: str | None = None, pool: str = "solo", concurrency: int = 1, log_dir: Path,
        env: dict[str, str] | None = None,
    ):
        self.queue = queue or f"test-{uuid.uuid4().hex[:10]}"
        self.name = f"{self.queue}-{uuid.uuid4().hex[:6]}@localhost"
        self.pool = pool
        self.concurrency = concurrency
        self.log_path = log_dir / f"{self.name.split('@')[0]}.log"
        self.extra_env = env or {}
        self.process: subprocess.Popen[bytes] | None = None

    def environment(self) -> dict[str, str]:
        db = connection.settings_dict
        # The worker must see the test database that pytest-django created, not the default one.
        database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings_test",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "RNAGAN_TILE_SIZE": str(settings.RNAGAN_TILE_SIZE),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO",
             f"--pool={self.pool}", f"--concurrency={self.concurrency}", "-Q", self.queue, "-n", self.name,
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=self.environment(), stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited at start (code {self.process.returncode}):\n{self.log()}")
            if app.control.ping(destination=[self.name], timeout=0.5):
                return self
        self.stop()
        raise RuntimeError(f"worker {self.name} did not answer a ping within {timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """Kill without warning, as an OOM killer or a lost machine would."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
