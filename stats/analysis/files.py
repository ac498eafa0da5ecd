"""Reading a ratings table a lab brings (CSV or Parquet), checked before any statistics run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow

from stats.analysis import schema


def read_table(path: Path | str) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise schema.AnalysisInputError("no such file", file=str(path))
    suffix = path.suffix.lower()
    try:
        if suffix in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        if suffix in {".csv", ".txt", ".gz"}:
            # Strings stay strings: rater codes like 007 must not become 7.
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, UnicodeDecodeError, pyarrow.ArrowException, OSError) as exc:
        raise schema.AnalysisInputError(f"cannot be read as {suffix.lstrip('.').upper()}: {exc}",
                                        file=str(path)) from None
    raise schema.AnalysisInputError("unknown file type: use .csv or .parquet", file=str(path))


def read_ratings(path: Path | str) -> pd.DataFrame:
    """The ratings of one study, typed and checked; a file naming one rater only is refused."""
    frame = schema.validate(read_table(path), schema.RATINGS, file=str(path))
    if frame.empty:
        raise schema.AnalysisInputError("the file holds no ratings", file=str(path))
    raters = frame["rater"].unique()
    if len(raters) < 2:
        raise schema.AnalysisInputError(
            f"every row names the same rater ({raters[0]}): paired tests, the mixed model and agreement need "
            "ratings from at least two raters", file=str(path), column="rater")
    return frame
