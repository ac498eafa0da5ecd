"""`python manage.py study_stats (--study NAME | --ratings FILE) [--json OUT] [--html OUT]`.

With --ratings the database is never touched: a lab's CSV or Parquet file gets the same analysis.
"""

from __future__ import annotations

import json as jsonlib
import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from django.template.loader import render_to_string

from config.commands import ProjectCommand
from stats import presenting, selectors
from stats.analysis import files, report, schema
from studies.models import Study


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def render_report(result: dict, *, title: str) -> str:
    from stats.exports import code_version

    payload = presenting.study_payload(result)
    return render_to_string("stats/report.html", {
        "title": title, "study": payload, "agreement_rows": presenting.agreement_rows(result),
        "css": (Path(settings.BASE_DIR) / "static" / "css" / "stats.css").read_text(),
        "code_version": code_version(),
    })


class Command(ProjectCommand):
    help = "Run the study analysis (paired tests, mixed model, agreement, …) on a study or a ratings file."

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--study", help="a study's name in the database")
        source.add_argument("--ratings", type=Path, help="a CSV or Parquet file with the export's rating columns")
        parser.add_argument("--json", type=Path, help="write the results as JSON here")
        parser.add_argument("--html", type=Path, help="write a standalone HTML report here")

    def handle(self, *args, study, ratings, json: Path | None, html: Path | None, **options):
        try:
            if ratings is not None:
                result = report.analyse_study(files.read_ratings(ratings), name=ratings.stem, file=str(ratings))
            else:
                result = self.study_result(study)
        except schema.AnalysisInputError as exc:
            raise CommandError(str(exc)) from None
        self.write_outputs(result, json_path=json, html_path=html)

    def study_result(self, name: str) -> dict:
        study = Study.objects.filter(name=name).first()
        if study is None:
            known = ", ".join(Study.objects.order_by("name").values_list("name", flat=True)) or "none yet"
            raise CommandError(f"--study {name}: no such study (known: {known})")
        ratings, _, raters = selectors.study_frames(study=study)
        if ratings.empty:
            raise CommandError(f"--study {name}: the study has no ratings yet")
        return report.analyse_study(ratings, raters, name=study.name, file=f"study {study.name}")

    def write_outputs(self, result: dict, *, json_path: Path | None, html_path: Path | None) -> None:
        for warning in result["warnings"]:
            self.stderr.write(f"warning: {warning}")
        if json_path:
            write_atomically(json_path, jsonlib.dumps(result, indent=1, allow_nan=False))
        if html_path:
            write_atomically(html_path, render_report(result, title=f"Rating study statistics: {result['name']}"))
        for test in result["tests"]:
            p = f"p = {test['p']:.3g}, Holm p = {test['p_holm']:.3g}" if test["p"] is not None else test["note"]
            self.stdout.write(f"{test['tissue']:>10}  {test['comparison']:<14} {test['test']:<34} n = {test['n']:<5} {p}")
