"""The whole analysis of a study or of the game, as one JSON-ready dict the page, exports and command share."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from stats.analysis import agreement, game, ratings, schema
from stats.analysis.mixed import mixed_model_tests

FORMAT = "rnagan-stats/1"


def jsonable(value):
    """Plain JSON types; NaN and infinities become None (a record's `note` says why)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, pd.DataFrame):
        return jsonable(value.astype(object).where(value.notna(), None).to_dict(orient="records"))
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    return value


def tile_summary(ratings_frame: pd.DataFrame) -> pd.DataFrame:
    first = ratings.first_presentations(ratings_frame).assign(
        right=lambda f: (f["tissue_answer"].str.lower() == f["tissue"].str.lower()).astype(float),
        artifact=lambda f: f["artifacts"].astype(float), q=lambda f: f["quality"].astype(float))
    return (first.groupby("tile", observed=True)
            .agg(source=("source", "first"), tissue=("tissue", "first"), ratings=("q", "size"),
                 mean_quality=("q", "mean"), sd_quality=("q", "std"), tissue_accuracy=("right", "mean"),
                 artifact_rate=("artifact", "mean"))
            .reset_index())


def analyse_study(ratings_frame: pd.DataFrame, raters: pd.DataFrame | None = None, *,
                  name: str = "", file: str = "ratings") -> dict:
    """Everything about one study's ratings. `ratings_frame` is checked against schema.RATINGS first."""
    frame = schema.validate(ratings_frame, schema.RATINGS, file=file)
    if raters is not None:
        raters = schema.validate(raters, schema.RATERS, file=f"{file} (raters)")
    per_rater = ratings.per_rater(frame)
    paired, notices = ratings.paired_tests(per_rater)
    mixed, components = mixed_model_tests(frame)
    tests = paired + mixed
    ratings.holm(tests)
    n_raters = int(frame["rater"].nunique())
    if n_raters < 2:
        notices.insert(0, f"only one rater ({frame['rater'].iloc[0]}) in {file}: the paired tests, the mixed "
                          "model and agreement need at least two")
    return jsonable({
        "format": FORMAT, "kind": "study", "name": name,
        "computed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "ratings": int(len(frame)), "first_presentations": int((~frame["is_repeat"]).sum()),
        "raters": n_raters, "tiles": int(frame["tile"].nunique()),
        "tests": tests, "holm_family": "each test separately, over every tissue × comparison",
        "per_rater": per_rater, "summary": ratings.source_summary(frame, per_rater),
        "variance_components": components,
        "agreement": agreement.agreement(frame), "test_retest": agreement.retest_agreement(frame),
        "time_per_item": ratings.time_per_item(frame), "debrief": ratings.debrief(per_rater, raters),
        "tile_summary": tile_summary(frame), "warnings": notices,
    })


def analyse_game(answers: pd.DataFrame, exposures: pd.DataFrame | None = None,
                 study_tiles: pd.DataFrame | None = None, *, min_answers: int = game.MIN_ANSWERS_PER_TILE) -> dict:
    """Everything about the game's answered rounds (audit games already left out by the caller)."""
    tiles = game.tile_summary(answers, exposures, min_answers)
    counted = tiles.dropna(subset=["fool_rate"])
    return jsonable({
        "format": FORMAT, "kind": "game", "computed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "answers": int(len(answers)), "players": int(answers["player"].nunique()),
        "games": int(answers["game"].nunique()), "tiles": int(answers["tile"].nunique()),
        "accuracy": game.accuracy_against_chance(answers),
        "by_source": game.accuracy_by(answers, "source"), "by_tissue": game.accuracy_by(answers, "tissue"),
        "signal_detection": game.signal_detection(answers), "roc": game.roc(answers),
        "learning": game.learning(answers),
        "tile_fool_rate": {"min_answers": min_answers, "tiles_counted": int(len(counted)),
                           "most_fooling": counted.sort_values(["fool_rate", "answers"], ascending=False)
                           .head(10)[["tile", "source", "tissue", "answers", "fool_rate"]]},
        "exposures": {"tiles": int(len(tiles)), "mean": float(tiles["exposures"].mean()) if len(tiles) else None,
                      "max": int(tiles["exposures"].max()) if len(tiles) else None},
        "crowd_vs_experts": game.crowd_vs_experts(tiles, study_tiles),
    })
