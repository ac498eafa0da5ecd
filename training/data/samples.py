"""GTEx samples: the sample attributes file, slide IDs from sample IDs, tissue names and the splits."""

from __future__ import annotations

import csv
import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.data.genes import ExpressionError

SPLITS = ("train", "val", "test")


def slide_id_from_sample(sample_id: str) -> str:
    """A GTEx slide is named by the tissue sample: the first three dash-separated parts of SAMPID."""
    return "-".join(sample_id.split("-")[:3])


def read_sample_attributes(path: str | os.PathLike[str]) -> pd.DataFrame:
    """GTEx SampleAttributesDS: tab-separated; returns SAMPID, SMTSD (and SMTS when present), as strings."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    # GTEx's free-text columns hold stray quote characters; quoting would swallow tabs after them.
    options: dict[str, Any] = {"sep": "\t", "dtype": str, "keep_default_na": False, "quoting": csv.QUOTE_NONE}
    try:
        columns = [c.strip() for c in pd.read_csv(path, nrows=0, encoding="utf-8-sig", **options).columns]
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
        raise ExpressionError(f"{path}: not a readable tab-separated attributes file ({exc})") from None
    _check_row_widths(path)
    absent = [c for c in ("SAMPID", "SMTSD") if c not in columns]
    if absent:
        raise ExpressionError(
            f"{path}: sample attributes lack column(s) {', '.join(absent)} (found {columns[:8]})"
        )
    wanted = [c for c in ("SAMPID", "SMTS", "SMTSD") if c in columns]
    try:
        table = pd.read_csv(path, encoding="utf-8-sig", usecols=lambda c: c.strip() in wanted, **options)
    except (pd.errors.ParserError, ValueError) as exc:
        raise ExpressionError(f"{path}: cannot read the attributes ({exc})") from None
    table.columns = [c.strip() for c in table.columns]
    table = table.apply(lambda column: column.str.strip())
    duplicated = table["SAMPID"].duplicated(keep=False) & (table["SAMPID"] != "")
    if duplicated.any():
        sample = table.loc[duplicated, "SAMPID"].iloc[0]
        lines = (table.index[table["SAMPID"] == sample] + 2).tolist()
        raise ExpressionError(f"{path}: duplicate sample ID {sample!r} on lines {lines}")
    return table[table["SAMPID"] != ""].reset_index(drop=True)


def _check_row_widths(path: Path) -> None:
    """Refuse a row with another number of fields than the header: pandas pads a short row with empty
    values, so a SMTSD lost to a missing tab would read as an empty tissue, silently."""
    width = None
    with open(path, encoding="utf-8-sig", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").count("\t") + 1
            if width is None:
                width = fields
            elif fields != width:
                raise ExpressionError(f"{path}, line {number}: {fields} tab-separated fields, the header has {width}")


def split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """Largest-remainder allocation; every split with a positive fraction gets one when n allows."""
    raw = [n * f for f in fractions]
    counts = [int(np.floor(r)) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: (counts[i] - raw[i], i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    positive = [i for i, f in enumerate(fractions) if f > 0]
    if n >= len(positive):
        for i in positive:
            if counts[i] == 0:
                donor = max(positive, key=lambda j: counts[j])
                counts[donor] -= 1
                counts[i] += 1
    return counts


def assign_splits(samples: pd.DataFrame, fractions: Sequence[float], seed: int) -> pd.Series:
    """Split per tissue (columns sample_id, tissue) into train/val/test, deterministically."""
    split = pd.Series("", index=samples.index, dtype=object)
    for tissue, group in samples.groupby("tissue", sort=True):
        rng = np.random.default_rng([seed, zlib.crc32(str(tissue).encode("utf-8"))])
        ordered = group.sort_values("sample_id").index.to_numpy()
        shuffled = ordered[rng.permutation(len(ordered))]
        start = 0
        for name, count in zip(SPLITS, split_counts(len(ordered), fractions), strict=True):
            split.loc[shuffled[start : start + count]] = name
            start += count
    return split


def match_tissue(names: Sequence[str], tissue: str) -> list[str]:
    """The prepared folder's tissue names meant by `tissue`: same name ignoring case, else a unique prefix."""
    folded = tissue.casefold()
    exact = sorted({n for n in names if n.casefold() == folded})
    if exact:
        return exact
    return sorted({n for n in names if n.casefold().startswith(folded)})
