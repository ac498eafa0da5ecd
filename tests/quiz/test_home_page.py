"""The home page renders in real headless Chromium."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_home_page_renders_and_says_what_the_site_is(page, live_server):
    response = page.goto(live_server.url + "/")
    assert response is not None and response.status == 200
    assert "RNA-GAN" in page.title()
    heading = page.locator("h1")
    assert heading.inner_text() == "Can you tell real tissue from synthetic?"
    # The stylesheet loaded: the header has the card background, not the browser default.
    background = page.eval_on_selector(".site-header", "el => getComputedStyle(el).backgroundColor")
    assert background == "rgb(255, 255, 255)"
    assert page.locator(".card").count() == 3


def test_home_page_fits_a_phone(browser, live_server):
    context = browser.new_context(viewport={"width": 375, "height": 740})
    page = context.new_page()
    page.goto(live_server.url + "/")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    context.close()
    assert overflow <= 0


def test_health_endpoint_checks_the_database(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
