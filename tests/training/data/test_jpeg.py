"""JPEG history: the slides' compression is read from their tables and repeated exactly on other pixels."""

from __future__ import annotations

import numpy as np
import pytest

from training.data.jpeg import (
    JpegHistory,
    encode_store_jpeg,
    estimate_quality,
    jpeg_round_trip,
    slide_jpeg_history,
)
from training.data.slides import TiffLevelReader
from training.data.tile_store import TileStore
from training.data.tiling import tile_slides
from training.data.tiling_params import TilingParams
from training.data.wsi import write_pyramidal_tiff


def _pixels(side: int, seed: int = 0) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    field = gaussian_filter(rng.random((side, side)), 2.0)[..., None]
    return np.clip(120 + 400 * (field - 0.5) * np.array([1.0, 0.6, 0.8]) + rng.normal(0, 4, (side, side, 3)),
                   0, 255).astype(np.uint8)


@pytest.mark.parametrize("quality", [55, 70, 80, 95])
def test_the_quality_is_read_back_from_the_tables(quality):
    assert estimate_quality(encode_store_jpeg(_pixels(64), quality)) == (quality, True)


def test_a_round_trip_at_the_slides_history_gives_the_slides_own_pixels(tmp_path):
    image = _pixels(1024)
    path = write_pyramidal_tiff(tmp_path / "GTEX-AAAA-0001.tiff", image, quality=75)
    history = slide_jpeg_history(path, (1024, 1024))
    assert history == JpegHistory(quality=75, subsampling=(2, 2), colorspace="ycbcr", exact=True)
    reader = TiffLevelReader(path, 0)
    try:
        decoded = reader.read(256, 512, 256, 256)
    finally:
        reader.close()
    np.testing.assert_array_equal(jpeg_round_trip(image[512:768, 256:512], history), decoded)
    assert jpeg_round_trip(image, None) is image


def test_tiling_records_each_slides_history_and_none_when_the_tiles_are_resampled(tmp_path):
    slides = tmp_path / "slides"
    slides.mkdir()
    write_pyramidal_tiff(slides / "GTEX-AAAA-0001.tiff", _pixels(1024), quality=85)
    write_pyramidal_tiff(slides / "GTEX-AAAA-0002.tiff", _pixels(1024, 1), quality=85, mpp=0.25, app_mag=40,
                         min_level_size=4096)
    tile_slides(sorted(slides.iterdir()), tmp_path / "store", TilingParams(max_tiles=0, min_contrast=0),
                progress=False)
    with TileStore(tmp_path / "store") as store:
        records = store.slides()
    assert records["GTEX-AAAA-0001"]["jpeg_history"]["quality"] == 85
    # A 40× slide without a 20× level is read at 512 px and averaged down: no 8 × 8 trace survives.
    assert records["GTEX-AAAA-0002"]["jpeg_history"] is None
