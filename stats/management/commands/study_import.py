"""`python manage.py study_import --study NAME --ratings FILE [--raters FILE]`: ratings from elsewhere."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError

from config.commands import ProjectCommand
from stats.analysis import files, schema
from stats.imports import study_ratings_import
from studies.models import Study


class Command(ProjectCommand):
    help = ("Load a ratings file (CSV or Parquet, the export's rating columns; `tile` = the study's tile codes) "
            "into a study, all or nothing.")

    def add_arguments(self, parser):
        parser.add_argument("--study", required=True, help="the study's name; it must exist and hold the tiles")
        parser.add_argument("--ratings", type=Path, required=True)
        parser.add_argument("--raters", type=Path, help="optional: the export's raters table (profile, debrief)")

    def handle(self, *args, study: str, ratings: Path, raters: Path | None, **options):
        found = Study.objects.filter(name=study).first()
        if found is None:
            raise CommandError(f"--study {study}: no such study; create it first (same tiles as the file's)")
        try:
            frame = files.read_ratings(ratings)
            profiles = files.read_table(raters) if raters else None
            loaded = study_ratings_import(study=found, ratings=frame, raters=profiles, file=str(ratings))
        except schema.AnalysisInputError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"loaded {loaded} ratings from {frame['rater'].nunique()} raters into {found.name}")
