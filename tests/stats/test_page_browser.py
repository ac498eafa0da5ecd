"""Real Chromium reads the statistics page of a finished study and played games: no JavaScript needed."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from stats import services
from studies import services as study_services
from tests.stats.test_game_page import played_games
from tests.stats.test_study_side import TISSUES, rate_everything

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_staff_reads_the_page_with_a_finished_study_and_games(page, live_server, catalog, django_user_model):
    catalog.fill(TISSUES, real=10, gan=6, rnagan=6)
    study = study_services.study_create(name="finished", tissues=TISSUES, per_cell=3, anchors=4, repeats=2, seed=3)
    rate_everything(study)
    study_services.study_set_status(study=study, status="closed")
    played_games(6)
    services.stats_refresh_all()
    django_user_model.objects.create_user("curator", password="pw-curator-1", is_staff=True)

    page.context.set_extra_http_headers({})
    page.goto(live_server.url + "/stats/")
    page.fill("input[name=username]", "curator")
    page.fill("input[name=password]", "pw-curator-1")
    page.click("input[type=submit]")
    expect(page.locator("h1")).to_have_text("Statistics")
    expect(page.locator("#game .stats-meta").first).to_contain_text("60 answers by 6 players in 6 games")
    expect(page.locator("#game figure svg")).to_have_count(2)
    expect(page.locator("#game figcaption").first).to_contain_text("60 answers")
    section = page.locator("#study-finished")
    expect(section.locator("figure svg")).to_have_count(2)
    expect(section.locator("table").nth(1)).to_contain_text("paired t, one-sided")
    expect(section.locator("table").nth(1)).to_contain_text("mixed model")
    assert "NaN" not in page.content() and "nan" not in section.inner_text()

    page.click("#study-finished >> text=own page, publish switch")
    page.click("text=Publish read-only")
    expect(page.locator(".stats-meta").first).to_contain_text("published read-only")

    anonymous = page.context.browser.new_context().new_page()
    anonymous.goto(live_server.url + "/stats/study/finished/")
    expect(anonymous.locator("h1")).to_contain_text("Rating study finished")
    expect(anonymous.locator("figure svg")).to_have_count(2)
    expect(anonymous.locator("text=Publish read-only")).to_have_count(0)
    anonymous.goto(live_server.url + "/stats/")
    expect(anonymous.locator("input[name=username]")).to_be_visible()  # the overview stays staff-only
    anonymous.context.close()
