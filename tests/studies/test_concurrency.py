"""Simultaneous saves of one item on real PostgreSQL: one rating, one revision, one step forward."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from studies import services
from studies.models import Rating, RatingRevision
from tests.studies.conftest import TISSUES

pytestmark = pytest.mark.django_db(transaction=True)


def test_simultaneous_identical_saves_store_one_rating(small_study):
    (rater,) = services.study_invite(study=small_study, n=1)
    start = threading.Barrier(6)
    outcomes: list[object] = []

    def save():
        try:
            start.wait(10)
            outcomes.append(services.rating_submit(token=rater.token, position=1, tissue=TISSUES[1], quality=4,
                                                   artifacts="yes"))
        except Exception as error:  # noqa: BLE001 - the test inspects what each thread got
            outcomes.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=save) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert all(isinstance(o, services.Saved) for o in outcomes) and len(outcomes) == 6
    assert sum(o.changed for o in outcomes) == 1
    assert Rating.objects.filter(item__rater=rater).count() == 1
    assert RatingRevision.objects.filter(rating__item__rater=rater).count() == 1
    rater.refresh_from_db()
    assert rater.next_position == 2
