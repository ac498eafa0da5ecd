"""Writing GCT 1.2 (the format of training.data.gct): byte-for-byte reproducible, written atomically."""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.utils.io import atomic_path


def write_gct(
    path: str | os.PathLike[str],
    *,
    genes: Sequence[str],
    descriptions: Sequence[str],
    samples: Sequence[str],
    values: np.ndarray,
    decimals: int = 4,
) -> Path:
    """Write a genes × samples matrix as GCT 1.2, gzip-compressed when the name ends in `.gz`."""
    path = Path(path)
    values = np.asarray(values)
    if values.shape != (len(genes), len(samples)):
        raise ValueError(f"values has shape {values.shape}, expected ({len(genes)}, {len(samples)}) genes × samples")
    if len(descriptions) != len(genes):
        raise ValueError(f"{len(descriptions)} descriptions for {len(genes)} genes")
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        # No file name or time in the gzip header: equal content gives equal bytes.
        packed = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) if path.suffix == ".gz" else None
        with io.TextIOWrapper(packed or raw, encoding="utf-8", newline="\n") as handle:
            handle.write("#1.2\n")
            handle.write(f"{len(genes)}\t{len(samples)}\n")
            handle.write("Name\tDescription\t" + "\t".join(samples) + "\n")
            fmt = f"%.{decimals}g"
            for gene, description, row in zip(genes, descriptions, values, strict=True):
                handle.write(f"{gene}\t{description}\t" + "\t".join(fmt % v for v in row) + "\n")
    return path
