"""The tile pool a game deals from: which catalog tiles, whether a game can be dealt, kept per process.

Reading the whole catalog for every game started would cost one query per start on a small catalog and
tens of milliseconds on a GTEx-sized one (hundreds of thousands of tiles), so each web process keeps the
pool for POOL_TTL_S seconds. A pool that cannot deal a game yet is never kept, so a catalog being filled
shows up at once. Staleness is bounded both ways: tiles activated since the pool was read join within
the TTL, and a tile deactivated (or dealt to its last allowed game) since is caught when the game's
rounds are inserted (the insert keeps only active tiles with exposures left), which makes the dealer
forget the pool and deal again.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from generation.models import Tile

REAL = Tile.Source.REAL.value
GAN = Tile.Source.GAN.value
RNAGAN = Tile.Source.RNAGAN.value
# The noise ablation is a training control, not one of the quiz's two generators.
GAME_SOURCES = (REAL, GAN, RNAGAN)
SOURCE_LABELS = {REAL: "Real", GAN: "GAN", RNAGAN: "RNA-GAN"}

POOL_TTL_S = 30.0

Cell = tuple[str, str]  # (source, tissue)


def source_minimums(n: int) -> dict[str, int]:
    """Tiles of each source a game of n rounds may need.

    Each round's source is drawn independently (real with probability ½, else GAN or RNA-GAN), so a game
    may, rarely, be all of one source: the pool must hold n of each for every draw to be dealt as drawn.
    """
    return dict.fromkeys(GAME_SOURCES, n)


def max_exposures() -> int:
    from django.conf import settings

    return int(getattr(settings, "RNAGAN_TILE_MAX_EXPOSURES", 50))


def eligible_tissues(cells: Iterable[Cell]) -> list[str]:
    """Tissues with tiles of every game source.

    A tissue drawn only from real tiles (no generator trained on it yet) would give the answer away, so
    such tissues stay out of the game entirely.
    """
    present: dict[str, set[str]] = {}
    for source, tissue in cells:
        present.setdefault(tissue, set()).add(source)
    return sorted(t for t, sources in present.items() if sources >= set(GAME_SOURCES))


def playable_tissues(counts: Mapping[Cell, int], *, n: int, sources: Iterable[str] = GAME_SOURCES) -> list[str]:
    """The most tissues a game of n rounds can spread over without the tissue telling the source.

    Rounds go round-robin over T tissues, so a tissue gets up to ⌈n/T⌉ rounds, any of which may draw any
    source. A tissue holding fewer than ⌈n/T⌉ tiles of some source would have to hand that source's rounds
    to another tissue, and then the short tissue's rounds lean towards the other sources: a player who
    answers by tissue beats chance without looking (real tiles run short first, since real is drawn with
    probability ½ and each generator with ¼). So a tissue plays only if every source has ⌈n/T⌉ tiles in it.
    Dropping a tissue raises ⌈n/T⌉ for the rest, so this repeats until nothing changes; a tissue dropped
    at some T would fail at any smaller T too, so what remains is the largest such set.
    """
    sources = tuple(sources)
    tissues = sorted({t for (_, t) in counts})
    while tissues:
        need = -(-n // len(tissues))
        keep = [t for t in tissues if all(counts.get((s, t), 0) >= need for s in sources)]
        if keep == tissues:
            break
        tissues = keep
    return tissues


@dataclass(frozen=True)
class PoolStatus:
    n: int
    tissues: list[str]  # tissues with tiles of every source
    available: dict[str, int]  # per source, in those tissues
    needed: dict[str, int]
    playable: list[str]  # the tissues a game of n can be dealt over (see playable_tissues)
    generators_playable: bool  # when not ready: would the generators' tiles alone suffice (real pool short)

    @property
    def ready(self) -> bool:
        return bool(self.playable)

    @property
    def real_pool_dry(self) -> bool:
        return not self.ready and self.generators_playable

    def shortfall_message(self) -> str:
        if self.real_pool_dry:
            return (f"No new game can start: the pool of real tiles has run dry. Each real tile is shown in at "
                    f"most {max_exposures()} games, and only {self.available[REAL]} real tiles have games "
                    f"left, while a game of {self.n} may need {self.needed[REAL]} (and as many in each tissue "
                    f"it spreads over). New real tiles must be imported before play can go on.")
        have = ", ".join(f"{self.available[s]} {SOURCE_LABELS[s]}" for s in GAME_SOURCES)
        need = ", ".join(f"{self.needed[s]} {SOURCE_LABELS[s]}" for s in GAME_SOURCES)
        return (f"The tile catalog is too small for a game of {self.n}: it needs at least {need} tiles in "
                f"tissues that have all three kinds (⌈{self.n}/T⌉ of each kind in each of the T tissues a "
                f"game spreads over), and has {have}.")


def pool_status_from(counts: Mapping[Cell, int], *, n: int) -> PoolStatus:
    """The pool's readiness from tile counts keyed (source, tissue)."""
    tissues = eligible_tissues(cell for cell, count in counts.items() if count)
    available = {s: sum(counts.get((s, t), 0) for t in tissues) for s in GAME_SOURCES}
    return PoolStatus(
        n=n, tissues=tissues, available=available, needed=source_minimums(n),
        playable=(playable := playable_tissues(counts, n=n)),
        # Only a pool that cannot deal asks whether the real tiles are the reason: not on every game start.
        generators_playable=not playable and bool(
            playable_tissues(counts, n=n, sources=(s for s in GAME_SOURCES if s != REAL))),
    )


@dataclass(frozen=True)
class Pool:
    """Active tile ids per (source, tissue), ascending, with a set of each cell for membership tests."""

    cells: dict[Cell, list[int]]
    members: dict[Cell, frozenset[int]] = field(repr=False)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[int, str, str]]) -> Pool:
        cells: dict[Cell, list[int]] = {}
        for tile_id, source, tissue in rows:
            if source in GAME_SOURCES:
                cells.setdefault((source, tissue), []).append(tile_id)
        for ids in cells.values():
            ids.sort()
        return cls(cells=cells, members={cell: frozenset(ids) for cell, ids in cells.items()})

    def counts(self) -> Counter:
        return Counter({cell: len(ids) for cell, ids in self.cells.items()})

    def status(self, *, n: int) -> PoolStatus:
        return pool_status_from(self.counts(), n=n)


def pool_read() -> Pool:
    """The pool as the database has it now (one query): active tiles with exposures left."""
    return Pool.from_rows(Tile.objects.filter(active=True, source__in=GAME_SOURCES, exposures__lt=max_exposures())
                          .values_list("id", "source", "tissue"))


# (read at, pool) of this process; one assignment replaces it, so threads need no lock.
_kept: tuple[float, Pool] | None = None


def pool_cached(*, n: int) -> Pool:
    """The pool, read at most once per POOL_TTL_S per process while it can deal a game of n rounds."""
    global _kept
    now = time.monotonic()
    kept = _kept
    # A pool kept for smaller games may be too small for this one: then the database may have more.
    if kept is not None and now - kept[0] < POOL_TTL_S and kept[1].status(n=n).ready:
        return kept[1]
    fresh = pool_read()
    _kept = (now, fresh) if fresh.status(n=n).ready else None
    return fresh


def pool_forget() -> None:
    """Make the next `pool_cached()` read the database (a dealt tile turned out inactive; tests add tiles)."""
    global _kept
    _kept = None


def pool_status(*, n: int) -> PoolStatus:
    """Whether a game of n rounds can be dealt (from the kept pool when there is one)."""
    return pool_cached(n=n).status(n=n)
