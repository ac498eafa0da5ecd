from django.core.management.base import CommandError

from config.commands import ProjectCommand
from generation.models import Checkpoint
from generation.showcase import ShowcaseError, showcase_build
from training.utils.checkpoints import CheckpointError


class Command(ProjectCommand):
    help = ("Build the public /conditioning/ page's set for an RNA-GAN checkpoint: two samples' real tiles "
            "(from slides outside the catalog) beside tiles drawn from their expression.")

    def add_arguments(self, parser):
        parser.add_argument("--checkpoint", required=True, help="an RNA-GAN checkpoint's catalog name")
        parser.add_argument("--per-sample", type=int, default=6, help="tiles of each kind per sample (1–24, default 6)")

    def handle(self, *args, checkpoint: str, per_sample: int, **options):
        if not 1 <= per_sample <= 24:
            raise CommandError(f"--per-sample {per_sample}: give 1–24 tiles")
        found = Checkpoint.objects.filter(name=checkpoint).first()
        if found is None:
            raise CommandError(f"--checkpoint {checkpoint}: no checkpoint of that name (see register_checkpoint)")
        try:
            showcase = showcase_build(checkpoint=found, per_sample=per_sample)
        except (ShowcaseError, CheckpointError) as exc:
            raise CommandError(str(exc)) from exc
        samples = ", ".join(s.sample for s in showcase.samples)
        self.stdout.write(self.style.SUCCESS(f"showcase of {showcase.name} ({showcase.tissue}): samples {samples}"))
