"""`python manage.py study_demo`: the demo's rating study, three rater links and a staff account.

Called by `make demo` once the catalog is ready. The study is made once (both demo tissues, three sources,
3 tiles a cell, 2 hidden repeats); each run prints the links again and gives the staff account a fresh
generated password, so whoever runs the demo can always log in.
"""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from generation.demo import TISSUES
from studies import services
from studies.models import Study

NAME = "demo-study"
STAFF_USER = "staff"


class Command(BaseCommand):
    help = "Create the demo rating study (once) and print three rater links and a staff login."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, base_url: str, **options):
        base_url = base_url.rstrip("/")
        study = Study.objects.filter(name=NAME).first()
        if study is None:
            try:
                study = services.study_create(name=NAME, tissues=TISSUES, per_cell=3, repeats=2, seed=2023)
            except services.StudyError as refusal:
                raise CommandError(f"demo study: {refusal}") from refusal
        raters = list(study.raters.filter(revoked_at__isnull=True).order_by("index")[:3])
        if len(raters) < 3:
            raters += services.study_invite(study=study, n=3 - len(raters), labels=["demo"] * (3 - len(raters)))
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(username=STAFF_USER)
        user.is_staff = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"Rating study {NAME!r}: {study.tiles.count()} tiles, {raters[0].n_items} items a rater.")
        for rater in raters:
            link = base_url + reverse("studies:welcome", kwargs={"token": rater.token})
            self.stdout.write(f"  rater {rater.code}: {link}")
        self.stdout.write(f"  staff dashboard: {base_url}{reverse('studies:dashboard')}  "
                          f"(user {STAFF_USER!r}, password {password!r})")
