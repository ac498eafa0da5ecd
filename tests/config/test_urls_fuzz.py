"""No URL or form of the site answers 5xx, and a 4xx stores nothing, whatever the path and body.

Every route of config.urls is fuzzed (see tests/support/urlfuzz.py): a new app's pages are covered as
soon as they are included there. Give the fuzzer known values for a new app's URL parameters in
`known_values` so it also reaches the code behind a successful lookup.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from quiz import services
from quiz.pool import pool_forget
from tests.quiz.conftest import Catalog, play_through
from tests.support.urlfuzz import (
    HEADERS,
    METHODS,
    bodies,
    check_request,
    form_field_names,
    paths,
    site_routes,
    typical_requests,
)

pytestmark = pytest.mark.django_db
ROUTES = site_routes()
# Django's admin answers an anonymous visitor with a redirect to its login whatever the path: a few
# examples each suffice, and keep the suite inside CI's budget.
ADMIN_EXAMPLES = 3


@pytest.fixture
def site(settings, tmp_path):
    """A playable site: a tile catalog, a game in play, a finished one and an expired one."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"fuzz-{uuid.uuid4().hex}"}}
    unlimited = (10**9, 60)
    settings.RNAGAN_QUIZ_RATE_LIMITS = {"start": {"client": unlimited, "ip": unlimited},
                                        "answer": {"client": unlimited, "ip": unlimited}}
    pool_forget()
    catalog = Catalog(f"tiles/test-fuzz-{uuid.uuid4().hex}")
    catalog.fill(("lung", "colon"), real=10, gan=10, rnagan=10)  # 20 of each: any draw of sources deals
    playing = services.game_start(session_key="fuzz-playing")
    services.quiz_answer_submit(game_token=playing.token, position=1, answer="real", confidence="sure")
    finished = services.game_start(session_key="fuzz-finished")
    play_through(finished)
    expired = services.game_start(session_key="fuzz-expired")
    expired.expires = timezone.now() - timedelta(minutes=1)
    expired.save(update_fields=["expires"])
    games = [playing, finished, expired]
    # The game in play and its next round are listed twice: a valid answer (which stores) comes up often.
    known = {
        "token": [playing.token] + [g.token for g in games],
        "share_token": [g.share_token for g in games],
        "position": ["2", "2", "1", str(playing.n), str(playing.n + 1)],
        "object_id": [str(g.pk) for g in games],
        "answer": ["real", "synthetic"],
        "confidence": ["sure", "unsure"],
    }
    fields = form_field_names(Client(), ["/", f"/play/{playing.token}/", f"/play/{finished.token}/results"])
    yield known, fields
    pool_forget()


def test_the_fuzzer_sees_every_quiz_route_and_form_field(site):
    _known, fields = site
    names = {route.name for route in ROUTES}
    assert {"quiz:home", "quiz:start", "quiz:answer", "quiz:tile", "quiz:shared_tile", "quiz:results"} <= names
    assert {"nickname", "position", "answer", "confidence"} <= set(fields)


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_no_request_to_any_route_answers_5xx_or_stores_anything_with_a_4xx(site, route):
    known, fields = site

    @given(method=st.sampled_from(METHODS), path=paths(route, known), body=bodies(fields, known), headers=HEADERS)
    def one_request(method, path, body, headers):
        check_request(Client(), method, path, body, headers)

    for method, path, body, headers in typical_requests(route, known, fields):
        one_request = example(method=method, path=path, body=body, headers=headers)(one_request)

    if route.name.startswith("admin:") or str(route).startswith("/admin/"):
        one_request = hypothesis_settings(max_examples=ADMIN_EXAMPLES)(one_request)
    one_request()
