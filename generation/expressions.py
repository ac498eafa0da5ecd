"""Which expression each tile of a job is drawn from. Resolved per tile index, deterministically, so a
job re-run after a crash asks the generator for exactly the tiles it would have made the first time."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from generation.models import GenerationJob
from training.data.genes import ExpressionError


@dataclass(frozen=True)
class TileInput:
    index: int
    seed: int
    expression: np.ndarray | None
    cohort: str
    sample: str


def tile_seed(job_seed: int, index: int) -> int:
    digest = hashlib.sha256(f"{job_seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:7], "big")  # 56 bits: fits a signed 64-bit column and torch's seed


def read_expression_table(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise ExpressionError(f"{path}: expression file not found")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    sep = "\t" if path.suffix in {".tsv", ".txt"} else ","
    return pd.read_csv(path, sep=sep, index_col=0)


def _table_row(loaded, ref: str) -> tuple[np.ndarray, str, str]:
    path, _, row = ref.rpartition("#")
    if not path:
        raise ExpressionError(f"expression reference {ref!r}: expected FILE#ROW")
    table = read_expression_table(path)
    genes = list(loaded.vae.genes)
    if list(table.columns) != genes:
        missing = len(set(genes) - set(table.columns))
        raise ExpressionError(
            f"{path}: columns are not the VAE's {len(genes)} genes in order ({missing} missing); "
            "run `rnagan align-expression` first"
        )
    if row in table.index:
        values = table.loc[row]
    elif row.isdigit() and int(row) < len(table):
        values = table.iloc[int(row)]
        row = str(table.index[int(row)])
    else:
        raise ExpressionError(f"{path}: no row {row!r} (by label or position; {len(table)} rows)")
    return values.to_numpy(dtype=np.float32), Path(path).stem, row


def plan_inputs(job: GenerationJob, loaded, indices: list[int]) -> list[TileInput]:
    """The seed and expression of each requested tile index of a job."""
    source = job.expression_source
    kinds = GenerationJob.ExpressionSource
    seeds = [tile_seed(job.seed, i) for i in indices]
    if source == kinds.NONE:
        return [TileInput(i, s, None, "", "") for i, s in zip(indices, seeds, strict=True)]
    cohort = Path(loaded.expression_dir).name if getattr(loaded, "expression_dir", None) else ""
    try:
        if source == kinds.SAMPLE:
            vector = np.asarray(loaded.expression_for_sample(job.expression_ref), dtype=np.float32)
            return [TileInput(i, s, vector, cohort, job.expression_ref) for i, s in zip(indices, seeds, strict=True)]
        if source == kinds.RANDOM_SAMPLE:
            # The whole job's draw is fixed by its seed, so tile i always gets the same sample.
            chosen = list(loaded.random_sample_ids(job.requested, seed=job.seed))
            return [
                TileInput(i, s, np.asarray(loaded.expression_for_sample(chosen[i]), dtype=np.float32), cohort, chosen[i])
                for i, s in zip(indices, seeds, strict=True)
            ]
        if source == kinds.EXPRESSION_FILE:
            vector, table_name, row = _table_row(loaded, job.expression_ref)
            return [TileInput(i, s, vector, table_name, row) for i, s in zip(indices, seeds, strict=True)]
        if source == kinds.VAE_TISSUE:
            tissue = job.expression_ref or loaded.tissue
            return [
                TileInput(i, s, np.asarray(loaded.vae_sample_expression(tissue, 1, seed=s), dtype=np.float32)[0],
                          "vae-sampled", tissue)
                for i, s in zip(indices, seeds, strict=True)
            ]
    except ExpressionError:
        raise
    except (KeyError, ValueError, FileNotFoundError) as exc:
        raise ExpressionError(f"job {job.pk}: {source} {job.expression_ref!r}: {exc}") from exc
    raise ExpressionError(f"job {job.pk}: unknown expression source {source!r}")
