"""Real Chromium: a rater does a whole study by keyboard, closes the browser halfway and resumes, changes an
earlier answer, and meets the debrief only at the end; nothing received before it names a source."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from studies import services
from studies.models import Rating, RatingRevision
from tests.studies.test_views import LEAKS
from tests.support.jpeg import searchable

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _recorder(log: list[bytes]):
    def record(response):
        try:
            body = response.body()
        except Exception:  # noqa: BLE001 - redirects have no body
            body = b""
        head = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        log.append(f"{response.url}\n{head}\n".encode() + searchable(body, response.headers.get("content-type", "")))
    return record


def _answer_by_keys(page, *, quality: str, artifacts: str = "N"):
    expect(page.locator("[data-rating-form][data-keys=ready]")).to_have_count(1)
    page.keyboard.press("L")  # Lung
    page.keyboard.press(quality)
    page.keyboard.press(artifacts)
    page.keyboard.press("Enter")


def test_a_rater_completes_the_study_by_keyboard_resumes_and_revises(browser, live_server, small_study):
    (rater,) = services.study_invite(study=small_study, n=1)
    link = f"{live_server.url}/s/{rater.token}/"
    received: list[bytes] = []

    context = browser.new_context()
    page = context.new_page()
    page.on("response", _recorder(received))
    page.goto(link)
    expect(page.locator("input[name=specialty]")).to_be_focused()  # autofocus, once the page has loaded
    page.keyboard.type("neuropathology")
    page.keyboard.press("Tab")
    page.keyboard.type("9")
    page.keyboard.press("Enter")
    for position in range(1, 9):
        expect(page.locator("[data-position]")).to_have_text(f"Item {position} of 20")
        expect(page.locator("img[data-tile]")).to_have_attribute("alt", f"Tile for item {position} of 20")
        page.wait_for_function("document.querySelector('img[data-tile]').complete")
        size = page.evaluate("document.querySelector('img[data-tile]').naturalWidth")
        assert size == small_study.tile_width == page.evaluate(  # shown 1:1
            "document.querySelector('img[data-tile]').getBoundingClientRect().width")
        _answer_by_keys(page, quality=str(1 + position % 5))
    expect(page.locator("[data-position]")).to_have_text("Item 9 of 20")
    context.close()  # the browser goes away halfway

    context = browser.new_context()
    page = context.new_page()
    page.on("response", _recorder(received))
    page.goto(link)
    expect(page.locator("[data-position]")).to_have_text("Item 9 of 20")  # resumed at the first unanswered
    page.click("text=Previous item")
    expect(page.locator("[data-position]")).to_have_text("Item 8 of 20")
    expect(page.locator("input[name=quality][value='4']")).to_be_checked()
    expect(page.locator("[data-rating-form][data-keys=ready]")).to_have_count(1)
    page.keyboard.press("Z")
    assert page.evaluate("document.querySelector('img[data-tile]').getBoundingClientRect().width") == 2 * size
    _answer_by_keys(page, quality="2", artifacts="Y")  # changed: a second revision
    for position in range(9, 21):
        expect(page.locator("[data-position]")).to_have_text(f"Item {position} of 20")
        assert page.locator("text=computer-generated").count() == 0
        _answer_by_keys(page, quality="4")
    expect(page.locator("h1")).to_have_text("All 20 items answered")
    for blob in received:
        assert LEAKS.search(blob) is None, (LEAKS.search(blob), blob[:200])

    page.keyboard.press("Enter")  # Finish (autofocus)
    expect(page.locator("text=computer-generated").first).to_be_visible()
    page.check("input[name=suspected][value=unsure]")
    page.fill("textarea[name=giveaway]", "blurry nuclei")
    page.click("text=Send")
    expect(page.locator("[data-debrief-done]")).to_be_visible()
    context.close()

    ratings = Rating.objects.filter(item__rater=rater)
    assert ratings.count() == 20
    eighth = ratings.get(item__position=8)
    assert (eighth.quality, eighth.artifacts, eighth.revisions) == (2, True, 2)
    assert list(RatingRevision.objects.filter(rating=eighth).values_list("quality", flat=True)) == [4, 2]
    assert all(r.active_seconds is not None and r.active_seconds >= 0 for r in ratings)
    rater.refresh_from_db()
    assert rater.finished_at is not None and rater.suspected_synthetic == "unsure"
    assert (rater.specialty, rater.years_in_practice) == ("neuropathology", 9)
    assert re.fullmatch(r"[0-9a-f]{48}", rater.token)


def test_without_javascript_on_a_tablet_the_form_saves_and_the_2x_view_works(browser, live_server, small_study):
    (rater,) = services.study_invite(study=small_study, n=1)
    context = browser.new_context(java_script_enabled=False, viewport={"width": 768, "height": 1024},
                                  has_touch=True)
    page = context.new_page()
    page.goto(f"{live_server.url}/s/{rater.token}/")
    page.tap("text=Start")
    expect(page.locator("[data-position]")).to_have_text("Item 1 of 20")
    width = "document.querySelector('img[data-tile]').getBoundingClientRect().width"
    assert page.evaluate(width) == small_study.tile_width
    page.tap("text=2× view")  # a CSS-only toggle
    assert page.evaluate(width) == 2 * small_study.tile_width
    page.tap("text=Brain - Cortex")
    page.tap("text=very good")
    page.tap("label:has-text('Yes')")
    page.tap("text=Save and go on")
    expect(page.locator("[data-position]")).to_have_text("Item 2 of 20")
    page.tap("text=Save and go on")  # nothing chosen: three errors, nothing stored
    expect(page.locator("[role=alert]")).to_have_count(3)
    context.close()
    rating = Rating.objects.get(item__rater=rater)
    assert (rating.item.position, rating.tissue_answer, rating.quality, rating.artifacts) == (1, "Brain - Cortex", 5, True)
    assert rating.active_seconds is None
