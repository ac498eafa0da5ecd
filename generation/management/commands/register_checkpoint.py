from django.core.management.base import CommandError

from config.commands import ProjectCommand
from generation.services import checkpoint_register
from training.utils.checkpoints import CheckpointError


class Command(ProjectCommand):
    help = "Register a trained GAN / RNA-GAN run folder in the catalog (kind and tissue come from its config)."

    def add_arguments(self, parser):
        parser.add_argument("run", help="training run folder (config.json + generator_ema.safetensors)")
        parser.add_argument("--name", required=True, help="catalog name, a slug (e.g. lung-rnagan-v1)")

    def handle(self, *args, run: str, name: str, **options):
        try:
            checkpoint = checkpoint_register(run_dir=run, name=name)
        except CheckpointError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(
            f"registered {checkpoint.name}: {checkpoint.kind}, tissue {checkpoint.tissue}, "
            f"weights {checkpoint.weights_sha256[:12]}…"
        ))
