"""The researcher's commands: create a study, invite raters; refusals are one clear line, never a traceback."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command

from studies.models import Rater, Study
from tests.studies.conftest import TISSUES

pytestmark = pytest.mark.django_db


def _run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_and_invite_print_the_design_and_the_links(study_catalog):
    out = _run("study_create", "--name", "pilot", "--tissues", *TISSUES, "--per-cell", "4", "--anchors", "6",
               "--block-size", "9", "--min-raters", "2", "--repeats", "2", "--seed", "1")
    assert "study pilot: 24 tiles, 2 block(s); invite 4 raters" in out
    out = _run("study_invite", "--study", "pilot", "--n", "2", "--label", "Dr A")
    links = re.findall(r"http://127\.0\.0\.1:8000/s/([0-9a-f]{48})/", out)
    assert len(links) == 2 and set(links) == set(Rater.objects.values_list("token", flat=True))
    assert "R01\t17 items\tDr A" in out


def test_best_of_is_parsed_and_waits_for_curation(study_catalog):
    out = _run("study_create", "--name", "best", "--tissues", "Lung", "--per-cell", "3", "--selection", "best-of", "6")
    assert "6 candidates" not in out and "18 candidates drawn" in out
    assert Study.objects.get(name="best").candidates == 6
    with pytest.raises(CommandError, match="curation page"):
        _run("study_invite", "--study", "best", "--n", "1")


@pytest.mark.parametrize(("args", "message"), [
    (["--selection", "best-of"], "'random' or 'best-of N'"),
    (["--selection", "best"], "'random' or 'best-of N'"),
    (["--per-cell", "99"], r"cell \(real, Lung\): the catalog has 8 active tiles, 99 needed"),
    (["--sources", "real", "photo"], "--sources"),
    (["--cover-file", "/nonexistent.md"], "--cover-file /nonexistent.md"),
])
def test_bad_options_are_refused_by_name(study_catalog, args, message):
    base = {"--name": "x", "--tissues": "Lung", "--per-cell": "2"}
    base.pop(args[0], None)
    argv = [a for k, v in base.items() for a in (k, v)] + args
    with pytest.raises(CommandError, match=message):
        _run("study_create", *argv)
    with pytest.raises(CommandError, match="no such study"):
        _run("study_invite", "--study", "missing", "--n", "1")


def test_the_demo_study_prints_three_links_and_a_staff_login_that_works(catalog, client):
    catalog.fill(("Lung", "Brain - Cortex"), real=3, gan=3, rnagan=3)
    out = _run("study_demo")
    tokens = re.findall(r"rater R0\d: http://127\.0\.0\.1:8000/s/([0-9a-f]{48})/", out)
    password = re.search(r"user 'staff', password '([^']+)'", out).group(1)
    assert len(tokens) == 3 and "18 tiles, 20 items a rater" in out
    assert client.login(username="staff", password=password)
    assert client.get("/studies/demo-study/").status_code == 200
    again = _run("study_demo")
    assert re.findall(r"/s/([0-9a-f]{48})/", again) == tokens  # the same links, a fresh password
    assert Study.objects.count() == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--n", "0"], "--n: 1 to 1000"), (["--n", "1", "--label", "x" * 101], "at most 100 characters"),
    (["--n", "1", "--label", "a", "--label", "b"], "2 labels for 1 raters"),
])
def test_bad_invitations_are_refused_by_name(study_catalog, args, message):
    _run("study_create", "--name", "s", "--tissues", "Lung", "--per-cell", "1")
    with pytest.raises(CommandError, match=message):
        _run("study_invite", "--study", "s", *args)
    assert not Rater.objects.exists()


def test_a_cover_file_with_a_nul_is_refused(study_catalog, tmp_path):
    cover = tmp_path / "cover.md"
    cover.write_text("Welcome\x00")
    with pytest.raises(CommandError, match="NUL"):
        _run("study_create", "--name", "s", "--tissues", "Lung", "--per-cell", "1", "--cover-file", str(cover))
    assert not Study.objects.exists()
    cover.write_bytes(b"caf\xe9")
    with pytest.raises(CommandError, match="not UTF-8 text \\(byte 3\\)"):
        _run("study_create", "--name", "s", "--tissues", "Lung", "--per-cell", "1", "--cover-file", str(cover))
