"""The study design as pure functions: anchors, blocks and each rater's order with hidden repeats.

- Anchors: every rater rates them (agreement across all raters). They are spread over the cells
  round-robin, so A anchors cover min(A, cells) cells and no cell has two more than another.
- Blocks: the other tiles are dealt round-robin, cell by cell, into ⌈n / block size⌉ blocks, so blocks
  differ by at most one tile and each holds every cell in proportion. Rater k (in invitation order) gets
  block k mod B: with M × B raters every tile has M ratings, a balanced incomplete design. No block size
  means one block: every rater rates every tile (the paper's design).
- Order: each rater's items are shuffled by a generator seeded with the study's seed and the rater's code,
  so the order is stable across reloads and different between raters. R hidden repeats then show R
  distinct, already-shown tiles again, each at least REPEAT_MIN_GAP items after its first showing.
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Sequence

from studies.models import REPEAT_MIN_GAP

Cell = tuple[str, str]


class DesignError(ValueError):
    pass


def rng_for(*parts: object) -> random.Random:
    # A string seed is hashed with SHA-512 by random.Random: stable across processes and Python runs.
    return random.Random(":".join(str(p) for p in parts))


def choose_anchors(cells: dict[Cell, list[str]], n: int, rng: random.Random) -> list[str]:
    """n tile codes, taken round-robin over the sorted cells, a random tile of the cell each time."""
    total = sum(len(codes) for codes in cells.values())
    if n > total:
        raise DesignError(f"{n} anchors asked for, but the study has only {total} tiles")
    pools = {cell: rng.sample(codes, len(codes)) for cell, codes in sorted(cells.items())}
    chosen: list[str] = []
    while len(chosen) < n:
        for cell in sorted(pools):
            if pools[cell] and len(chosen) < n:
                chosen.append(pools[cell].pop())
    return chosen


def split_blocks(cells: dict[Cell, list[str]], block_size: int | None, rng: random.Random) -> list[list[str]]:
    """Deal the tiles into blocks of at most block_size, balanced over cells; at least one block."""
    ordered = [code for cell in sorted(cells) for code in rng.sample(cells[cell], len(cells[cell]))]
    if not ordered:
        return [[]]
    n_blocks = 1 if not block_size else math.ceil(len(ordered) / block_size)
    blocks: list[list[str]] = [[] for _ in range(n_blocks)]
    for i, code in enumerate(ordered):
        blocks[i % n_blocks].append(code)
    return blocks


def repeats_possible(n_items: int) -> int:
    """How many hidden repeats a rater with n_items distinct items can get: one per item shown early enough."""
    return max(0, n_items - REPEAT_MIN_GAP + 1)


def rater_order(items: Sequence[Hashable], repeats: int, rng: random.Random) -> list[tuple[Hashable, bool]]:
    """Shuffled items as (item, is_repeat), with `repeats` repeats each ≥ REPEAT_MIN_GAP after its original.

    A repeat is inserted at a uniform place from REPEAT_MIN_GAP after its original to the end; a later
    insertion only ever pushes an earlier repeat further from its original, so every gap holds.
    """
    if repeats > repeats_possible(len(items)):
        raise DesignError(
            f"{repeats} repeats need at least {repeats + REPEAT_MIN_GAP - 1} distinct items per rater, "
            f"this rater has {len(items)}"
        )
    order: list[tuple[Hashable, bool]] = [(item, False) for item in rng.sample(list(items), len(items))]
    originals = rng.sample(range(len(items) - REPEAT_MIN_GAP + 1), repeats) if repeats else []
    # The items are picked before any insertion: an inserted repeat shifts the later indices, and reading
    # them afterwards could pick one item twice (a duplicate repeat the database then refuses).
    for item in [order[original][0] for original in originals]:
        at = next(i for i, entry in enumerate(order) if entry == (item, False))
        order.insert(rng.randint(at + REPEAT_MIN_GAP, len(order)), (item, True))
    return order
