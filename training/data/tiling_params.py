"""The settings of a tiling run (`rnagan tile-slides`), saved with every tiled slide of a store.

Apart from training.data.tiling so that the CLI can show their defaults without importing NumPy or OpenSlide.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TilingParams:
    tile_size: int = 256
    mpp: float = 0.5  # µm per tile px (0.5 = 20×)
    max_background: float = 0.6  # largest background share of a tile's footprint in the mask
    max_tiles: int = 4000  # per slide, 0 for all
    min_contrast: float = 8.0  # smallest std of grey (0–255) over the tile: glass ≈ 1, H&E tissue 40–90
    quality: int = 90
    seed: int = 0
    assume_mpp: float | None = None  # used only for slides without resolution metadata
    mpp_tolerance: float = 0.05  # read a level as is when within this share of the target
    threshold_min: int = 8  # clamp on Otsu's saturation threshold (0–255)
    threshold_max: int = 40
    reader: str = "auto"  # "openslide" forces OpenSlide's read_region everywhere

    def __post_init__(self) -> None:
        checks = [
            (self.tile_size >= 32, "tile_size must be at least 32"),
            (self.mpp > 0, "mpp must be positive"),
            (0 <= self.max_background <= 1, "max_background must be within [0, 1]"),
            (self.max_tiles >= 0, "max_tiles must be 0 (all) or positive"),
            (self.min_contrast >= 0, "min_contrast must be ≥ 0"),
            (1 <= self.quality <= 100, "quality must be within 1–100"),
            (self.assume_mpp is None or self.assume_mpp > 0, "assume_mpp must be positive"),
            (0 <= self.mpp_tolerance < 0.5, "mpp_tolerance must be within [0, 0.5)"),
            (0 <= self.threshold_min <= self.threshold_max <= 255, "need 0 ≤ threshold_min ≤ threshold_max ≤ 255"),
            (self.reader in ("auto", "openslide"), "reader must be auto or openslide"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
