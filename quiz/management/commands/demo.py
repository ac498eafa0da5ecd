"""`python manage.py demo`: build the demo content, run a Celery worker (with beat) and the web server.

Everything runs on embedded defaults (SQLite under var/, kombu's filesystem broker), so the demo needs
no server installed. The content is made by generation.demo with the project's own commands; a second
run finds it in place and only starts serving. Ctrl-C (or SIGTERM) stops every process it started.
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
from django.core.management.base import CommandError

from config.commands import ProjectCommand
from generation import demo


def _stop_on_signal(signum, frame):
    # Background jobs start with SIGINT ignored, and service managers send SIGTERM: both must stop
    # the worker and the server too, not only this process.
    raise KeyboardInterrupt


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class Command(ProjectCommand):
    help = "Build the demo (synthetic cohort → tiles → checkpoints → catalog) and serve it at http://127.0.0.1:8000."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--real-per-tissue", type=int, default=40)
        parser.add_argument("--synthetic-per-arm", type=int, default=20, help="GAN and RNA-GAN tiles per tissue each")
        parser.add_argument("--prepare-only", action="store_true", help="build the content, then exit")

    def handle(self, *args, host: str, port: int, real_per_tissue: int, synthetic_per_arm: int,
               prepare_only: bool, **options):
        # Options are checked before any work: a bad port found after minutes of building is no help.
        if not 1 <= port <= 65535:
            raise CommandError(f"--port {port}: a TCP port is 1–65535")
        for flag, value in (("--real-per-tissue", real_per_tissue), ("--synthetic-per-arm", synthetic_per_arm)):
            if not 1 <= value <= 100_000:
                raise CommandError(f"{flag} {value}: give 1–100000 tiles")
        signal.signal(signal.SIGINT, _stop_on_signal)
        signal.signal(signal.SIGTERM, _stop_on_signal)
        if not prepare_only and _port_in_use(host, port):
            raise CommandError(f"{host}:{port} is already in use: stop what runs there or pass --port.")
        started = time.monotonic()
        log = self.stdout.write
        call_command("migrate", interactive=False, verbosity=0)
        paths = demo.DemoPaths(root=settings.ENV.var_dir / "demo", committed=settings.BASE_DIR / "demo" / "checkpoints")
        try:
            log("demo data: synthetic GTEx-format cohort, prepared expression, tile store")
            demo.build_data(paths, log=log)
            demo.install_checkpoints(paths, log=log)
        except (RuntimeError, FileNotFoundError) as exc:
            raise CommandError(str(exc)) from exc

        processes: list[subprocess.Popen] = []
        log_dir = settings.ENV.var_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            with open(log_dir / "worker.log", "ab") as worker_log:
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "config", "worker", "--beat", "--loglevel=INFO",
                     "--schedule", str(settings.ENV.var_dir / "celerybeat-schedule"),
                     "--pool=threads", "--concurrency=2", "-Q", settings.CELERY_TASK_DEFAULT_QUEUE],
                    env=env, stdout=worker_log, stderr=subprocess.STDOUT,
                ))
            jobs = demo.populate_catalog(paths, real_per_tissue=real_per_tissue,
                                         synthetic_per_arm=synthetic_per_arm, log=log)
            if jobs:
                demo.wait_for_jobs(jobs, timeout=600, log=log)
            log(f"catalog ready ({time.monotonic() - started:.0f} s)")
            demo.build_showcases(log=log)
            # By name, not import: the game and the rating study stay apart.
            call_command("study_demo", base_url=f"http://{host}:{port}", stdout=self.stdout)
            if prepare_only:
                return
            processes.append(subprocess.Popen(
                [sys.executable, "manage.py", "runserver", f"{host}:{port}", "--noreload"],
                env=env, cwd=str(settings.BASE_DIR),
            ))
            for _ in range(100):
                if _port_in_use(host, port) or processes[-1].poll() is not None:
                    break
                time.sleep(0.2)
            if processes[-1].poll() is not None:
                raise CommandError("the web server exited at start; see the messages above")
            self.stdout.write(self.style.SUCCESS(f"RNA-GAN demo running at http://{host}:{port}/"))
            log(f"How RNA-GAN follows its sample: http://{host}:{port}/conditioning/")
            log(f"Statistics at http://{host}:{port}/stats/ (the staff login above); the worker refreshes "
                "them every 2 minutes once games are played or the demo study is rated through the links above.")
            log(f"Celery worker log: {log_dir / 'worker.log'}. Press Ctrl-C to stop.")
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
            raise CommandError("a demo process exited unexpectedly; see the messages above and the worker log")
        except KeyboardInterrupt:
            log("stopping")
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
