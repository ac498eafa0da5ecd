"""The three frames the statistics build on: exact columns, one row each, the right types."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from studies import selectors, services
from studies.models import RatingRevision
from tests.studies.conftest import TISSUES, answer_all

pytestmark = pytest.mark.django_db


def test_ratings_frame_has_one_row_per_current_rating_with_revisions_counted(small_study):
    first, second = services.study_invite(study=small_study, n=2, labels=["Dr A"])
    answer_all(first, upto=3)
    services.rating_submit(token=first.token, position=2, tissue=TISSUES[1], quality=5, artifacts="yes",
                           active_seconds=4.5)

    frame = selectors.study_ratings_frame(study=small_study)

    assert list(frame.columns) == selectors.RATINGS_COLUMNS
    assert len(frame) == 3 and set(frame["rater"]) == {"R01"}
    row = frame.set_index("position").loc[2]
    assert (row["quality"], row["artifacts"], row["tissue_answer"], row["revisions"]) == (5, True, TISSUES[1], 2)
    assert frame.set_index("position").loc[1, "revisions"] == 1
    assert math.isnan(frame.set_index("position").loc[1, "active_seconds"])
    assert str(frame["answered_at"].dtype) == "datetime64[ns, UTC]"
    assert frame["quality"].dtype == "int64" and frame["is_repeat"].dtype == bool
    assert (frame["seconds"] >= 0).all()
    assert RatingRevision.objects.filter(rating__item__rater=first).count() == 4
    tiles = selectors.study_tiles_frame(study=small_study).set_index("tile")
    assert set(frame["tile"]) <= set(tiles.index)
    assert (frame.set_index("tile")["source"] == tiles.loc[frame["tile"], "source"].values).all()


def test_empty_frames_keep_their_columns(small_study):
    assert list(selectors.study_ratings_frame(study=small_study).columns) == selectors.RATINGS_COLUMNS
    raters = selectors.study_raters_frame(study=small_study)
    assert list(raters.columns) == selectors.RATERS_COLUMNS and raters.empty


def test_tiles_frame_describes_every_study_tile_with_its_provenance(small_study):
    frame = selectors.study_tiles_frame(study=small_study)

    assert list(frame.columns) == selectors.TILES_COLUMNS
    assert len(frame) == 18
    assert frame.groupby(["source", "tissue"]).size().eq(3).all()
    synthetic = frame[frame["source"] != "real"]
    real = frame[frame["source"] == "real"]
    assert (synthetic["checkpoint"] != "").all() and (synthetic["generator_config_hash"].str.len() == 64).all()
    assert (real["checkpoint"] == "").all() and (real["generator_config_hash"] == "").all()
    assert set(frame["selection"]) == {"random"}
    assert str(frame["seed"].dtype) == "Int64" and not frame["is_anchor"].any()


def test_raters_frame_reports_progress_profile_and_debrief(small_study):
    first, second = services.study_invite(study=small_study, n=2, labels=["Dr A"])
    services.rater_profile_save(rater=first, specialty="neuropathology", years_in_practice=12)
    answer_all(first)
    services.rater_finish(token=first.token)
    first.refresh_from_db()
    services.rater_debrief_save(rater=first, suspected="unsure", giveaway="too smooth")

    frame = selectors.study_raters_frame(study=small_study).set_index("rater")

    assert list(frame.reset_index().columns) == selectors.RATERS_COLUMNS
    a, b = frame.loc["R01"], frame.loc["R02"]
    assert (a["label"], a["specialty"], a["years_in_practice"]) == ("Dr A", "neuropathology", 12)
    assert a["assigned"] == a["answered"] == 20
    assert a["suspected_synthetic"] == "unsure" and a["giveaway"] == "too smooth"
    assert isinstance(a["finished_at"], pd.Timestamp) and a["finished_at"].tzinfo is not None
    assert (b["answered"], b["suspected_synthetic"], b["giveaway"]) == (0, None, "")
    assert pd.isna(b["finished_at"]) and pd.isna(b["years_in_practice"])
