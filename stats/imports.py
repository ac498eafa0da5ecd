"""Ratings collected elsewhere (on paper, in another tool, or a study's own export) loaded into a study.

The file's `tile` column names the study's tile codes (the names its exports and printed sheets use) and
`rater` the rater codes; raters that the study does not have yet are created, finished and without a link.
"""

from __future__ import annotations

import pandas as pd
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from stats.analysis import schema
from studies.models import Item, Rater, Rating, RatingRevision, Study

DEBRIEF = {"yes", "no", "unsure"}


def _row(frame: pd.DataFrame, index) -> int:
    return int(index) + 1


def _check_against_study(frame: pd.DataFrame, study: Study, file: str) -> dict[str, object]:
    tiles = {t.code: t for t in study.tiles.filter(included=True)}
    unknown = ~frame["tile"].isin(list(tiles))
    if unknown.any():
        index = unknown.idxmax()
        raise schema.AnalysisInputError(f"{frame.loc[index, 'tile']!r} is not a tile of study {study.name}",
                                        file=file, row=_row(frame, index), column="tile")
    for column in ("source", "tissue"):
        truth = frame["tile"].map({code: getattr(t, column) for code, t in tiles.items()})
        wrong = frame[column] != truth
        if wrong.any():
            index = wrong.idxmax()
            raise schema.AnalysisInputError(
                f"{frame.loc[index, column]!r} disagrees with the study, where {frame.loc[index, 'tile']} is "
                f"{truth[index]!r}", file=file, row=_row(frame, index), column=column)
    return tiles


def _positions(group: pd.DataFrame, file: str) -> pd.Series:
    if group["position"].notna().all():
        positions = group["position"].astype(int)
        duplicated = positions.duplicated()
        if duplicated.any():
            index = duplicated.idxmax()
            raise schema.AnalysisInputError(f"rater {group.loc[index, 'rater']} has position {positions[index]} twice",
                                            file=file, row=_row(group, index), column="position")
        return positions
    return pd.Series(range(1, len(group) + 1), index=group.index)  # the file's order is the rater's order


def study_ratings_import(*, study: Study, ratings: pd.DataFrame, raters: pd.DataFrame | None = None,
                         file: str = "ratings") -> int:
    """Load checked ratings (schema.RATINGS) into `study`, all or nothing; returns the number loaded.

    Refuses a rater who already has ratings in the study, so importing a file twice cannot double it.
    """
    frame = schema.validate(ratings, schema.RATINGS, file=file)
    if raters is not None:
        raters = schema.validate(raters, schema.RATERS, file=f"{file} (raters)").set_index("rater")
    now = timezone.now()
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        tiles = _check_against_study(frame, study, file)
        existing = {r.code: r for r in study.raters.all()}
        next_index = (study.raters.aggregate(n=Max("index"))["n"] or -1) + 1
        loaded = 0
        for code, group in frame.groupby("rater", sort=True):
            rater = existing.get(code)
            if rater is not None and rater.items.filter(rating__isnull=False).exists():
                raise schema.AnalysisInputError(f"rater {code} already has ratings in study {study.name}",
                                                file=file, row=_row(frame, group.index[0]), column="rater")
            repeated = group.duplicated(["tile", "is_repeat"])
            if repeated.any():
                index = repeated.idxmax()
                raise schema.AnalysisInputError(f"rater {code} rates tile {group.loc[index, 'tile']} twice "
                                                "(mark the second showing is_repeat)", file=file,
                                                row=_row(frame, index), column="tile")
            profile = raters.loc[code] if raters is not None and code in raters.index else None
            if rater is not None:
                rater.items.all().delete()  # an invited rater who never answered: the file's order replaces theirs
                Rater.objects.filter(pk=rater.pk).update(n_items=len(group), next_position=len(group) + 1,
                                                         finished_at=rater.finished_at or now)
            else:
                rater = Rater.objects.create(
                    study=study, code=code, index=next_index, n_items=len(group), next_position=len(group) + 1,
                    finished_at=now if profile is None or pd.isna(profile["finished_at"]) else profile["finished_at"],
                    revoked_at=now,  # no link: an imported rater never answers through the site
                    specialty="" if profile is None or pd.isna(profile["specialty"]) else profile["specialty"],
                    years_in_practice=None if profile is None or pd.isna(profile["years_in_practice"])
                    else int(profile["years_in_practice"]),
                    suspected_synthetic="" if profile is None or pd.isna(profile["suspected_synthetic"])
                    else profile["suspected_synthetic"],
                    giveaway="" if profile is None or pd.isna(profile["giveaway"]) else profile["giveaway"],
                    debriefed_at=None if profile is None or pd.isna(profile["suspected_synthetic"]) else now)
                next_index += 1
            positions = _positions(group, file)
            items = Item.objects.bulk_create([
                Item(rater=rater, position=int(positions[i]), study_tile=tiles[row["tile"]],
                     is_repeat=bool(row["is_repeat"]), first_served_at=None)
                for i, row in group.iterrows()])
            made = Rating.objects.bulk_create([
                Rating(item=item, tissue_answer=row["tissue_answer"], quality=int(row["quality"]),
                       artifacts=bool(row["artifacts"]),
                       seconds=0.0 if pd.isna(row["seconds"]) else float(row["seconds"]),
                       active_seconds=None if pd.isna(row["active_seconds"]) else float(row["active_seconds"]),
                       answered_at=now if pd.isna(row["answered_at"]) else row["answered_at"].to_pydatetime(),
                       revisions=1 if pd.isna(row["revisions"]) or int(row["revisions"]) < 1 else int(row["revisions"]))
                for item, (_, row) in zip(items, group.iterrows(), strict=True)])
            RatingRevision.objects.bulk_create([
                RatingRevision(rating=r, number=r.revisions, tissue_answer=r.tissue_answer, quality=r.quality,
                               artifacts=r.artifacts, seconds=r.seconds, active_seconds=r.active_seconds,
                               created=r.answered_at) for r in made])
            loaded += len(made)
    return loaded
