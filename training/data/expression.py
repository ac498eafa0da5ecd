"""Prepare GTEx expression for training (`rnagan prepare-expression`) and load the result.

From a GCT of TPM values, the GTEx sample attributes, a list of tissues (SMTSD names) and a gene list,
write the prepared folder of docs/contracts.md ("Prepared expression folder"):
matrix.npy (float32 samples × genes, z-scored log1p TPM), splits.csv, genes.txt, scaler.npz, report.json.

- The GCT is streamed (training.data.gct.read_gct): only the wanted samples' columns of the listed genes are
  kept, so memory is about two kept matrices, never the whole file.
- Splits are stratified by tissue and drawn per tissue from (seed, tissue name), so they do not depend
  on the GCT's column order or on which other tissues are prepared alongside.
- The scaler is fitted on the training split only; genes of the list absent from the GCT (allowed with
  force) are filled with the training mean, i.e. 0 after z-scoring.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training import __version__
from training.data.gct import read_gct, read_gct_header
from training.data.genes import (
    DUPLICATE_RULES,
    ExpressionError,
    duplicate_rows,
    match_genes,
    read_gene_list,
    strip_version,
)
from training.data.samples import SPLITS, assign_splits, read_sample_attributes, slide_id_from_sample
from training.data.scaler import DEFAULT_SD_FLOOR, SCALER_FILE, Scaler, fit_scaler, load_scaler, save_scaler
from training.utils.io import atomic_folder, read_json, write_json

MATRIX_FILE, SPLITS_FILE, GENES_FILE, REPORT_FILE = "matrix.npy", "splits.csv", "genes.txt", "report.json"
SPLIT_COLUMNS = ["sample_id", "slide_id", "tissue", "split"]
EXAMPLES = 20  # how many IDs a report lists for a long list of problems


@dataclass(frozen=True)
class PrepareConfig:
    gct: Path
    attributes: Path
    tissues: tuple[str, ...]
    genes: Path
    out: Path
    seed: int = 0
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    force: bool = False  # accept a gene list matched below min_matched
    overwrite: bool = False  # replace an existing output folder
    min_matched: float = 0.9
    sd_floor: float = DEFAULT_SD_FLOOR
    duplicate_genes: str = "error"  # a gene on several GCT rows: "error", or "sum" their TPMs (see merge)

    def to_dict(self) -> dict[str, Any]:
        # Not training.utils.runs.config_to_dict: that module imports torch, which preparation does not need.
        return {
            k: str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(self).items()
        }

    def validate(self) -> None:
        """Every option and input path, before any reading: a bad option found late wastes a 3 GB read."""
        for name in ("gct", "attributes", "genes"):
            path = getattr(self, name)
            if not path.exists() or path.is_dir():  # a named pipe (<(zcat …)) is fine: it streams
                raise ExpressionError(f"{path}: --{name} " + ("is a folder, not a file" if path.is_dir()
                                                             else "file not found"))
        if not (math.isfinite(self.sd_floor) and self.sd_floor > 0):
            raise ExpressionError(f"--sd-floor {self.sd_floor}: give a positive number (default {DEFAULT_SD_FLOOR})")
        if self.duplicate_genes not in DUPLICATE_RULES:
            raise ExpressionError(f"--duplicate-genes {self.duplicate_genes!r}: choose {' or '.join(DUPLICATE_RULES)}")
        if not 0 <= self.seed < 2**63:
            raise ExpressionError(f"--seed {self.seed}: give 0 … 2**63 - 1")
        if not self.tissues:
            raise ExpressionError("no tissues given")
        if len(set(self.tissues)) != len(self.tissues):
            raise ExpressionError(f"tissues repeated: {list(self.tissues)}")
        if len(self.split) != 3 or any(f < 0 for f in self.split) or abs(sum(self.split) - 1) > 1e-6:
            raise ExpressionError(
                f"split must be three non-negative fractions summing to 1, got {list(self.split)}"
            )
        if self.split[0] <= 0:
            raise ExpressionError("the training fraction must be positive: the scaler is fitted on it")
        if self.out.exists() and (not self.out.is_dir() or any(self.out.iterdir())) and not self.overwrite:
            raise ExpressionError(
                f"{self.out}: output exists and is not empty (pass --overwrite to replace it)"
            )


def _select_samples(
    config: PrepareConfig, gct_samples: Sequence[str], attributes: pd.DataFrame, report: dict[str, Any]
) -> pd.DataFrame:
    in_gct = set(gct_samples)
    tissue_of = dict(zip(attributes["SAMPID"], attributes["SMTSD"], strict=True))
    unknown = [s for s in gct_samples if s not in tissue_of]
    report["samples_in_gct_not_in_attributes"] = {"count": len(unknown), "examples": unknown[:EXAMPLES]}
    wanted = set(config.tissues)
    absent = sorted(s for s, t in tissue_of.items() if t in wanted and s not in in_gct)
    report["samples_in_attributes_not_in_gct"] = {"count": len(absent), "examples": absent[:EXAMPLES]}
    known = [s for s in gct_samples if s in tissue_of]
    available = pd.Series([tissue_of[s] for s in known]).value_counts()
    lacking = [t for t in config.tissues if t not in available.index]
    if lacking:
        listing = ", ".join(f"{t!r} ({n})" for t, n in available.sort_index().items() if t)
        raise ExpressionError(
            f"no samples in both {config.gct} and {config.attributes} for tissue(s) "
            f"{', '.join(map(repr, lacking))}; available (SMTSD, samples): {listing or 'none'}"
        )
    frames = []
    for tissue in config.tissues:  # tissues in the order given, samples in GCT order within each
        ids = [s for s in known if tissue_of[s] == tissue]
        frames.append(
            pd.DataFrame({"sample_id": ids, "slide_id": [slide_id_from_sample(s) for s in ids], "tissue": tissue})
        )
    return pd.concat(frames, ignore_index=True)


def prepare_expression(
    config: PrepareConfig, *, log: Callable[[str], None] = lambda message: None
) -> dict[str, Any]:
    """Write the prepared folder for `config`; returns the report (also saved as report.json)."""
    config.validate()
    started = time.perf_counter()
    report: dict[str, Any] = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "rnagan": __version__,
        "config": config.to_dict(),
    }
    listed = read_gene_list(config.genes)
    genes = list(dict.fromkeys(listed))
    attributes = read_sample_attributes(config.attributes)
    header = read_gct_header(config.gct)
    report["gct"] = {"genes_declared": header.n_genes, "samples_declared": header.n_samples}
    samples = _select_samples(config, header.samples, attributes, report)
    log(
        f"{len(samples)} samples in {len(config.tissues)} tissue(s); reading {len(genes)} listed genes "
        f"from {config.gct} ({header.n_genes} genes × {header.n_samples} samples)"
    )

    exact, bases = set(genes), {strip_version(g) for g in genes}
    data = read_gct(
        config.gct,
        samples=samples["sample_id"].tolist(),
        keep_gene=lambda name: name in exact or strip_version(name) in bases,
        expected_genes=len(genes),
        nonnegative=True,
    )
    log(f"read {data.rows_in_file} GCT rows in {time.perf_counter() - started:.1f} s; kept {len(data.genes)}")
    duplicates = merge_duplicate_rows(config, genes, data)
    match = match_genes(genes, data.genes)
    matched = len(genes) - len(match.missing)
    report["genes"] = {
        "listed": len(listed),
        "duplicates_in_list": sorted(g for g, n in Counter(listed).items() if n > 1),
        "matched": matched,
        "matched_exact": match.exact,
        "matched_without_version": {"count": len(match.without_version), "pairs": match.without_version},
        "missing": {"count": len(match.missing), "ids": match.missing},
        "fraction_matched": round(matched / len(genes), 6),
        "duplicates_in_gct": duplicates,
    }
    if matched < config.min_matched * len(genes):
        if not config.force:
            raise ExpressionError(
                f"only {matched} of {len(genes)} genes of {config.genes} ({matched / len(genes):.1%}) are in "
                f"{config.gct}, below {config.min_matched:.0%} (missing e.g. {match.missing[:5]}); "
                "pass --force to fill the missing genes with the training mean"
            )
        report["warnings"] = [f"only {matched / len(genes):.1%} of the genes matched (--force)"]

    samples["split"] = assign_splits(samples, config.split, config.seed)
    report["samples"] = _sample_counts(samples)
    for tissue, counts in report["samples"]["by_tissue"].items():
        if counts["total"] < 3:
            message = f"{tissue} has {counts['total']} sample(s): too few for a sample in every split"
            report.setdefault("warnings", []).append(message)
            log(f"warning: {message}")
    several = samples["slide_id"][samples["slide_id"].duplicated()].unique().tolist()
    report["slides_with_several_samples"] = several

    matrix, scaler = _scale(
        data.values, match.rows, samples["split"].to_numpy() == "train", genes, config.sd_floor
    )
    del data
    at_floor = int((scaler.sd <= config.sd_floor)[scaler.observed].sum())
    report["scaler"] = {"sd_floor": config.sd_floor, "genes_at_floor": at_floor}
    report["seconds"] = round(time.perf_counter() - started, 2)

    with atomic_folder(config.out, overwrite=config.overwrite) as folder:
        np.save(folder / MATRIX_FILE, matrix)
        samples[SPLIT_COLUMNS].to_csv(folder / SPLITS_FILE, index=False)
        (folder / GENES_FILE).write_text("".join(f"{g}\n" for g in genes), encoding="utf-8")
        save_scaler(folder / SCALER_FILE, scaler)
        write_json(folder / REPORT_FILE, report)
    log(f"wrote {config.out}: {matrix.shape[0]} samples × {matrix.shape[1]} genes")
    return report


def merge_duplicate_rows(config: PrepareConfig, genes: Sequence[str], data) -> dict[str, Any]:
    """Refuse a gene the GCT holds on several rows, naming its lines; with the "sum" rule add the rows'
    TPMs into the first (the one `match_genes` picks), as a gene's TPM is the sum over its pieces.

    Returns the report entry: the rule and, per merged gene, its GCT lines and row names.
    """
    groups = duplicate_rows(genes, data.genes)
    if groups and config.duplicate_genes == "error":
        gene, rows = next(iter(groups.items()))
        where = ", ".join(f"line {data.lines[r]} ({data.genes[r]})" for r in rows)
        more = f"; {len(groups) - 1} more listed gene(s) are on several rows too" if len(groups) > 1 else ""
        raise ExpressionError(
            f"{config.gct}: gene {gene} is on {len(rows)} rows: {where}{more}. Keep one row per gene, or pass "
            "--duplicate-genes sum to add their TPMs (the rule is recorded in report.json)"
        )
    merged = {}
    for gene, rows in groups.items():
        total = data.values[rows].astype(np.float64).sum(axis=0)
        if not np.isfinite(total.astype(np.float32)).all():
            raise ExpressionError(f"{config.gct}: gene {gene}: the sum of its rows overflows 32-bit floats")
        data.values[rows[0]] = total
        merged[gene] = {"lines": [int(data.lines[r]) for r in rows], "names": [data.genes[r] for r in rows]}
    return {"rule": config.duplicate_genes, "count": len(merged),
            "genes": dict(list(merged.items())[:EXAMPLES])}


def _sample_counts(samples: pd.DataFrame) -> dict[str, Any]:
    by_tissue: dict[str, dict[str, int]] = {}
    for tissue, group in samples.groupby("tissue", sort=False):
        counts = group["split"].value_counts()
        by_tissue[str(tissue)] = {s: int(counts.get(s, 0)) for s in SPLITS} | {"total": len(group)}
    totals = samples["split"].value_counts()
    return {
        "total": len(samples),
        "by_split": {s: int(totals.get(s, 0)) for s in SPLITS},
        "by_tissue": by_tissue,
    }


def _scale(
    values: np.ndarray, rows: np.ndarray, train: np.ndarray, genes: Sequence[str], sd_floor: float
) -> tuple[np.ndarray, Scaler]:
    """Kept GCT rows (genes × samples, TPM) → z-scored samples × listed genes, and the scaler."""
    matrix = np.zeros((values.shape[1], len(genes)), dtype=np.float32)
    observed = rows >= 0
    for column, row in enumerate(rows):
        if row >= 0:
            matrix[:, column] = values[row]
    np.log1p(matrix, out=matrix)
    scaler = fit_scaler(matrix[train].T, genes=genes, observed=observed, sd_floor=sd_floor)
    matrix -= scaler.mean.astype(np.float32)
    matrix /= scaler.sd.astype(np.float32)
    return matrix, scaler


@dataclass
class PreparedExpression:
    """A prepared folder in memory. `samples` has splits.csv's columns; row i describes matrix row i."""

    path: Path
    matrix: np.ndarray
    samples: pd.DataFrame
    genes: tuple[str, ...]
    scaler: Scaler
    report: dict[str, Any] | None = None
    _row_of_sample: dict[str, int] = field(init=False, repr=False)
    _row_of_slide: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._row_of_sample = {s: i for i, s in enumerate(self.samples["sample_id"])}
        self._row_of_slide = {}
        for i, slide in enumerate(self.samples["slide_id"]):
            self._row_of_slide.setdefault(slide, i)  # a slide with several samples: its first row

    def row_of_sample(self, sample_id: str) -> int:
        try:
            return self._row_of_sample[sample_id]
        except KeyError:
            raise KeyError(f"sample {sample_id!r} is not in {self.path}") from None

    def row_of_slide(self, slide_id: str) -> int:
        try:
            return self._row_of_slide[slide_id]
        except KeyError:
            raise KeyError(f"slide {slide_id!r} is not in {self.path}") from None

    def rows(self, *, split: str | None = None, tissue: str | None = None) -> np.ndarray:
        """Matrix rows of one split and/or tissue, in matrix order."""
        keep = np.ones(len(self.samples), dtype=bool)
        if split is not None:
            if split not in SPLITS:
                raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
            keep &= (self.samples["split"] == split).to_numpy()
        if tissue is not None:
            keep &= (self.samples["tissue"] == tissue).to_numpy()
        return np.flatnonzero(keep)


def load_prepared(path: str | os.PathLike[str], *, mmap: bool = False) -> PreparedExpression:
    """Load a prepared folder, checking that its files agree with each other."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: prepared expression folder not found")
    absent = [f for f in (MATRIX_FILE, SPLITS_FILE, GENES_FILE, SCALER_FILE) if not (path / f).exists()]
    if absent:
        raise ExpressionError(f"{path}: not a prepared expression folder (missing {', '.join(absent)})")
    try:
        matrix = np.load(path / MATRIX_FILE, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ExpressionError(f"{path / MATRIX_FILE}: unreadable ({exc})") from None
    if matrix.ndim != 2 or matrix.dtype != np.float32:
        raise ExpressionError(
            f"{path / MATRIX_FILE}: expected a 2-D float32 matrix, got {matrix.dtype} {matrix.shape}"
        )
    samples = pd.read_csv(path / SPLITS_FILE, dtype=str, keep_default_na=False)
    if list(samples.columns) != SPLIT_COLUMNS:
        raise ExpressionError(
            f"{path / SPLITS_FILE}: columns should be {SPLIT_COLUMNS}, found {list(samples.columns)}"
        )
    bad = samples.index[~samples["split"].isin(SPLITS)]
    if len(bad):
        raise ExpressionError(
            f"{path / SPLITS_FILE}, line {bad[0] + 2}: split {samples['split'][bad[0]]!r} "
            f"is not one of {SPLITS}"
        )
    if samples["sample_id"].duplicated().any():
        raise ExpressionError(
            f"{path / SPLITS_FILE}: duplicate sample ID "
            f"{samples['sample_id'][samples['sample_id'].duplicated()].iloc[0]!r}"
        )
    genes = tuple(
        line.strip() for line in (path / GENES_FILE).read_text(encoding="utf-8").splitlines() if line.strip()
    )
    if matrix.shape != (len(samples), len(genes)):
        raise ExpressionError(
            f"{path}: matrix is {matrix.shape[0]} × {matrix.shape[1]} but splits.csv has "
            f"{len(samples)} samples and genes.txt {len(genes)} genes"
        )
    if not mmap and not np.isfinite(matrix).all():
        raise ExpressionError(f"{path / MATRIX_FILE}: holds non-finite values")
    try:
        scaler = load_scaler(path / SCALER_FILE)
    except ValueError as exc:
        raise ExpressionError(str(exc)) from None
    if scaler.genes != genes:
        raise ExpressionError(f"{path}: scaler.npz genes differ from genes.txt")
    try:
        report = read_json(path / REPORT_FILE) if (path / REPORT_FILE).exists() else None
    except ValueError as exc:
        raise ExpressionError(str(exc)) from None
    return PreparedExpression(
        path=path, matrix=matrix, samples=samples, genes=genes, scaler=scaler, report=report
    )
