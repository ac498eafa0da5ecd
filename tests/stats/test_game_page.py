"""The game's side in Django: the cached statistics, the staff page, the export ZIP and the commands."""

from __future__ import annotations

import io
import json
import zipfile

import pandas as pd
import pytest
from django.core.management import call_command
from django.urls import reverse

from quiz import services as quiz_services
from stats import selectors, services
from stats.analysis import schema
from tests.stats.conftest import play_through

pytestmark = pytest.mark.django_db


def played_games(count: int, *, n: int = 10) -> list:
    games = []
    for k in range(count):
        game = quiz_services.game_start(session_key=f"session-{k:04d}", n=n, seed=k)
        play_through(game, answers={p: "synthetic" for p in range(1, n + 1) if (p + k) % 3 == 0},
                     confidence="sure" if k % 2 else "unsure")
        games.append(game)
    return games


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_user("curator", password="pw-curator-1", is_staff=True)
    client.force_login(user)
    return client


def test_the_refresh_is_debounced_on_the_answers_fingerprint(full_catalog):
    played_games(3)
    assert services.game_stats_refresh() is True
    assert services.game_stats_refresh() is False  # nothing new: nothing recomputed
    cached = selectors.game_stats_cached()
    assert cached["result"]["answers"] == 30 and cached["result"]["players"] == 3
    played_games(1)
    assert services.game_stats_refresh() is True
    assert selectors.game_stats_cached()["result"]["answers"] == 40


def test_the_page_is_for_staff_only(client, django_user_model, full_catalog):
    response = client.get(reverse("stats:page"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    django_user_model.objects.create_user("player", password="pw-player-1")
    client.login(username="player", password="pw-player-1")
    assert client.get(reverse("stats:page")).status_code == 302
    assert client.get(reverse("stats:game_export")).status_code == 302


def test_the_page_renders_the_cached_result_with_figures_and_captions(staff_client, full_catalog):
    response = staff_client.get(reverse("stats:page"))
    assert b"Not computed yet" in response.content
    played_games(4)
    services.game_stats_refresh()
    response = staff_client.get(reverse("stats:page"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Computed at" in html and "40 answers by 4 players in 4 games" in html
    assert html.count("<svg") == 2 and html.count("<figcaption>") == 2
    assert "exact binomial, one-sided" in html and "nan" not in html.lower().replace("nanoseconds", "")


def test_the_game_export_is_anonymous_and_described_by_its_datapackage(staff_client, full_catalog):
    games = played_games(3)
    services.game_stats_refresh()
    response = staff_client.get(reverse("stats:game_export"))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = set(archive.namelist())
    assert {"answers.csv", "answers.parquet", "tiles.csv", "players.parquet", "results.json",
            "datapackage.json", "figures/game_roc.svg"} <= names
    package = json.loads(archive.read("datapackage.json"))
    assert package["profile"] == "tabular-data-package" and package["rnagan:code_version"]
    for resource in package["resources"]:
        assert resource["path"] in names
        if "schema" not in resource:
            continue
        with archive.open(resource["path"]) as handle:
            frame = pd.read_csv(handle) if resource["format"] == "csv" else pd.read_parquet(io.BytesIO(handle.read()))
        assert list(frame.columns) == [field["name"] for field in resource["schema"]["fields"]]
        assert len(frame) == resource["rnagan:rows"]
    answers = pd.read_csv(archive.open("answers.csv"))
    assert len(answers) == 30
    schema.validate(answers, schema.ANSWERS, file="answers.csv")  # the export passes its own checks
    everything = b"".join(archive.read(name) for name in names)
    for game in games:
        assert game.session_key.encode() not in everything and game.token.encode() not in everything
    assert set(answers["player"]) == {selectors.pseudonym("player", g.session_key) for g in games}


def test_export_scores_writes_the_same_files(tmp_path, full_catalog):
    played_games(2)
    call_command("export_scores", "--game", "--out", str(tmp_path / "game"), stdout=io.StringIO())
    written = {p.relative_to(tmp_path / "game").as_posix() for p in (tmp_path / "game").rglob("*") if p.is_file()}
    assert {"answers.csv", "answers.parquet", "results.json", "datapackage.json"} <= written
    assert json.loads((tmp_path / "game" / "results.json").read_text())["answers"] == 20
    assert pd.read_parquet(tmp_path / "game" / "answers.parquet")["correct"].dtype == bool


def test_audit_games_never_count(full_catalog):
    games = played_games(2)
    audit_field = any(field.name == "audit" for field in type(games[0])._meta.get_fields())
    if audit_field:  # the quiz marks the games audit_blinding plays (issue #11)
        type(games[0]).objects.filter(pk=games[0].pk).update(audit=True)
    services.game_stats_refresh()
    result = selectors.game_stats_cached()["result"]
    assert result["games"] == (1 if audit_field else 2)
    assert selectors.game_exposures_frame()["exposures"].sum() == result["answers"]


def test_recompute_now_queues_the_task_after_commit(staff_client, full_catalog, monkeypatch,
                                                    django_capture_on_commit_callbacks):
    from stats import tasks

    played_games(1)
    monkeypatch.setitem(tasks.stats_refresh.app.conf, "task_always_eager", True)  # run it here, not on a broker
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = staff_client.post(reverse("stats:refresh"))
    assert response.status_code == 302 and len(callbacks) == 1
    assert selectors.game_stats_cached()["result"]["answers"] == 10
    assert staff_client.get(reverse("stats:refresh")).status_code == 405  # GET never recomputes


def test_the_export_holds_the_answers_the_cached_statistics_rest_on(tmp_path, full_catalog):
    played_games(2)
    services.game_stats_refresh()
    played_games(1)  # answered after the last refresh: the export must not mix them in
    call_command("export_scores", "--game", "--out", str(tmp_path / "game"), stdout=io.StringIO())
    results = json.loads((tmp_path / "game" / "results.json").read_text())
    answers = pd.read_csv(tmp_path / "game" / "answers.csv")
    assert results["answers"] == len(answers) == 20
