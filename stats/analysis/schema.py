"""The tidy tables' columns, written once: the input checks and every export's `datapackage.json` read them.

A column carries its Frictionless Table Schema type, unit, allowed values and meaning, so what the
validator accepts and what the data package promises cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

SOURCES = ("real", "gan", "rnagan")
GAME_SOURCES = ("real", "gan", "rnagan", "noise")
QUALITY_MIN, QUALITY_MAX = 1, 5
TRUE_WORDS = {"true", "t", "yes", "y", "1"}
FALSE_WORDS = {"false", "f", "no", "n", "0"}


class AnalysisInputError(ValueError):
    """Input the analysis cannot use; the message names the file, the row and the column."""

    def __init__(self, message: str, *, file: str = "", row: int | None = None, column: str | None = None):
        where = ", ".join(part for part in (
            file, f"row {row}" if row is not None else "", f"column {column!r}" if column else "") if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.file, self.row, self.column = file, row, column


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # Frictionless Table Schema type: string, integer, number, boolean, datetime
    description: str
    unit: str | None = None
    enum: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    required: bool = False

    def field(self) -> dict:
        """The column as a Frictionless Table Schema field descriptor."""
        field: dict = {"name": self.name, "type": self.type, "description": self.description}
        if self.unit:
            field["unit"] = self.unit
        constraints: dict = {}
        if self.required:
            constraints["required"] = True
        if self.enum:
            constraints["enum"] = list(self.enum)
        if self.minimum is not None:
            constraints["minimum"] = self.minimum
        if self.maximum is not None:
            constraints["maximum"] = self.maximum
        if constraints:
            field["constraints"] = constraints
        return field


def C(name, type, description, **kw) -> Column:  # noqa: N802 - a table of columns reads better short
    return Column(name, type, description, **kw)


RATINGS = (
    C("rater", "string", "Pseudonymous rater code; the same code in every table of one study.", required=True),
    C("tile", "string", "The tile's public identifier (opaque, not guessable).", required=True),
    C("source", "string", "Where the tile came from: a real slide, the GAN or the RNA-GAN.", enum=SOURCES,
      required=True),
    C("tissue", "string", "The tile's true tissue of origin.", required=True),
    C("tissue_answer", "string", "The tissue the rater named.", required=True),
    C("quality", "integer", "Quality of the morphological structures, 1 (poor) to 5 (excellent).",
      unit="points", minimum=QUALITY_MIN, maximum=QUALITY_MAX, required=True),
    C("artifacts", "boolean", "Whether the rater saw artifacts in the tile.", required=True),
    C("position", "integer", "The item's place in the rater's sequence, from 1.", minimum=1),
    C("is_repeat", "boolean", "A hidden repeat of a tile the rater saw earlier (test–retest)."),
    C("is_anchor", "boolean", "A tile of the anchor set every rater sees (agreement)."),
    C("seconds", "number", "Time from showing the item to the answer.", unit="s", minimum=0),
    C("active_seconds", "number", "The part of `seconds` with the page visible; empty when unknown.",
      unit="s", minimum=0),
    C("answered_at", "datetime", "When the answer was stored (UTC)."),
    C("revisions", "integer", "Stored versions of the answer: 1 when never changed, 2 after one change.", minimum=0),
)

TILES = (
    C("tile", "string", "The tile's public identifier.", required=True),
    C("source", "string", "Where the tile came from.", enum=GAME_SOURCES, required=True),
    C("tissue", "string", "The tile's tissue.", required=True),
    C("checkpoint", "string", "The generator checkpoint's name; empty for real tiles."),
    C("generator_config_hash", "string", "SHA-256 of the generator's saved config.json; empty for real tiles."),
    C("expression_origin", "string", "Where the RNA-GAN's expression came from (cohort/sample or vae-sampled)."),
    C("selection", "string", "How the tile was chosen for the study (e.g. random, stratified, anchor)."),
    C("seed", "integer", "The generator seed the tile was drawn with; empty for real tiles."),
    C("is_anchor", "boolean", "A tile of the anchor set every rater sees."),
)

RATERS = (
    C("rater", "string", "Pseudonymous rater code.", required=True),
    C("specialty", "string", "The rater's specialty as they reported it."),
    C("years_in_practice", "integer", "Years in practice as reported.", unit="years", minimum=0),
    C("assigned", "integer", "Items assigned to the rater.", minimum=0),
    C("answered", "integer", "Items the rater answered.", minimum=0),
    C("finished_at", "datetime", "When the rater finished (UTC); empty while unfinished."),
    C("suspected_synthetic", "string", "Debrief: did the rater suspect that some tiles were synthetic?",
      enum=("yes", "no", "unsure")),
    C("giveaway", "string", "Debrief: what gave synthetic tiles away, in the rater's words."),
)

PER_RATER = (
    C("rater", "string", "Pseudonymous rater code.", required=True),
    C("tissue", "string", "The tiles' tissue.", required=True),
    C("source", "string", "Where the tiles came from.", enum=SOURCES, required=True),
    C("ratings", "integer", "First-presentation ratings the means rest on.", minimum=0),
    C("mean_quality", "number", "The rater's mean quality score.", unit="points", minimum=1, maximum=5),
    C("tissue_accuracy", "number", "Share of the rater's tissue answers that were right.", unit="fraction",
      minimum=0, maximum=1),
    C("artifact_rate", "number", "Share of the rater's ratings reporting artifacts.", unit="fraction",
      minimum=0, maximum=1),
)

STUDY_TILE_SUMMARY = (
    C("tile", "string", "The tile's public identifier.", required=True),
    C("source", "string", "Where the tiles came from.", enum=SOURCES),
    C("tissue", "string", "The tiles' tissue."),
    C("ratings", "integer", "First-presentation ratings of the tile.", minimum=0),
    C("mean_quality", "number", "Mean quality over raters.", unit="points", minimum=1, maximum=5),
    C("sd_quality", "number", "Standard deviation of quality over raters; empty with one rating.", unit="points"),
    C("tissue_accuracy", "number", "Share of right tissue answers.", unit="fraction", minimum=0, maximum=1),
    C("artifact_rate", "number", "Share of ratings reporting artifacts.", unit="fraction", minimum=0, maximum=1),
)

ANSWERS = (
    C("player", "string", "The player: a salted hash of the browser session, never the session itself.",
      required=True),
    C("game", "string", "The game: a salted hash of the game's identifier.", required=True),
    C("tile", "string", "The tile's public identifier.", required=True),
    C("source", "string", "Where the tile came from.", enum=GAME_SOURCES, required=True),
    C("tissue", "string", "The tile's tissue.", required=True),
    C("answer", "string", "The player's verdict.", enum=("real", "synthetic"), required=True),
    C("confidence", "string", "How sure the player said they were.", enum=("sure", "unsure"), required=True),
    C("correct", "boolean", "Whether the verdict was right.", required=True),
    C("position", "integer", "The round's place in the game, from 1.", minimum=1, required=True),
    C("answered_at", "datetime", "When the answer was stored (UTC)."),
)

GAME_TILE_SUMMARY = (
    C("tile", "string", "The tile's public identifier.", required=True),
    C("source", "string", "Where the tile came from.", enum=GAME_SOURCES),
    C("tissue", "string", "The tile's tissue."),
    C("exposures", "integer", "Rounds the tile was dealt in (answered or not).", minimum=0),
    C("answers", "integer", "Answered rounds of the tile.", minimum=0),
    C("fooled", "integer", "Answers that got the tile wrong.", minimum=0),
    C("fool_rate", "number", "fooled / answers; empty below the minimum number of answers.",
      unit="fraction", minimum=0, maximum=1),
)

PER_PLAYER = (
    C("player", "string", "The player's salted hash.", required=True),
    C("answers", "integer", "Answered rounds.", minimum=0),
    C("accuracy", "number", "Share of right verdicts.", unit="fraction", minimum=0, maximum=1),
    C("auc", "number", "The player's ROC AUC from verdict × confidence; empty without both kinds of tile.",
      minimum=0, maximum=1),
)


def names(columns: Sequence[Column]) -> list[str]:
    return [column.name for column in columns]


def _row(index: int) -> int:
    # Rows count from 1 over the data, the way a spreadsheet shows them below the header.
    return int(index) + 1


def _parse_booleans(values: pd.Series, *, file: str, column: str) -> pd.Series:
    if values.dtype == bool:
        return values
    words = values.astype("string").str.strip().str.lower()
    parsed = pd.Series(pd.NA, index=values.index, dtype="boolean")
    parsed[words.isin(TRUE_WORDS)] = True
    parsed[words.isin(FALSE_WORDS)] = False
    bad = parsed.isna() & values.notna()
    if bad.any():
        at = bad.idxmax()
        raise AnalysisInputError(f"{values[at]!r} is not yes/no (use true/false, yes/no or 1/0)",
                                 file=file, row=_row(at), column=column)
    return parsed


def validate(frame: pd.DataFrame, columns: Sequence[Column], *, file: str) -> pd.DataFrame:
    """Check a table against its columns and return it typed; raise AnalysisInputError naming the cell.

    Optional columns that are absent are added empty (booleans as False), so the analysis reads one shape.
    """
    missing = [c.name for c in columns if c.required and c.name not in frame.columns]
    if missing:
        raise AnalysisInputError(
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
            f"(required: {', '.join(c.name for c in columns if c.required)})", file=file)
    frame = frame.reset_index(drop=True).copy()
    for column in columns:
        if column.name not in frame.columns:
            frame[column.name] = False if column.type == "boolean" else pd.NA
            continue
        values = frame[column.name]
        blank = values.isna() | (values.astype("string").str.strip() == "")
        if column.required and blank.any():
            raise AnalysisInputError("empty value in a required column", file=file, row=_row(blank.idxmax()),
                                     column=column.name)
        if column.type == "string":
            frame[column.name] = values.astype("string").str.strip().where(~blank, pd.NA)
        elif column.type in {"integer", "number"}:
            numbers = pd.to_numeric(values.where(~blank), errors="coerce")
            bad = numbers.isna() & ~blank
            if column.type == "integer":
                bad |= numbers.notna() & (numbers != np.floor(numbers.fillna(0)))
            if bad.any():
                at = bad.idxmax()
                raise AnalysisInputError(f"{values[at]!r} is not a{'n integer' if column.type == 'integer' else ' number'}",
                                         file=file, row=_row(at), column=column.name)
            frame[column.name] = numbers.astype("Int64") if column.type == "integer" else numbers.astype(float)
        elif column.type == "boolean":
            parsed = _parse_booleans(values.where(~blank), file=file, column=column.name)
            frame[column.name] = parsed.fillna(False).astype(bool) if not column.required else parsed.astype(bool)
        elif column.type == "datetime":
            frame[column.name] = pd.to_datetime(values.where(~blank), utc=True, errors="coerce", format="mixed")
        checked = frame[column.name]
        if column.enum:
            bad = checked.notna() & ~checked.isin(column.enum)
            if bad.any():
                at = bad.idxmax()
                raise AnalysisInputError(f"unknown value {checked[at]!r} (allowed: {', '.join(column.enum)})",
                                         file=file, row=_row(at), column=column.name)
        for bound, outside in ((column.minimum, checked.lt if column.minimum is not None else None),
                               (column.maximum, checked.gt if column.maximum is not None else None)):
            if outside is None:
                continue
            bad = outside(bound).fillna(False).astype(bool)
            if bad.any():
                at = bad.idxmax()
                raise AnalysisInputError(
                    f"{checked[at]} is outside the scale {column.minimum:g}–{column.maximum:g}"
                    if column.minimum is not None and column.maximum is not None
                    else f"{checked[at]} is below the minimum {column.minimum:g}",
                    file=file, row=_row(at), column=column.name)
    return frame


def table_schema(columns: Iterable[Column], *, primary_key: Sequence[str] | None = None) -> dict:
    schema: dict = {"fields": [column.field() for column in columns], "missingValues": [""]}
    if primary_key:
        schema["primaryKey"] = list(primary_key)
    return schema
