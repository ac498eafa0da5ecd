"""Light constants the CLI needs to build its help without importing numerical libraries."""

from __future__ import annotations

from pathlib import Path

# The checkout's sibling folder `shared/` holds the real gene list and slide lists.
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
DEFAULT_GENE_LIST = SHARED_DATA / "protein_coding_genes.csv"
DEFAULT_TISSUES: tuple[str, ...] = ("Lung", "Brain - Cortex")
