"""Starting games and answering are rate-limited per client (IP + session) and per IP, in the shared cache."""

from __future__ import annotations

import pytest
from django.test import Client

from quiz import services
from quiz.models import Game

pytestmark = pytest.mark.django_db


def _answer(client: Client, game: Game, position: int, **extra):
    return client.post(f"/play/{game.token}/answer", {"position": position, "answer": "real",
                                                      "confidence": "sure"}, **extra)


@pytest.mark.parametrize("backend", ["redis", "locmem"])
def test_a_client_answering_too_fast_gets_a_friendly_429_and_nothing_is_stored(full_catalog, settings, backend):
    # Redis (production and these tests) counts in one pipelined round trip; other caches (the demo's
    # file cache) through Django's cache API.
    if backend == "locmem":
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.RNAGAN_QUIZ_RATE_LIMITS = {"answer": {"client": (3, 60)}}
    game = services.game_start(session_key="s")
    client = Client()
    client.cookies["sessionid"] = "player-one"
    assert [_answer(client, game, p).status_code for p in (1, 2, 3)] == [302, 302, 302]
    page = _answer(client, game, 4)
    assert page.status_code == 429
    assert "Slow down" in page.content.decode() and 0 < int(page["Retry-After"]) <= 61
    as_json = _answer(client, game, 4, HTTP_ACCEPT="application/json")
    assert as_json.status_code == 429 and "try again" in as_json.json()["error"]
    assert game.rounds.filter(answered_at__isnull=False).count() == 3
    # Another browser behind the same address has its own client allowance.
    other = Client()
    other.cookies["sessionid"] = "player-two"
    assert _answer(other, game, 4).status_code == 302


def test_clearing_cookies_does_not_escape_the_per_address_limit(full_catalog, settings):
    settings.RNAGAN_QUIZ_RATE_LIMITS = {"answer": {"client": (100, 60), "ip": (2, 60)}}
    game = services.game_start(session_key="s")
    codes = []
    for position in (1, 2, 3):
        client = Client()
        client.cookies["sessionid"] = f"fresh-{position}"
        codes.append(_answer(client, game, position).status_code)
    assert codes == [302, 302, 429]


def test_starting_games_is_limited_too(full_catalog, settings):
    settings.RNAGAN_QUIZ_RATE_LIMITS = {"start": {"client": (2, 600)}}
    # A script that never keeps its cookies is one client: its address with no session.
    codes = [Client().post("/play/", {"nickname": ""}).status_code for _ in range(3)]
    assert codes == [302, 302, 429]
    assert Game.objects.count() == 2
    settings.RNAGAN_QUIZ_RATE_LIMITS = {"start": {"client": (100, 600), "ip": (3, 600)}}
    browser = Client()
    browser.cookies["sessionid"] = "somebody"
    assert browser.post("/play/", {"nickname": ""}).status_code == 429  # the address used up its 3


def test_reading_pages_is_never_limited(full_catalog, settings):
    settings.RNAGAN_QUIZ_RATE_LIMITS = {"answer": {"client": (1, 60), "ip": (1, 60)}}
    game = services.game_start(session_key="s")
    client = Client()
    assert all(client.get(f"/play/{game.token}/").status_code == 200 for _ in range(5))


def test_behind_a_proxy_the_configured_header_names_the_client(full_catalog, settings):
    settings.RNAGAN_QUIZ_RATE_LIMITS = {"answer": {"client": (100, 60), "ip": (1, 60)}}
    settings.RNAGAN_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    game = services.game_start(session_key="s")
    first = _answer(Client(), game, 1, HTTP_X_FORWARDED_FOR="spoofed, 203.0.113.7")
    second = _answer(Client(), game, 2, HTTP_X_FORWARDED_FOR="203.0.113.8")
    third = _answer(Client(), game, 3, HTTP_X_FORWARDED_FOR="203.0.113.8")
    assert (first.status_code, second.status_code, third.status_code) == (302, 302, 429)
