"""`python manage.py demo`: prepare the demo content, then run a Celery worker and the web server.

Everything runs on embedded defaults (SQLite under var/, kombu's filesystem broker), so the demo
needs no server installed. Ctrl-C stops both processes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


def _stop_on_signal(signum, frame):
    # Background jobs start with SIGINT ignored, and service managers send SIGTERM: both must stop
    # the worker and the server too, not only this process.
    raise KeyboardInterrupt


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class Command(BaseCommand):
    help = "Prepare the demo and serve it at http://127.0.0.1:8000 with a Celery worker."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, host: str, port: int, **options):
        if _port_in_use(host, port):
            raise CommandError(f"{host}:{port} is already in use: stop what runs there or pass --port.")
        signal.signal(signal.SIGINT, _stop_on_signal)
        signal.signal(signal.SIGTERM, _stop_on_signal)
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("database ready")

        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        log_dir = settings.ENV.var_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        worker_log = open(log_dir / "worker.log", "ab")  # noqa: SIM115 - lives as long as the worker
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO",
             "--pool=threads", "--concurrency=2", "-Q", settings.CELERY_TASK_DEFAULT_QUEUE],
            env=env, stdout=worker_log, stderr=subprocess.STDOUT,
        )
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"{host}:{port}", "--noreload"],
            env=env, cwd=str(settings.BASE_DIR),
        )
        processes = [worker, server]
        try:
            for _ in range(100):
                if _port_in_use(host, port) or server.poll() is not None:
                    break
                time.sleep(0.2)
            if server.poll() is not None:
                raise CommandError("the web server exited at start; see the messages above")
            self.stdout.write(self.style.SUCCESS(f"RNA-GAN demo running at http://{host}:{port}/"))
            self.stdout.write(f"Celery worker log: {log_dir / 'worker.log'}. Press Ctrl-C to stop.")
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
            raise CommandError("a demo process exited unexpectedly; see the messages above and the worker log")
        except KeyboardInterrupt:
            self.stdout.write("stopping")
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
            worker_log.close()
