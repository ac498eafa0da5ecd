"""`python manage.py study_invite --study NAME --n N [--label L]...`: create raters and print their links."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from studies import services
from studies.models import Study


class Command(BaseCommand):
    help = "Invite raters to a study: each gets a private link (their only credential)."

    def add_arguments(self, parser):
        parser.add_argument("--study", required=True)
        parser.add_argument("--n", type=int, required=True)
        parser.add_argument("--label", action="append", default=[], help="a note on who a rater is (repeatable)")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="the site's address in the links")

    def handle(self, *args, study, n, label, base_url, **options):
        found = Study.objects.filter(name=study).first()
        if found is None:
            raise CommandError(f"--study {study}: no such study")
        try:
            raters = services.study_invite(study=found, n=n, labels=label)
        except services.StudyError as refusal:
            raise CommandError(str(refusal)) from refusal
        for rater in raters:
            link = base_url.rstrip("/") + reverse("studies:welcome", kwargs={"token": rater.token})
            self.stdout.write(f"{rater.code}\t{rater.n_items} items\t{rater.label or '-'}\t{link}")
