"""Put an external cohort's expression on the prepared genes and scale (`rnagan align-expression`).

A cohort table (CSV, TSV, Parquet or GCT; genes as rows or as columns; TPM values) is matched to the
scaler's genes by Ensembl ID with version, then without version, then by gene symbol (symbols come
from a GCT's Description column), normalised as in training (log1p, then the training mean and sd),
and written samples × genes in the prepared gene order. Genes the cohort lacks are set to the
training mean, 0 after z-scoring, as the paper did for GEO GSE120795; coverage says how many.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.data.expression import EXAMPLES
from training.data.gct import iter_gct_names, read_gct
from training.data.genes import ExpressionError, clean_gene_id, strip_version
from training.data.scaler import Scaler
from training.utils.io import atomic_path, write_json

ORIENTATIONS = ("auto", "genes-rows", "genes-columns")
PARQUET_SUFFIXES = (".parquet", ".pq")


def symbols_from_gct(path: str | os.PathLike[str]) -> dict[str, str]:
    """Name → Description (the gene symbol in GTEx files), reading only the first two columns."""
    return {name: description for name, description in iter_gct_names(path) if description}


class GeneIndex:
    """Finds a cohort's gene label among the scaler's genes: ID, ID without version, then symbol."""

    def __init__(self, genes: tuple[str, ...], symbols: Mapping[str, str] | None = None) -> None:
        self.genes = genes
        self.by_id = {g: i for i, g in enumerate(genes)}
        self.by_base: dict[str, int] = {}
        for i, gene in enumerate(genes):
            self.by_base.setdefault(strip_version(gene), i)
        self.by_symbol: dict[str, int] = {}
        self.ambiguous_symbols: list[str] = []
        if symbols:
            base_symbols = {strip_version(name): symbol for name, symbol in symbols.items()}
            owners: dict[str, list[int]] = {}
            for i, gene in enumerate(genes):
                symbol = symbols.get(gene) or base_symbols.get(strip_version(gene))
                if symbol:
                    owners.setdefault(symbol.upper(), []).append(i)
            for symbol, indices in owners.items():
                if len(indices) == 1:
                    self.by_symbol[symbol] = indices[0]
                else:  # one symbol for several genes: matching it to either would be a guess
                    self.ambiguous_symbols.append(symbol)

    def lookup(self, label: object) -> tuple[int, str] | None:
        """(gene index, how) with how ∈ exact / without_version / symbol, or None."""
        gene = clean_gene_id(str(label))
        if gene in self.by_id:
            return self.by_id[gene], "exact"
        base = strip_version(gene)
        if base in self.by_base:
            return self.by_base[base], "without_version"
        if gene.upper() in self.by_symbol:
            return self.by_symbol[gene.upper()], "symbol"
        return None

    def count(self, labels: pd.Index) -> int:
        return sum(self.lookup(label) is not None for label in labels)


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A cohort table with its first column (or stored index) as row labels."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".gct"):
        data = read_gct(path)
        return pd.DataFrame(data.values, index=pd.Index(data.genes), columns=data.samples)
    try:
        if name.endswith(PARQUET_SUFFIXES):
            table = pd.read_parquet(path)
            if isinstance(table.index, pd.RangeIndex) and not pd.api.types.is_numeric_dtype(table.iloc[:, 0]):
                table = table.set_index(table.columns[0])
            return table
        if name.endswith(".csv"):
            sep = ","
        elif name.endswith((".tsv", ".tab", ".txt")):
            sep = "\t"
        else:
            sep = None  # let pandas sniff
        engine = "python" if sep is None else "c"
        header = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, engine=engine).iloc[0].tolist()
        table = pd.read_csv(path, sep=sep, index_col=0, engine=engine)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ExpressionError(f"{path}: cannot read the table ({exc})") from None
    # pandas renames a repeated column ("G", "G.1"), which would then match no gene and vanish silently.
    seen: dict[str, int] = {}
    for column, name in enumerate(header[1:], start=2):
        if name in seen:
            raise ExpressionError(f"{path}: column {name!r} appears twice (columns {seen[name]} and {column})")
        seen[name] = column
    return table


@dataclass(frozen=True)
class AlignedExpression:
    samples: list[str]
    genes: tuple[str, ...]
    matrix: np.ndarray  # float32 samples × genes, z-scored like the prepared matrix
    coverage: dict[str, Any]

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(
            self.matrix, index=pd.Index(self.samples, name="sample_id"), columns=list(self.genes)
        )
        return frame


def _choose_orientation(table: pd.DataFrame, index: GeneIndex, orientation: str, source: str) -> str:
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be one of {ORIENTATIONS}, got {orientation!r}")
    if orientation != "auto":
        return orientation
    in_rows, in_columns = index.count(table.index), index.count(table.columns)
    if in_rows == in_columns:
        raise ExpressionError(
            f"{source}: cannot tell whether genes are rows or columns ({in_rows} row labels and "
            f"{in_columns} column labels are known genes, e.g. rows {list(table.index[:3])}, columns "
            f"{list(table.columns[:3])}); pass --orientation, or --gct to match gene symbols"
        )
    return "genes-rows" if in_rows > in_columns else "genes-columns"


def _to_numbers(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(float values with NaN for empty, mask of entries that are present but not numbers)."""
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(dtype=np.float64), np.zeros(len(column), dtype=bool)
    text = column.astype("string").str.strip()
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    present = text.notna().to_numpy() & (text.fillna("") != "").to_numpy()
    return numbers, present & np.isnan(numbers)


def align_expression(
    table: pd.DataFrame,
    scaler: Scaler,
    *,
    orientation: str = "auto",
    symbols: Mapping[str, str] | None = None,
    source: str = "table",
) -> AlignedExpression:
    """Match a TPM table's genes to the scaler's and return z-scores, samples × scaler genes."""
    index = GeneIndex(scaler.genes, symbols)
    orientation = _choose_orientation(table, index, orientation, source)
    gene_labels = table.index if orientation == "genes-rows" else table.columns
    sample_labels = table.columns if orientation == "genes-rows" else table.index

    # Which table label feeds each scaler gene (the first one that matches it).
    source_of = np.full(len(scaler.genes), -1, dtype=np.int64)
    how_counts = {"exact": 0, "without_version": 0, "symbol": 0}
    unmatched: list[str] = []
    for position, label in enumerate(gene_labels):
        found = index.lookup(label)
        if found is None:
            unmatched.append(str(label))
        elif source_of[found[0]] >= 0:
            # Two labels for one gene (a repeated row, or two versions of it): taking either one would
            # silently drop the other's values.
            first = gene_labels[source_of[found[0]]]
            raise ExpressionError(
                f"{source}: gene {scaler.genes[found[0]]} is given twice, as {str(first)!r} "
                f"({_where(orientation, source_of[found[0]])}) and {str(label)!r} ({_where(orientation, position)}); "
                "keep one"
            )
        else:
            source_of[found[0]] = position
            how_counts[found[1]] += 1
    present = np.flatnonzero(source_of >= 0)
    if not len(present):
        raise ExpressionError(
            f"{source}: none of its gene labels match the {len(scaler.genes)} prepared genes"
        )

    ignored: list[str] = []
    if orientation == "genes-rows":
        # Columns are samples; a column with no number at all (a Description or symbol column) is not one.
        rows = source_of[present]
        kept_samples, columns = [], []
        for position, label in enumerate(sample_labels):
            numbers, bad = _to_numbers(table.iloc[:, position])
            if bad.any() and np.isnan(numbers).all():
                ignored.append(str(label))
                continue
            _refuse_text(source, bad[rows], str(label), [str(gene_labels[r]) for r in rows])
            kept_samples.append(str(label))
            columns.append(numbers[rows])
        if not columns:
            raise ExpressionError(f"{source}: no sample column holds a number (ignored: {ignored[:5]})")
        values = np.stack(columns)
    else:
        kept_samples = [str(label) for label in sample_labels]
        values = np.empty((len(kept_samples), len(present)))
        for k, position in enumerate(source_of[present]):
            numbers, bad = _to_numbers(table.iloc[:, position])
            _refuse_text(source, bad, str(gene_labels[position]), kept_samples, genes_vary=False)
            values[:, k] = numbers
    duplicated_samples = pd.Index(kept_samples)[pd.Index(kept_samples).duplicated()]
    if len(duplicated_samples):
        raise ExpressionError(f"{source}: duplicate sample ID {duplicated_samples[0]!r}")
    infinite = np.argwhere(np.isinf(values))
    if len(infinite):
        s, g = infinite[0]
        raise ExpressionError(
            f"{source}: sample {kept_samples[s]}, gene {scaler.genes[present[g]]}: value {values[s, g]} is not "
            "a finite number"
        )
    negative = np.argwhere(values < 0)
    if len(negative):
        s, g = negative[0]
        raise ExpressionError(
            f"{source}: sample {kept_samples[s]}, gene {scaler.genes[present[g]]}: value {values[s, g]} is "
            "negative (expected TPM, before any log transform)"
        )

    tpm = np.zeros((len(kept_samples), len(scaler.genes)))
    known = np.zeros(tpm.shape, dtype=bool)
    tpm[:, present] = np.nan_to_num(values, nan=0.0)
    known[:, present] = ~np.isnan(values)
    matrix = scaler.transform(tpm, known=known)
    missing = [scaler.genes[i] for i in np.flatnonzero(source_of < 0)]
    unobserved = int((~scaler.observed).sum())
    coverage = {
        "source": source,
        "orientation": orientation,
        "samples": len(kept_samples),
        "genes": len(scaler.genes),
        "found": len(present),
        "fraction_found": round(len(present) / len(scaler.genes), 6),
        "matched": how_counts,
        "missing": {"count": len(missing), "ids": missing},
        "missing_values": int(np.isnan(values).sum()),
        "genes_not_observed_in_training": unobserved,
        "labels_unmatched": {"count": len(unmatched), "examples": unmatched[:EXAMPLES]},
        "ignored_columns": ignored,
        "ambiguous_symbols": sorted(index.ambiguous_symbols)[:EXAMPLES],
    }
    return AlignedExpression(samples=kept_samples, genes=scaler.genes, matrix=matrix, coverage=coverage)


def _where(orientation: str, position: int) -> str:
    # Data rows start on the file's line 2, after the header; columns are counted from 1 after the labels.
    return f"line {position + 2}" if orientation == "genes-rows" else f"column {position + 2}"


def _refuse_text(
    source: str, bad: np.ndarray, fixed: str, others: list[str], *, genes_vary: bool = True
) -> None:
    if bad.any():
        other = others[int(np.flatnonzero(bad)[0])]
        sample, gene = (fixed, other) if genes_vary else (other, fixed)
        raise ExpressionError(f"{source}: sample {sample}, gene {gene}: value is not a number")


def coverage_path(out: str | os.PathLike[str]) -> Path:
    """`aligned.parquet` → `aligned.coverage.json` (beside it)."""
    out = Path(out)
    stem = out.name.removesuffix(".gz")
    stem = stem[: -len(Path(stem).suffix)] if Path(stem).suffix else stem
    return out.with_name(f"{stem}.coverage.json")


def write_aligned(aligned: AlignedExpression, out: str | os.PathLike[str]) -> Path:
    """Parquet for .parquet/.pq, tab-separated for .tsv/.txt, else CSV (gzip when the name ends .gz)."""
    out = Path(out)
    frame = aligned.to_frame()
    name = out.name.lower()
    with atomic_path(out) as tmp:
        if name.endswith(PARQUET_SUFFIXES):
            frame.to_parquet(tmp)
        else:
            sep = "\t" if name.removesuffix(".gz").endswith((".tsv", ".txt", ".tab")) else ","
            compression = "gzip" if name.endswith(".gz") else None
            frame.to_csv(tmp, sep=sep, float_format="%.6g", compression=compression)
    write_json(coverage_path(out), aligned.coverage)
    return out
