"""Operations in the β-VAE's latent space, and the expression tables they read and write.

- tissue centroids: the mean μ of a tissue's training samples;
- sample: decode(centroid + ε) — synthetic expression for a tissue;
- shift: decode(μ(x) + centroid(B) − centroid(A)) — a sample of tissue A moved toward B;
- encode: μ of any expression table aligned to the VAE's genes.

Tables are Parquet (`.parquet`) or CSV (`.csv`, `.csv.gz`): one row a sample, a `sample_id` column, optional
metadata columns (`slide_id`, `tissue`, `split`), and one column a gene (IDs as in genes.txt; an `rna_`
prefix, as in the paper's gene list, is accepted). Values are z-scores, like the prepared matrix.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from training.data.expression import load_prepared
from training.data.genes import clean_gene_id
from training.networks.vae import LoadedVAE, VAEError, gene_order
from training.utils.io import atomic_path

META_COLUMNS = ("sample_id", "slide_id", "tissue", "source_tissue", "split")
UNITS = ("zscore", "log1p", "tpm")


@dataclass
class ExpressionSet:
    """Rows of expression in the VAE's gene order, with their metadata (at least `sample_id`)."""

    meta: pd.DataFrame
    values: np.ndarray


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if name.endswith((".csv", ".csv.gz")):
            return pd.read_csv(path, dtype={c: str for c in META_COLUMNS}, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise VAEError(f"{path}: cannot read the table ({exc})") from None
    raise VAEError(f"{path}: unknown table format; use .parquet or .csv")


def expression_from_table(vae: LoadedVAE, path: str | os.PathLike[str], *, tissue: str | None = None) -> ExpressionSet:
    """Read a table and align its gene columns to the VAE (same set required, any order).

    With `tissue`, rows whose `tissue` column names another tissue are dropped (a table without that
    column is taken as all of `tissue`).
    """
    frame = read_table(path)
    if "sample_id" not in frame.columns:
        first = frame.columns[0] if len(frame.columns) else None
        if first is None or frame[first].dtype != object:
            raise VAEError(f"{path}: needs a 'sample_id' column (or sample IDs in its first column)")
        frame = frame.rename(columns={first: "sample_id"})
    meta_cols = [c for c in META_COLUMNS if c in frame.columns]
    gene_cols = [c for c in frame.columns if c not in meta_cols]
    if tissue is not None and "tissue" in frame.columns:
        frame = frame[frame["tissue"].astype(str).str.casefold() == tissue.casefold()]
    order = gene_order([clean_gene_id(str(c)) for c in gene_cols], vae.genes, source=str(path))
    block = frame[gene_cols]
    non_numeric = [c for c in gene_cols if not pd.api.types.is_numeric_dtype(block[c])]
    if non_numeric:
        raise VAEError(f"{path}: gene column(s) hold non-numbers: {', '.join(map(str, non_numeric[:5]))}")
    values = block.to_numpy(dtype=np.float32)[:, order]
    return ExpressionSet(meta=frame[meta_cols].astype(str).reset_index(drop=True), values=values)


def expression_from_prepared(
    vae: LoadedVAE, path: str | os.PathLike[str], *, split: str | None = None, tissue: str | None = None
) -> ExpressionSet:
    """Rows of a prepared folder (one split and/or tissue, or all), aligned to the VAE's genes."""
    prepared = load_prepared(path)
    order = gene_order(list(prepared.genes), vae.genes, source=f"{path} (genes.txt)")
    rows = prepared.rows(split=split)
    if tissue is not None:
        rows = rows[(prepared.samples["tissue"].to_numpy()[rows] == tissue)]
    values = np.ascontiguousarray(prepared.matrix[rows][:, order])
    return ExpressionSet(meta=prepared.samples.iloc[rows].reset_index(drop=True), values=values)


def to_units(vae: LoadedVAE, z: np.ndarray, units: str) -> np.ndarray:
    """z-scores → log1p(TPM) or TPM with the scaler the VAE was trained with."""
    if units == "zscore":
        return z
    if units not in UNITS:
        raise VAEError(f"units must be one of {', '.join(UNITS)}, got {units!r}")
    if vae.scaler is None:
        raise VAEError(f"{vae.run_dir}: no scaler.npz, so only --units zscore is possible")
    log1p = z * vae.scaler.sd.astype(np.float32) + vae.scaler.mean.astype(np.float32)
    return log1p if units == "log1p" else np.expm1(np.maximum(log1p, 0.0))


def expression_frame(meta: pd.DataFrame, values: np.ndarray, genes: Sequence[str]) -> pd.DataFrame:
    # Built in one go: adding 19k columns one by one fragments the frame and is slow.
    block = pd.DataFrame(values.astype(np.float32, copy=False), columns=list(genes))
    return pd.concat([meta.reset_index(drop=True), block], axis=1)


def latent_frame(meta: pd.DataFrame, mu: np.ndarray) -> pd.DataFrame:
    width = len(str(mu.shape[1] - 1))
    columns = [f"z{i:0{width}d}" for i in range(mu.shape[1])]
    return pd.concat([meta.reset_index(drop=True), pd.DataFrame(mu, columns=columns)], axis=1)


def write_table(path: str | os.PathLike[str], frame: pd.DataFrame) -> Path:
    """Parquet for `.parquet`, CSV for `.csv`/`.csv.gz`; written atomically."""
    path = Path(path)
    name = path.name.lower()
    if not name.endswith((".parquet", ".pq", ".csv", ".csv.gz")):
        raise VAEError(f"{path}: output must end in .parquet or .csv (.csv.gz)")
    with atomic_path(path) as tmp:
        if name.endswith((".parquet", ".pq")):
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False, compression="gzip" if name.endswith(".gz") else None)
    return path


def sample_frame(vae: LoadedVAE, tissue: str, n: int, *, seed: int = 0, scale: float = 1.0,
                 units: str = "zscore") -> pd.DataFrame:
    """`n` synthetic samples of `tissue`, IDs `<tissue>-vae-<seed>-<k>`."""
    tissue = vae.tissue(tissue)
    values = to_units(vae, vae.sample(tissue, n, seed, scale=scale), units)
    slug = "".join(ch if ch.isalnum() else "_" for ch in tissue)
    meta = pd.DataFrame({"sample_id": [f"{slug}-vae-{seed}-{k}" for k in range(n)], "tissue": tissue})
    return expression_frame(meta, values, vae.genes)


def shift_frame(vae: LoadedVAE, source: ExpressionSet, from_tissue: str, to_tissue: str, *,
                units: str = "zscore") -> pd.DataFrame:
    """Each row of `source` moved from one tissue to another; `tissue` holds the target."""
    from_tissue, to_tissue = vae.tissue(from_tissue), vae.tissue(to_tissue)
    if len(source.values) == 0:
        raise VAEError(f"no samples of tissue {from_tissue!r} to shift")
    values = to_units(vae, vae.shift(source.values, from_tissue, to_tissue), units)
    meta = pd.DataFrame({"sample_id": source.meta["sample_id"].to_numpy(), "source_tissue": from_tissue,
                         "tissue": to_tissue})
    return expression_frame(meta, values, vae.genes)


def encode_frame(vae: LoadedVAE, source: ExpressionSet) -> pd.DataFrame:
    return latent_frame(source.meta, vae.encode(source.values))
