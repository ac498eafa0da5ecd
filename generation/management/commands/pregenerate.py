import math
import time

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import transaction

from config.commands import ProjectCommand
from generation.models import Checkpoint, GenerationJob
from generation.tasks import generation_job_submit

Source = GenerationJob.ExpressionSource
MAX_TILES = 10_000_000


class Command(ProjectCommand):
    help = "Queue a generation job for a registered checkpoint; with --wait, follow it until it ends."

    def add_arguments(self, parser):
        parser.add_argument("--checkpoint", required=True, help="registered checkpoint name")
        parser.add_argument("--n", type=int, required=True, help="number of tiles")
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--sample", help="RNA-GAN: one cohort sample ID (SAMPID)")
        which.add_argument("--expression-file", help="RNA-GAN: an aligned expression table; with --row")
        which.add_argument("--random-sample", action="store_true", help="RNA-GAN: random cohort samples (default)")
        which.add_argument("--vae-tissue", help="RNA-GAN: expression decoded from the VAE around this tissue")
        parser.add_argument("--row", help="row label or position in --expression-file")
        parser.add_argument("--seed", type=int)
        parser.add_argument("--queue", help="Celery queue (default: RNAGAN_GENERATION_QUEUE)")
        parser.add_argument("--wait", action="store_true", help="show progress until the job ends")
        parser.add_argument("--timeout", type=float, default=3600, help="with --wait: give up after this many seconds")

    def handle(self, *args, **o):
        # Checked before any query: a job row holds 32-bit counts and a 64-bit seed.
        if not 1 <= o["n"] <= MAX_TILES:
            raise CommandError(f"--n {o['n']}: a job draws 1–{MAX_TILES} tiles")
        if o["seed"] is not None and not 0 <= o["seed"] < 2**63:
            raise CommandError(f"--seed {o['seed']}: give 0 … 2**63 - 1")
        if not 0 < o["timeout"] < math.inf:
            raise CommandError(f"--timeout {o['timeout']}: give a positive number of seconds")
        try:
            checkpoint = Checkpoint.objects.get(name=o["checkpoint"])
        except Checkpoint.DoesNotExist:
            names = ", ".join(Checkpoint.objects.values_list("name", flat=True)) or "none registered"
            raise CommandError(f"no checkpoint named {o['checkpoint']!r} (known: {names})") from None
        if o["expression_file"] and o["row"] is None:
            raise CommandError("--expression-file needs --row")
        source, ref = Source.NONE, ""
        if o["sample"]:
            source, ref = Source.SAMPLE, o["sample"]
        elif o["expression_file"]:
            source, ref = Source.EXPRESSION_FILE, f"{o['expression_file']}#{o['row']}"
        elif o["vae_tissue"]:
            source, ref = Source.VAE_TISSUE, o["vae_tissue"]
        elif o["random_sample"]:
            source = Source.RANDOM_SAMPLE
        try:
            with transaction.atomic():
                job = generation_job_submit(checkpoint=checkpoint, requested=o["n"], expression_source=source,
                                            expression_ref=ref, seed=o["seed"], queue=o["queue"])
        except (ValueError, ValidationError) as exc:
            raise CommandError("; ".join(getattr(exc, "messages", [str(exc)]))) from exc
        self.stdout.write(f"queued job {job.pk}: {job.requested} tiles from {checkpoint.name}")
        if o["wait"]:
            self._follow(job, o["timeout"])

    def _follow(self, job: GenerationJob, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            job.refresh_from_db()
            state = (job.status, job.produced)
            if state != last:
                self.stdout.write(f"  {job.status}: {job.produced}/{job.requested}")
                last = state
            if job.status == GenerationJob.Status.DONE:
                self.stdout.write(self.style.SUCCESS(f"job {job.pk} done: {job.produced} tiles"))
                return
            if job.status == GenerationJob.Status.FAILED:
                raise CommandError(f"job {job.pk} failed: {job.error}")
            time.sleep(0.5)
        raise CommandError(f"job {job.pk} still {job.status} after {timeout:.0f} s (is a worker running?)")
