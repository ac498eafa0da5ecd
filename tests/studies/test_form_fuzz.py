"""Whatever a client posts to an item, the form answers 302 (stored) or 400 (errors shown), never a 500,
and stores exactly the valid answers."""

from __future__ import annotations

import math

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studies import services
from studies.models import Rating
from tests.studies.conftest import TISSUES

pytestmark = pytest.mark.django_db

text = st.one_of(st.text(max_size=30), st.sampled_from(["1", "5", "0", "6", "yes", "no", *TISSUES, "", " 3", "\x00", "no\x00"]))
answers = st.fixed_dictionaries({}, optional={
    "tissue": text, "quality": text, "artifacts": text,
    "comment": st.one_of(st.text(max_size=20), st.just("x" * 2001), st.just("a\x00b")),
    "active_seconds": st.one_of(text, st.sampled_from(["nan", "inf", "-1", "1e308", "12.5"])),
})


def _valid(data: dict) -> bool:
    try:
        quality = int(data.get("quality", ""))
    except ValueError:
        return False
    return (data.get("tissue") in TISSUES and 1 <= quality <= 5 and data.get("artifacts") in ("yes", "no")
            and len(data.get("comment", "")) <= 2000 and "\x00" not in data.get("comment", ""))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=answers)
def test_any_post_is_stored_exactly_when_valid_and_never_fails(client, small_study, data):
    rater = small_study.raters.first() or services.study_invite(study=small_study, n=1)[0]
    before = list(Rating.objects.filter(item__rater=rater).values_list("quality", "revisions"))
    response = client.post(reverse("studies:item", kwargs={"token": rater.token, "position": 1}), data)
    stored = Rating.objects.filter(item__rater=rater, item__position=1).first()
    if _valid(data):
        assert response.status_code == 302
        assert (stored.tissue_answer, stored.quality, stored.artifacts) == (
            data["tissue"], int(data["quality"]), data["artifacts"] == "yes")
        if stored.revisions == 1 and stored.active_seconds is not None:
            assert 0 <= stored.active_seconds <= 86400 and math.isfinite(stored.active_seconds)
    else:
        assert response.status_code == 400
        assert list(Rating.objects.filter(item__rater=rater).values_list("quality", "revisions")) == before


@pytest.mark.parametrize("field", ["comment", "tissue", "quality", "artifacts"])
def test_a_nul_character_is_an_error_beside_its_field_not_a_crash(client, small_study, field):
    (rater,) = services.study_invite(study=small_study, n=1)
    data = {"tissue": TISSUES[0], "quality": "3", "artifacts": "no", "comment": "fine"}
    data[field] += "\x00"
    response = client.post(reverse("studies:item", kwargs={"token": rater.token, "position": 1}), data)
    assert response.status_code == 400
    assert not Rating.objects.exists()


def test_nul_in_the_profile_and_the_debrief_is_refused_by_field(client, small_study):
    (rater,) = services.study_invite(study=small_study, n=1)
    welcome = reverse("studies:welcome", kwargs={"token": rater.token})
    response = client.post(welcome, {"specialty": "a\x00"})
    assert response.status_code == 400 and b"specialty" in response.content
    from tests.studies.conftest import answer_all

    answer_all(rater)
    services.rater_finish(token=rater.token)
    debrief = reverse("studies:debrief", kwargs={"token": rater.token})
    response = client.post(debrief, {"suspected": "no", "giveaway": "x\x00"})
    assert response.status_code == 400 and b"NUL" in response.content
    rater.refresh_from_db()
    assert rater.debriefed_at is None and not rater.profile_done
