"""Bad input to the quiz gets a 4xx that stores nothing: oversized integers, odd digits, shared addresses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from django.test import Client

from quiz import services
from quiz.models import Game, GameRound
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db

OVERSIZED = ["9223372036854775808", str(10**30), "99999", "0", "-1", "007", "٧", " 7", "1_0", "7.0", ""]


def _answered() -> int:
    return GameRound.objects.filter(answered_at__isnull=False).count()


@pytest.mark.parametrize("position", OVERSIZED)
@pytest.mark.parametrize("real_token", [True, False], ids=["real-token", "made-up-token"])
def test_an_answer_naming_an_impossible_tile_is_a_400_before_any_query(client, full_catalog, position, real_token):
    game = services.game_start(session_key="s")
    token = game.token if real_token else "made-up-token"
    response = client.post(f"/play/{token}/answer", {"position": position, "answer": "real", "confidence": "sure"},
                           HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "That answer names no tile."
    assert _answered() == 0


def test_the_answer_service_itself_refuses_an_out_of_range_position(full_catalog):
    game = services.game_start(session_key="s")
    with pytest.raises(services.GameNotFound, match="no tile"):
        services.quiz_answer_submit(game_token=game.token, position=2**63, answer="real", confidence="sure")
    assert _answered() == 0


@pytest.mark.parametrize("position", ["9223372036854775808", str(10**30), "0", "007", "-1", "10000"])
def test_a_tile_url_with_an_impossible_position_is_a_404(client, full_catalog, position):
    game = services.game_start(session_key="s")
    for prefix in (f"/play/{game.token}", f"/r/{game.share_token}", "/play/made-up", "/r/made-up"):
        assert client.get(f"{prefix}/tile/{position}.jpg").status_code == 404


@pytest.mark.parametrize("token", ["a%00b", "%C3%A9t%C3%A9", "a.b", "x" * 44])
def test_a_token_that_no_game_could_have_is_a_404(client, full_catalog, token):
    for path in (f"/play/{token}/", f"/play/{token}/results", f"/play/{token}/tile/1.jpg", f"/r/{token}/"):
        assert client.get(path).status_code == 404
    assert client.post(f"/play/{token}/answer", {"position": "1"}).status_code == 404


@pytest.mark.parametrize(("typed", "stored"), [
    ("a\nb", "a b"), ("a\tb", "a b"), ("a\r\n\tb", "a b"), ("\ta\n", "a"), ("a\u200bb", "ab"),
])
def test_a_nickname_keeps_words_apart_when_they_are_split_by_tabs_or_newlines(full_catalog, typed, stored):
    assert services.nickname_normalize(typed) == stored
    client = Client()
    assert client.post("/play/", {"nickname": typed}).status_code == 302
    assert Game.objects.get().nickname == stored


def test_a_nickname_with_a_nul_byte_is_refused_by_the_form_and_dropped_by_the_service(full_catalog):
    assert services.nickname_normalize("a\x00b") == "ab"
    assert Client().post("/play/", {"nickname": "a\x00b"}).status_code == 400
    assert not Game.objects.exists()


def _first_time_game(address: str) -> int:
    """A browser that has never been here: it opens the home page, then presses Start."""
    browser = Client(enforce_csrf_checks=True, REMOTE_ADDR=address)
    home = browser.get("/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', home.content.decode()).group(1)
    assert "sessionid" not in browser.cookies  # the home page creates no session
    return browser.post("/play/", {"nickname": "", "csrfmiddlewaretoken": token}).status_code


def test_thirty_new_players_behind_one_address_all_get_a_game(full_catalog):
    # Default limits: 10 starts per client, 60 per address. Keyed on the session cookie, every first-time
    # browser was the same client and the 11th got a 429.
    codes = [_first_time_game("198.51.100.7") for _ in range(30)]
    assert codes == [302] * 30
    assert Game.objects.count() == 30
    assert len(set(Game.objects.values_list("session_key", flat=True))) == 30


def test_new_players_behind_one_address_still_meet_the_per_address_ceiling(full_catalog, settings):
    settings.RNAGAN_QUIZ_RATE_LIMITS = {"start": {"client": (10, 600), "ip": (5, 600)}}
    codes = [_first_time_game("198.51.100.8") for _ in range(7)]
    assert codes == [302] * 5 + [429] * 2
    assert _first_time_game("198.51.100.9") == 302  # another address is another budget


def test_one_browser_still_meets_its_own_start_limit(full_catalog, settings):
    settings.RNAGAN_QUIZ_RATE_LIMITS = {"start": {"client": (3, 600), "ip": (60, 600)}}
    browser = Client(REMOTE_ADDR="198.51.100.10")
    browser.get("/")
    codes = [browser.post("/play/", {"nickname": ""}).status_code for _ in range(4)]
    assert codes == [302, 302, 302, 429]


_SQLITE_SCRIPT = r"""
import json, django
django.setup()
from django.core.management import call_command
from django.test import Client
call_command("migrate", verbosity=0)
client = Client(raise_request_exception=False)
statuses = {}
for position in ("9223372036854775808", str(10**30)):
    for token in ("made-up-token", "x" * 32):
        statuses[f"answer {token} {position}"] = client.post(
            f"/play/{token}/answer", {"position": position, "answer": "real", "confidence": "sure"}).status_code
        statuses[f"tile {token} {position}"] = client.get(f"/play/{token}/tile/{position}.jpg").status_code
        statuses[f"shared {token} {position}"] = client.get(f"/r/{token}/tile/{position}.jpg").status_code
print(json.dumps(statuses))
"""


def test_on_sqlite_the_default_database_oversized_integers_are_no_500(tmp_path):
    # PostgreSQL's driver sends an oversized int as numeric and finds no row; SQLite's cannot bind it at
    # all (OverflowError, a 500). The site's default database is SQLite, so this runs there for real.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test", "RNAGAN_VAR_DIR": str(tmp_path),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
           "CACHE_URL": f"file://{tmp_path / 'cache'}"}
    result = subprocess.run([sys.executable, "-c", _SQLITE_SCRIPT], env=env, capture_output=True, text=True,
                            timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    statuses = json.loads(result.stdout.strip().splitlines()[-1])
    assert {key: code for key, code in statuses.items() if code >= 500} == {}
    assert all(code == 400 for key, code in statuses.items() if key.startswith("answer"))
    assert all(code == 404 for key, code in statuses.items() if not key.startswith("answer"))
