"""The study side: cached statistics per study, the publish-after-close switch, the study export, and the
round trip export → study_import → identical statistics."""

from __future__ import annotations

import io
import json
import zipfile

import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from stats import selectors, services
from studies import services as study_services
from studies.models import Study

pytestmark = pytest.mark.django_db
TISSUES = ("Lung", "Brain - Cortex")
QUALITY = {"real": 4, "rnagan": 3, "gan": 2}


def rate_everything(study: Study, raters: int = 4) -> None:
    """Each rater scores by source with a personal offset, sometimes names the wrong tissue, and debriefs."""
    for k, rater in enumerate(study_services.study_invite(study=study, n=raters)):
        for item in rater.items.select_related("study_tile").order_by("position"):
            tile = item.study_tile
            quality = max(1, min(5, QUALITY[tile.source] + (k % 3) - 1 + (item.position % 2)))
            wrong = tile.source == "gan" and (item.position + k) % 4 == 0
            tissue = [t for t in study.tissues if t != tile.tissue][0] if wrong else tile.tissue
            study_services.rating_submit(token=rater.token, position=item.position, tissue=tissue,
                                         quality=quality, artifacts="yes" if tile.source == "gan" else "no",
                                         active_seconds=5.0 + k)
        study_services.rater_finish(token=rater.token)
        rater.refresh_from_db()
        study_services.rater_debrief_save(rater=rater, suspected=["yes", "no", "unsure"][k % 3], giveaway="grid")


@pytest.fixture
def rated_study(catalog):
    catalog.fill(TISSUES, real=6, gan=6, rnagan=6)
    study = study_services.study_create(name="panel", tissues=TISSUES, per_cell=3, anchors=4, repeats=2, seed=7)
    rate_everything(study)
    return study


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("curator", password="pw-c-1", is_staff=True))
    return client


def test_the_study_statistics_are_cached_and_debounced(rated_study):
    assert services.study_stats_refresh(study=rated_study) is True
    assert services.study_stats_refresh(study=rated_study) is False
    result = selectors.study_stats_cached(study=rated_study)["result"]
    assert result["raters"] == 4 and len(result["tests"]) == 2 * 3 * 3
    real_gan = [t for t in result["tests"] if t["comparison"] == "real > gan" and t["test"] == "paired t, one-sided"]
    assert all(t["effect"] > 1 and t["p"] < 0.05 for t in real_gan)
    assert result["debrief"]["answered"] == 4 and result["test_retest"]["pairs"] == 8


def test_the_page_has_a_section_per_study(staff_client, rated_study):
    services.stats_refresh_all()
    html = staff_client.get(reverse("stats:page")).content.decode()
    assert "Rating study panel" in html and "wilcoxon signed-rank, one-sided" in html
    assert html.count("<figcaption>") == 2  # the study's two figures; no game answers yet
    assert "Krippendorff" in html and "ICC(2,1)" in html


def test_statistics_are_published_read_only_only_after_the_study_closes(staff_client, rated_study):
    client = Client()  # anonymous, beside the staff member's
    services.stats_refresh_all()
    url = reverse("stats:study", kwargs={"name": "panel"})
    assert client.get(url).status_code == 404
    staff_client.post(reverse("stats:study_publish", kwargs={"name": "panel"}), {"published": "1"})
    rated_study.refresh_from_db()
    assert rated_study.stats_published is False  # still open: refused
    with pytest.raises(services.StatsError, match="close it before publishing"):
        services.study_stats_publish(study=rated_study, published=True)
    study_services.study_set_status(study=rated_study, status="closed")
    staff_client.post(reverse("stats:study_publish", kwargs={"name": "panel"}), {"published": "1"})
    response = client.get(url)
    assert response.status_code == 200 and b"paired t, one-sided" in response.content
    assert b"Publish read-only" not in response.content and b"Withdraw" not in response.content
    assert client.get(reverse("stats:study_export", kwargs={"name": "panel"})).status_code == 200


def test_the_study_export_matches_its_datapackage_and_hides_rater_labels(staff_client, rated_study):
    response = staff_client.get(reverse("stats:study_export", kwargs={"name": "panel"}))
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    package = json.loads(archive.read("datapackage.json"))
    for resource in package["resources"]:
        if "schema" in resource and resource["format"] == "csv":
            frame = pd.read_csv(archive.open(resource["path"]))
            assert list(frame.columns) == [f["name"] for f in resource["schema"]["fields"]], resource["path"]
            assert len(frame) == resource["rnagan:rows"]
    assert "label" not in pd.read_csv(archive.open("raters.csv")).columns
    ratings = pd.read_parquet(io.BytesIO(archive.read("ratings.parquet")))
    assert len(ratings) == sum(r.n_items for r in rated_study.raters.all())
    assert {"figures/figure6_quality.svg", "figures/accuracy_artifacts.svg", "results.json"} <= set(archive.namelist())


def test_round_trip_export_then_import_gives_identical_statistics(tmp_path, rated_study):
    call_command("export_scores", "--study", "panel", "--out", str(tmp_path / "a"), stdout=io.StringIO())
    # The same design on the same catalog and seed draws the same tiles under the same codes.
    copy = study_services.study_create(name="panel-copy", tissues=TISSUES, per_cell=3, anchors=4, repeats=2, seed=7)
    call_command("study_import", "--study", copy.name, "--ratings", str(tmp_path / "a" / "ratings.csv"),
                 "--raters", str(tmp_path / "a" / "raters.csv"), stdout=io.StringIO())
    call_command("study_stats", "--study", copy.name, "--json", str(tmp_path / "b.json"), stdout=io.StringIO(),
                 stderr=io.StringIO())
    original = json.loads((tmp_path / "a" / "results.json").read_text())
    again = json.loads((tmp_path / "b.json").read_text())
    for result in (original, again):
        result.pop("computed_at"), result.pop("name")
    assert again == original
    with pytest.raises(CommandError, match="already has ratings"):
        call_command("study_import", "--study", copy.name, "--ratings", str(tmp_path / "a" / "ratings.csv"))


def test_import_refuses_tiles_the_study_does_not_have(tmp_path, rated_study):
    call_command("export_scores", "--study", "panel", "--out", str(tmp_path / "a"), stdout=io.StringIO())
    frame = pd.read_csv(tmp_path / "a" / "ratings.csv")
    frame.loc[2, "tile"] = "t9999"
    frame.to_csv(tmp_path / "bad.csv", index=False)
    copy = study_services.study_create(name="other", tissues=TISSUES, per_cell=3, seed=7)
    with pytest.raises(CommandError, match=r"bad\.csv, row 3, column 'tile': 't9999' is not a tile of study other"):
        call_command("study_import", "--study", "other", "--ratings", str(tmp_path / "bad.csv"))
    assert not copy.raters.exists()
