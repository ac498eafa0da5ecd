"""The rater's pages over HTTP: the whole flow without JavaScript, bad input, isolation, blinding."""

from __future__ import annotations

import re

import pytest
from django.urls import Resolver404, resolve, reverse

from studies import services
from studies.models import Item, Rating, RatingRevision
from tests.studies.conftest import TISSUES
from tests.support.jpeg import searchable

pytestmark = pytest.mark.django_db

# Whole words only; tokens and item keys are lower-case hex, which cannot spell any of these.
LEAKS = re.compile(rb"(?i)\b(synthetic|gan|rnagan|rna-gan|generated|generator|generative|real|fake|source)\b")
HEX = re.compile(r"^[0-9a-f]+$")


def _item_url(rater, position):
    return reverse("studies:item", kwargs={"token": rater.token, "position": position})


def _answer(client, rater, position, **fields):
    data = {"tissue": TISSUES[0], "quality": "3", "artifacts": "no", **fields}
    return client.post(_item_url(rater, position), data)


def _visible(response) -> bytes:
    """Everything a browser receives: status line, headers and body."""
    head = "\n".join(f"{k}: {v}" for k, v in response.items()).encode()
    body = response.content if not response.streaming else b""
    return head + b"\n" + searchable(body, response.get("Content-Type", ""))


@pytest.fixture
def rater(small_study):
    return services.study_invite(study=small_study, n=1)[0]


def test_a_rater_goes_from_the_link_through_every_item_to_the_debrief_without_javascript(client, rater):
    seen: list[bytes] = []
    welcome = client.get(reverse("studies:welcome", kwargs={"token": rater.token}))
    seen.append(_visible(welcome))
    assert b"machine-learning models" in welcome.content
    response = client.post(reverse("studies:welcome", kwargs={"token": rater.token}),
                           {"specialty": "pathology", "years_in_practice": "7"})
    assert response.url == _item_url(rater, 1)
    for position in range(1, rater.n_items + 1):
        page = client.get(_item_url(rater, position))
        seen.append(_visible(page))
        assert f"Item {position} of 20".encode() in page.content
        image = re.search(rb'<img src="([^"]+)"', page.content).group(1).decode()
        seen.append(_visible(client.get(image)))
        response = _answer(client, rater, position, quality=str(1 + position % 5))
        seen.append(_visible(response))
    assert response.url == reverse("studies:finish", kwargs={"token": rater.token})
    finish = client.get(response.url)
    seen.append(_visible(finish))
    assert b"All 20 items answered" in finish.content

    for blob in seen:
        assert LEAKS.search(blob) is None, LEAKS.search(blob)
    assert HEX.match(rater.token) and len(rater.token) == 48
    assert all(HEX.match(k) for k in Item.objects.filter(rater=rater).values_list("key", flat=True))

    debrief = client.post(finish.request["PATH_INFO"])
    page = client.get(debrief.url)
    assert b"computer-generated" in page.content  # the debrief may name it, and only it
    client.post(debrief.url, {"suspected": "yes", "giveaway": "odd nuclei"})
    rater.refresh_from_db()
    assert (rater.suspected_synthetic, rater.giveaway, rater.specialty, rater.years_in_practice) == (
        "yes", "odd nuclei", "pathology", 7)
    assert Rating.objects.filter(item__rater=rater).count() == 20
    # Locked: a later post changes nothing.
    _answer(client, rater, 3, quality="5", tissue=TISSUES[1])
    assert not Rating.objects.filter(item__rater=rater, tissue_answer=TISSUES[1]).exists()


def test_item_pages_of_a_real_and_a_synthetic_tile_differ_only_in_the_image_key_and_position(client, rater):
    client.post(reverse("studies:welcome", kwargs={"token": rater.token}), {})
    pages, sizes, headers = {}, {}, {}
    for item in Item.objects.filter(rater=rater).select_related("study_tile").order_by("position"):
        page = client.get(_item_url(rater, item.position))
        html = page.content.decode()
        html = html.replace(item.key, "KEY")
        html = re.sub(r"\b(item|Item) \d+ of 20\b", "ITEM", html)
        html = re.sub(r"/item/\d+/", "/item/N/", html)
        html = re.sub(r'value="[\w-]{64}"', 'value="CSRF"', html)
        html = re.sub(r"\d+ answered|max=\"20\" value=\"\d+\">\d+ of 20", "PROGRESS", html)
        pages.setdefault(item.study_tile.source, set()).add(html)
        image = client.get(reverse("studies:tile", kwargs={"token": rater.token, "key": item.key}))
        headers.setdefault(item.study_tile.source, set()).add(
            tuple(sorted((k, v) for k, v in image.items() if k != "ETag")) + (len(image.content),))
        sizes[item.key] = image["ETag"]
        _answer(client, rater, item.position)
    first_page = {p for p in pages["real"] if "Previous item" not in p}
    later = {source: {p for p in found if "Previous item" in p} for source, found in pages.items()}
    assert len(later["real"] | later["gan"] | later["rnagan"]) == 1
    assert len(first_page) <= 1
    assert len(headers["real"] | headers["gan"] | headers["rnagan"]) == 1
    assert len(set(sizes.values())) == 20  # one tag per item, none shared with the tile


def test_bad_answers_show_the_error_beside_the_field_and_store_nothing(client, rater):
    for fields, message in [({"quality": "7"}, b"Choose a quality from 1 to 5."),
                            ({"tissue": "Colon"}, b"Choose one of the tissues offered."),
                            ({"artifacts": ""}, b"Answer yes or no."),
                            ({"comment": "x" * 2001}, b"At most 2,000 characters")]:
        response = _answer(client, rater, 1, **fields)
        assert response.status_code == 400 and message in response.content
    response = client.post(_item_url(rater, 1), {"quality": "3"})
    assert response.status_code == 400 and response.content.count(b'role="alert"') == 2
    assert not Rating.objects.exists()


def test_double_submit_stores_one_rating_and_back_edits_keep_revisions(client, rater):
    assert _answer(client, rater, 1).status_code == 302
    assert _answer(client, rater, 1).status_code == 302
    assert _answer(client, rater, 2).url == _item_url(rater, 3)
    # Going back to item 1 and changing it: two revisions, then on to item 2.
    back = client.get(_item_url(rater, 1))
    assert b'value="3" data-key="3" checked' in back.content
    assert _answer(client, rater, 1, quality="5").url == _item_url(rater, 2)
    assert list(RatingRevision.objects.filter(rating__item__position=1).values_list("quality", flat=True)) == [3, 5]
    assert Rating.objects.count() == 2


def test_an_item_position_past_64_bits_is_a_404_before_any_query():
    # SQLite (the demo's database) cannot bind such an integer: before the converter it was a 500 there.
    with pytest.raises(Resolver404):
        resolve(f"/s/{'a' * 48}/item/{2**64}/")
    assert resolve(f"/s/{'a' * 48}/item/12/").kwargs["position"] == 12


def test_a_tile_that_cannot_be_served_blinded_is_a_404_not_a_500(client, rater, settings):
    _answer_key = Item.objects.get(rater=rater, position=1).key
    url = reverse("studies:tile", kwargs={"token": rater.token, "key": _answer_key})
    client.get(_item_url(rater, 1))
    assert client.get(url).status_code == 200
    settings.RNAGAN_TILE_SERVED_BYTES = 600  # smaller than any tile: TileTooLarge inside the view
    assert client.get(url).status_code == 404


def test_later_items_and_their_images_are_out_of_reach(client, rater):
    assert _answer(client, rater, 5).status_code == 404
    assert client.get(_item_url(rater, 5)).url == _item_url(rater, 1)
    for position in (0, 21, 999999, 10**30):  # past the 5-digit converter, the URL is built by hand
        url = f"/s/{rater.token}/item/{position}/"
        assert client.get(url).status_code == 404
        assert client.post(url, {"tissue": TISSUES[0], "quality": "3", "artifacts": "no"}).status_code == 404
    later = Item.objects.get(rater=rater, position=2)
    url = reverse("studies:tile", kwargs={"token": rater.token, "key": later.key})
    assert client.get(url).status_code == 404
    _answer(client, rater, 1)
    assert client.get(url).status_code == 200
    assert not Rating.objects.filter(item__position=5).exists()


def test_one_raters_token_never_reaches_anothers_items_or_images(client, small_study):
    a, b = services.study_invite(study=small_study, n=2)
    _answer(client, a, 1)
    mine = Item.objects.get(rater=a, position=1)
    theirs_url = reverse("studies:tile", kwargs={"token": b.token, "key": mine.key})
    assert client.get(theirs_url).status_code == 404
    assert client.get(reverse("studies:tile", kwargs={"token": a.token, "key": mine.key})).status_code == 200
    for token in ("0" * 48, a.token[:-1] + "x", "nonsense", a.token[:-1] + "%00", a.token.upper(), a.token + "0"):
        assert client.get(f"/s/{token}/").status_code == 404
        assert client.post(f"/s/{token}/item/1/", {}).status_code == 404
        assert client.get(f"/s/{token}/image/{mine.key}.jpg").status_code == 404
    for key in (mine.key[:-1] + "%00", mine.key.upper(), "x"):
        assert client.get(f"/s/{a.token}/image/{key}.jpg").status_code == 404
    services.rater_revoke(rater=a)
    assert client.get(reverse("studies:welcome", kwargs={"token": a.token})).status_code == 404
    assert client.get(reverse("studies:tile", kwargs={"token": a.token, "key": mine.key})).status_code == 404
    assert Rating.objects.filter(item__rater=b).count() == 0


def test_a_closed_study_shows_a_read_only_thank_you(client, rater, small_study):
    _answer(client, rater, 1)
    services.study_set_status(study=small_study, status="closed")
    page = client.get(_item_url(rater, 1))
    assert page.status_code == 200 and b"This study is closed" in page.content
    assert b"<form" not in page.content
    _answer(client, rater, 1, quality="5")
    assert Rating.objects.get().quality == 3


def test_cover_text_is_markdown_without_raw_html(client, rater, small_study):
    small_study.cover_text = "# Welcome\n\n<script>alert(1)</script> **bold**"
    small_study.save()
    page = client.get(reverse("studies:welcome", kwargs={"token": rater.token}))
    assert b"<h1>Welcome</h1>" in page.content and b"<strong>bold</strong>" in page.content
    assert b"<script>alert" not in page.content and b"&lt;script&gt;" in page.content


def test_staff_pages_need_a_staff_login(client, rater, small_study, django_user_model):
    urls = [reverse("studies:dashboard"), reverse("studies:study_detail", kwargs={"name": small_study.name})]
    for url in urls:
        assert client.get(url).status_code == 302
    client.force_login(django_user_model.objects.create_user("someone"))
    for url in urls:
        assert client.get(url).status_code == 302
    client.force_login(django_user_model.objects.create_user("staff", is_staff=True))
    page = client.get(urls[1])
    assert page.status_code == 200 and rater.token.encode() in page.content and b"0 / 20" in page.content
    client.post(reverse("studies:study_invite", kwargs={"name": small_study.name}), {"n": "2", "labels": "Dr X"})
    assert small_study.raters.filter(label="Dr X").count() == 1 and small_study.raters.count() == 3
    client.post(reverse("studies:study_status", kwargs={"name": small_study.name}), {"status": "closed"})
    small_study.refresh_from_db()
    assert small_study.status == "closed"


def test_curation_page_records_the_staff_members_picks(client, study_catalog, django_user_model):
    study = services.study_create(name="best", tissues=TISSUES, per_cell=1, selection="best-of", candidates=2)
    url = reverse("studies:curate", kwargs={"name": "best"})
    candidate = study.tiles.first()
    image = reverse("studies:candidate_tile", kwargs={"name": "best", "code": candidate.code})
    assert client.get(url).status_code == 302 and client.get(image).status_code == 302  # staff only
    curator = django_user_model.objects.create_user("curator", is_staff=True)
    client.force_login(curator)
    page = client.get(url)
    assert page.status_code == 200 and page.content.count(b'name="pick"') == 12
    assert client.get(image)["Content-Type"] == "image/jpeg"
    refused = client.post(url, {"pick": [candidate.code]})
    assert refused.status_code == 400 and b"pick exactly 1 a cell" in refused.content
    picks = [study.tiles.filter(source=s, tissue=t).first().code for s in study.sources for t in TISSUES]
    assert client.post(url, {"pick": picks}).status_code == 302
    study.refresh_from_db()
    assert study.curated_by == curator
    assert set(study.tiles.filter(included=True).values_list("code", flat=True)) == set(picks)


def test_a_study_is_created_from_the_admin_with_the_same_rules(client, study_catalog, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("admin", password="x"))
    url = reverse("admin:studies_study_add")
    form = {"name": "from-admin", "tissues": "Lung, Brain - Cortex", "sources": ["real", "gan", "rnagan"],
            "per_cell": "2", "selection": "random", "anchors": "0", "min_raters": "1", "repeats": "0",
            "cover_text": "Please rate.", "debrief": "on"}
    assert client.get(url).status_code == 200
    refused = client.post(url, {**form, "per_cell": "50"})
    assert refused.status_code == 200 and b"the catalog has 8 active tiles, 50 needed" in refused.content
    assert client.post(url, form).status_code == 302
    from studies.models import Study

    study = Study.objects.get(name="from-admin")
    assert study.tissues == list(TISSUES) and study.tiles.count() == 12 and study.cover_text == "Please rate."
    assert study.created_by.username == "admin"
    assert client.get(reverse("admin:studies_study_change", args=[study.pk])).status_code == 200


def test_without_a_debrief_the_end_is_a_plain_thank_you(client, study_catalog):
    study = services.study_create(name="quiet", tissues=TISSUES, per_cell=1, debrief=False)
    (rater,) = services.study_invite(study=study, n=1)
    for position in range(1, rater.n_items + 1):
        _answer(client, rater, position)
    end = client.post(reverse("studies:finish", kwargs={"token": rater.token}))
    page = client.get(end.url)
    assert b"Thank you" in page.content and LEAKS.search(page.content) is None
    assert b"computer-generated" not in page.content
    assert client.post(end.url, {"suspected": "yes"}).status_code == 200
    rater.refresh_from_db()
    assert rater.finished_at is not None and rater.suspected_synthetic == ""
