"""Rating writes: revisions, double submits, order rules, locks, best-of curation, bad input."""

from __future__ import annotations

import pytest

from studies import services
from studies.models import Rating, RatingRevision, StudyTile
from tests.studies.conftest import TISSUES, answer_all

pytestmark = pytest.mark.django_db


def _submit(rater, position, **answer):
    answer = {"tissue": TISSUES[0], "quality": 3, "artifacts": "no", **answer}
    return services.rating_submit(token=rater.token, position=position, **answer)


def test_a_changed_answer_keeps_every_revision_and_a_repeated_one_stores_nothing(small_study):
    (rater,) = services.study_invite(study=small_study, n=1)
    assert _submit(rater, 1).changed
    assert not _submit(rater, 1).changed  # a double submit
    assert _submit(rater, 1, quality=4).changed
    rating = Rating.objects.get(item__rater=rater, item__position=1)
    assert rating.quality == 4 and rating.revisions == 2
    assert list(RatingRevision.objects.filter(rating=rating).values_list("number", "quality")) == [(1, 3), (2, 4)]
    rater.refresh_from_db()
    assert rater.next_position == 2


def test_only_the_current_or_an_earlier_item_can_be_answered(small_study):
    (rater,) = services.study_invite(study=small_study, n=1)
    with pytest.raises(services.NotFound):
        _submit(rater, 2)
    _submit(rater, 1)
    _submit(rater, 2)
    for position in (0, 4, 21, -1):
        with pytest.raises(services.NotFound):
            _submit(rater, position)
    assert Rating.objects.filter(item__rater=rater).count() == 2


@pytest.mark.parametrize(("answer", "field"), [
    ({"quality": 0}, "quality"), ({"quality": 6}, "quality"), ({"quality": "x"}, "quality"),
    ({"quality": None}, "quality"), ({"tissue": "Colon"}, "tissue"), ({"tissue": ""}, "tissue"),
    ({"artifacts": "maybe"}, "artifacts"), ({"artifacts": ""}, "artifacts"), ({"comment": "x" * 2001}, "comment"),
])
def test_bad_answers_name_the_field_and_store_nothing(small_study, answer, field):
    (rater,) = services.study_invite(study=small_study, n=1)
    with pytest.raises(services.AnswerInvalid) as refusal:
        _submit(rater, 1, **answer)
    assert set(refusal.value.errors) == {field}
    assert not Rating.objects.exists()


def test_finishing_locks_the_ratings_and_needs_every_item(small_study):
    (rater,) = services.study_invite(study=small_study, n=1)
    answer_all(rater, upto=5)
    with pytest.raises(services.StudyError, match="15 items are still unanswered"):
        services.rater_finish(token=rater.token)
    answer_all(rater)
    services.rater_finish(token=rater.token)
    with pytest.raises(services.Locked):
        _submit(rater, 3, quality=5)
    assert not Rating.objects.filter(quality=5).exists()


def test_a_revoked_link_and_a_closed_study_take_no_answers(small_study):
    a, b = services.study_invite(study=small_study, n=2)
    services.rater_revoke(rater=a)
    with pytest.raises(services.NotFound):
        _submit(a, 1)
    services.study_set_status(study=small_study, status="closed")
    with pytest.raises(services.Locked):
        _submit(b, 1)
    with pytest.raises(services.StudyError, match="closed"):
        services.study_invite(study=small_study, n=1)


def test_best_of_curation_records_who_picked_what_and_only_then_invites(study_catalog, django_user_model):
    curator = django_user_model.objects.create_user("curator", is_staff=True)
    study = services.study_create(name="best", tissues=TISSUES, per_cell=2, selection="best-of", candidates=5,
                                  seed=3)
    assert study.tiles.count() == 30 and not study.tiles.filter(included=True).exists()
    with pytest.raises(services.StudyError, match="curation page"):
        services.study_invite(study=study, n=1)
    picks = [t.code for s in study.sources for t_ in [TISSUES]
             for tissue in t_ for t in study.tiles.filter(source=s, tissue=tissue).order_by("code")[:2]]
    with pytest.raises(services.StudyError, match=r"exactly 2 a cell; picked \(real, Lung\): 1"):
        services.study_curate(study=study, picked_codes=picks[1:], by=curator)

    services.study_curate(study=study, picked_codes=picks, by=curator)

    study.refresh_from_db()
    assert study.curated_by == curator and study.curated_at is not None
    picked = StudyTile.objects.filter(study=study, included=True)
    assert sorted(picked.values_list("code", flat=True)) == sorted(picks)
    assert set(picked.values_list("picked_by", flat=True)) == {curator.pk}
    assert not StudyTile.objects.filter(study=study, included=False, picked_by__isnull=False).exists()
    (rater,) = services.study_invite(study=study, n=1)
    assert rater.n_items == 12
    with pytest.raises(services.StudyError, match="curated already"):
        services.study_curate(study=study, picked_codes=picks, by=curator)
