"""`python manage.py export_scores (--study NAME | --game) --out DIR`: the download's files, into a folder."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from django.core.management.base import CommandError

from config.commands import ProjectCommand
from stats import exports
from studies.models import Study


class Command(ProjectCommand):
    help = "Write a study's or the game's export (CSV, Parquet, results JSON, SVG figures, datapackage.json)."

    def add_arguments(self, parser):
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--study", help="a study's name")
        what.add_argument("--game", action="store_true", help="the game's answers")
        parser.add_argument("--out", type=Path, required=True, help="folder to write (must not exist or be empty)")

    def handle(self, *args, study, game, out: Path, **options):
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise CommandError(f"{out} exists and is not an empty folder: name a new one")
        out.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the target and renamed at the end: an interrupted export leaves no half folder.
        scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            if game:
                exports.export_game(scratch)
            else:
                found = Study.objects.filter(name=study).first()
                if found is None:
                    raise CommandError(f"--study {study}: no such study")
                exports.export_study(scratch, found)
            if out.exists():
                out.rmdir()
            scratch.rename(out)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        self.stdout.write(f"wrote {out}")
