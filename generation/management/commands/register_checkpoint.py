from django.core.management.base import CommandError

from config.commands import ProjectCommand
from generation.services import checkpoint_register
from training.utils.checkpoints import CheckpointError


class Command(ProjectCommand):
    help = "Register a trained GAN / RNA-GAN run folder in the catalog (kind and tissue come from its config)."

    def add_arguments(self, parser):
        parser.add_argument("run", help="training run folder (config.json + generator_ema.safetensors)")
        parser.add_argument("--name", required=True, help="catalog name, a slug (e.g. lung-rnagan-v1)")
        parser.add_argument("--tiles", help="the tile store it was trained on, when not where its config says; "
                                            "its slides' JPEG history is given to the generator's tiles")

    def handle(self, *args, run: str, name: str, tiles: str | None = None, **options):
        try:
            checkpoint = checkpoint_register(run_dir=run, name=name, tiles=tiles)
        except CheckpointError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(
            f"registered {checkpoint.name}: {checkpoint.kind}, tissue {checkpoint.tissue}, "
            f"weights {checkpoint.weights_sha256[:12]}…, source JPEG history {checkpoint.source_jpeg or 'none'}"
        ))
