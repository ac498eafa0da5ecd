"""Gene IDs and gene lists: Ensembl IDs with or without their version, and matching a list to a table.

The paper's gene list names genes `rna_ENSG00000186092.4`; a GCT or another expression table may carry
another version of the same gene, or none, so matching falls back to the ID without its version.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.utils.errors import RnaganError

GENE_PREFIX = "rna_"

# `.4` in `ENSG00000186092.4`; also before a suffix such as GENCODE's `_PAR_Y`, which names another gene.
_VERSION = re.compile(r"\.\d+(?=$|_)")


class ExpressionError(RnaganError, ValueError):
    """Input that cannot be prepared; the message names the file and what is wrong.

    Defined here rather than in training.data.expression (which imports it from here) because a bad gene
    list is the first such input, and training.data.expression imports this module.
    """


def strip_version(gene_id: str) -> str:
    return _VERSION.sub("", gene_id, count=1)


def clean_gene_id(raw: str) -> str:
    """`rna_ENSG00000186092.4` (the paper's gene list) → `ENSG00000186092.4`."""
    gene = raw.strip().strip('"').strip()
    return gene[len(GENE_PREFIX) :] if gene.startswith(GENE_PREFIX) else gene


def read_gene_list(path: str | os.PathLike[str], *, require_header: bool = False) -> list[str]:
    """A CSV with a `Gene` column, or one ID a line; `rna_` prefixes and blank lines are dropped.
    With `require_header`, only the CSV form (a `Gene` column) is accepted."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError) as exc:
        raise ExpressionError(f"{path}: gene list is unreadable ({exc})") from None
    rows = [
        (number, cells)
        for number, cells in enumerate(csv.reader(io.StringIO(text)), start=1)
        if any(c.strip() for c in cells)
    ]
    if not rows:
        raise ExpressionError(f"{path}: gene list is empty")
    header = [c.strip().lower() for c in rows[0][1]]
    if "gene" in header:
        column = header.index("gene")
        rows = rows[1:]
    elif require_header:
        raise ExpressionError(f"{path}: expected a 'Gene' column header on line {rows[0][0]}")
    elif len(header) > 1:
        raise ExpressionError(f"{path}: gene list has several columns but none is named 'Gene'")
    else:
        column = 0
    genes = []
    for number, cells in rows:
        gene = clean_gene_id(cells[column]) if column < len(cells) else ""
        if not gene or any(ch.isspace() for ch in gene):
            raise ExpressionError(f"{path}, line {number}: {gene!r} is not a gene ID")
        genes.append(gene)
    if not genes:
        raise ExpressionError(f"{path}: gene list has a header but no gene IDs")
    return genes


@dataclass(frozen=True)
class GeneMatch:
    rows: np.ndarray  # per listed gene, its row among the kept GCT rows, or -1
    exact: int
    without_version: dict[str, str]  # list ID → GCT name it matched without version
    missing: list[str]


def match_genes(wanted: Sequence[str], available: Sequence[str]) -> GeneMatch:
    """Match each wanted gene to an available row: same ID with version, else same ID without version."""
    exact_row: dict[str, int] = {}
    base_row: dict[str, int] = {}
    for row, name in enumerate(available):
        exact_row.setdefault(name, row)
        base_row.setdefault(strip_version(name), row)
    rows = np.full(len(wanted), -1, dtype=np.int64)
    without_version: dict[str, str] = {}
    missing: list[str] = []
    for i, gene in enumerate(wanted):
        if gene in exact_row:
            rows[i] = exact_row[gene]
        elif strip_version(gene) in base_row:
            rows[i] = base_row[strip_version(gene)]
            without_version[gene] = available[rows[i]]
        else:
            missing.append(gene)
    return GeneMatch(
        rows=rows,
        exact=len(wanted) - len(without_version) - len(missing),
        without_version=without_version,
        missing=missing,
    )


DUPLICATE_RULES = ("error", "sum")


def duplicate_rows(wanted: Sequence[str], available: Sequence[str]) -> dict[str, list[int]]:
    """Listed genes that more than one available row could be, gene → those rows in file order.

    A gene's rows are those of the same name (with version) or, when there is none, those of the same ID
    without version (ENSG….4 and ENSG….5 for a listed ENSG….6). `match_genes` takes the first of them:
    kept silently, a second row's values would be thrown away without a word.
    """
    by_name: dict[str, list[int]] = {}
    by_base: dict[str, list[int]] = {}
    for row, name in enumerate(available):
        by_name.setdefault(name, []).append(row)
        by_base.setdefault(strip_version(name), []).append(row)
    groups = {}
    for gene in wanted:
        rows = by_name.get(gene) or by_base.get(strip_version(gene), [])
        if len(rows) > 1:
            groups[gene] = rows
    return groups
