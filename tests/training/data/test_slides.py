"""Opening slides, choosing the level for 0.5 µm/px, reading pixels, and the saturation/Otsu tissue mask."""

from __future__ import annotations

import numpy as np
import openslide
import pytest

from training.data.slides import (
    Grid,
    SlideError,
    SlideSource,
    TiffLevelReader,
    choose_resolution,
    find_slides,
    resize_tile,
    slide_mpp,
)
from training.data.tissue_mask import otsu_threshold, saturation, tissue_mask
from training.data.wsi import write_pyramidal_tiff

GLASS = (243, 241, 244)
PINK = np.array([232, 150, 190], np.float32)
PURPLE = np.array([105, 55, 150], np.float32)


def draw_tissue(height: int, width: int, boxes: list[tuple[int, int, int, int]], seed: int = 0) -> np.ndarray:
    """White glass with faint noise; inside each (x, y, w, h) box, pink stroma with purple nuclei."""
    rng = np.random.default_rng(seed)
    image = np.empty((height, width, 3), np.float32)
    image[...] = GLASS
    image += rng.normal(0, 1.5, (height, width, 1))
    for x, y, w, h in boxes:
        nuclei = rng.random((h // 8 + 1, w // 8 + 1)) > 0.7
        nuclei = np.repeat(np.repeat(nuclei, 8, axis=0), 8, axis=1)[:h, :w]
        texture = PINK * (0.97 + 0.06 * rng.random((h, w, 1), np.float32))
        image[y:y + h, x:x + w] = np.where(nuclei[..., None], PURPLE, texture)
    return np.clip(image, 0, 255).astype(np.uint8)


def resolution(mpp, downsamples, **kwargs):
    kwargs = {"target_mpp": 0.5, "tile_size": 256, "tolerance": 0.05} | kwargs
    return choose_resolution(mpp, "openslide.mpp-x", downsamples, **kwargs)


def test_a_20x_slide_is_read_natively_at_level_0(shared_data):
    slide = openslide.OpenSlide(shared_data / "CMU-1-Small-Region.svs")
    mpp, source = slide_mpp(slide, None)
    assert (mpp, source) == (0.499, "openslide.mpp-x")
    res = resolution(mpp, slide.level_downsamples)
    assert (res.level, res.read_size, res.tile_size) == (0, 256, 256)
    assert res.tile_mpp == pytest.approx(0.499)
    grid = Grid.of(slide.level_dimensions[0], res)
    assert (grid.cols, grid.rows) == (2220 // 256, 2967 // 256)
    assert grid.origin(3, 2) == (768, 512)


def test_a_40x_slide_uses_its_2x_level_or_reads_512_px_at_level_0():
    with_20x = resolution(0.25, [1.0, 2.0, 4.0])
    assert (with_20x.level, with_20x.read_size) == (1, 256)
    assert with_20x.step0 == 512
    without_20x = resolution(0.25, [1.0, 4.0, 16.0])
    assert (without_20x.level, without_20x.read_size) == (0, 512)
    assert without_20x.tile_mpp == pytest.approx(0.5)
    # A nominal 40× scanner reporting 0.2527 µm/px is within tolerance of its 2× level.
    assert resolution(0.2527, [1.0, 2.0002]).read_size == 256


def test_a_slide_off_the_nominal_scale_is_resampled_to_the_target():
    ndpi_20x = resolution(0.4416, [1.0, 4.0])  # Hamamatsu "20×" is 0.44 µm/px
    assert (ndpi_20x.level, ndpi_20x.read_size) == (0, round(256 * 0.5 / 0.4416))
    assert ndpi_20x.tile_mpp == pytest.approx(0.5, rel=0.005)


def test_a_slide_coarser_than_the_target_is_refused():
    with pytest.raises(SlideError, match="coarser than the 0.5"):
        resolution(1.0, [1.0, 4.0])


def test_mpp_comes_from_mpp_x_then_objective_power_then_the_assumption():
    assert slide_mpp({"openslide.mpp-x": "0.2520", "openslide.objective-power": "40"}, None) == (
        0.252, "openslide.mpp-x")
    assert slide_mpp({"openslide.objective-power": "20"}, None) == (0.5, "openslide.objective-power")
    assert slide_mpp({"openslide.objective-power": "40"}, 0.3) == (0.25, "openslide.objective-power")
    assert slide_mpp({}, 0.25) == (0.25, "assumed")
    with pytest.raises(SlideError, match="--assume-mpp"):
        slide_mpp({"openslide.mpp-x": "0"}, None)


def test_otsu_matches_a_brute_force_search():
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(12, 4, 5000), rng.normal(120, 30, 3000)]).clip(0, 255).astype(np.uint8)
    best, best_t = -1.0, None
    for t in range(255):
        low, high = values[values <= t], values[values > t]
        if len(low) and len(high):
            spread = len(low) * len(high) * (low.mean() - high.mean()) ** 2
            if spread > best:
                best, best_t = spread, t
    assert otsu_threshold(values) == best_t
    assert 20 < best_t < 100


def test_saturation_is_zero_for_grey_and_high_for_stain():
    pixels = np.array([[[255, 255, 255], [128, 128, 128], [0, 0, 0], [232, 150, 190], [105, 55, 150]]], np.uint8)
    assert saturation(pixels).tolist() == [[0, 0, 0, 90, 162]]


def test_resize_tile_averages_whole_factors_and_keeps_colour():
    block = np.zeros((512, 512, 3), np.uint8)
    block[:, :, 0] = 200
    block[::2, :, 2] = 100  # alternate rows: blue averages to 50
    tile = resize_tile(block, 256)
    assert tile.shape == (256, 256, 3)
    assert np.all(tile[..., 0] == 200) and np.all(tile[..., 2] == 50)


def test_direct_tiff_reads_equal_openslide_on_a_real_aperio_slide(shared_data):
    # CMU's level is stored in 240 px tiles, so 256 px reads straddle up to four of them.
    with SlideSource(shared_data / "CMU-1-Small-Region.svs") as source:
        fast = source.reader(0)
        assert isinstance(fast, TiffLevelReader)
        for x, y in [(0, 0), (230, 470), (1024, 2048), (2220 - 256, 2967 - 256)]:
            expected = np.asarray(source.slide.read_region((x, y), 0, (256, 256)).convert("RGB"))
            assert np.array_equal(fast.read(x, y, 256, 256), expected), (x, y)


def test_direct_tiff_reads_equal_openslide_on_a_pyramid_level(tmp_path):
    path = write_pyramidal_tiff(tmp_path / "p.tiff", draw_tissue(1536, 1280, [(100, 200, 900, 1000)]), mpp=0.25,
                                app_mag=40, min_level_size=256)
    with SlideSource(path) as source:
        assert source.slide.level_downsamples[:2] == (1.0, 2.0)
        fast, slow = source.reader(1), SlideSource(path, reader="openslide").reader(1)
        assert fast.name == "tiff" and slow.name == "openslide"
        assert np.array_equal(fast.read(37, 101, 300, 260), slow.read(37, 101, 300, 260))


def test_cmu_mask_puts_glass_in_the_background_and_tissue_in_the_foreground(shared_data):
    with SlideSource(shared_data / "CMU-1-Small-Region.svs") as source:
        res = resolution(0.499, source.slide.level_downsamples)
        mask = tissue_mask(source, Grid.of(source.slide.level_dimensions[0], res), threshold_min=8,
                           threshold_max=40)
    fraction = mask.background / mask.samples
    assert fraction.shape == (11, 8)
    assert 8 <= mask.threshold <= 40 and mask.threshold == min(max(mask.otsu, 8), 40)
    assert np.delete(fraction[:, :2], 4, axis=0).min() > 0.9  # the left two columns are glass but for
    assert fraction[4, 1] < 0.9  # the thin strand of tissue that crosses row 4
    assert fraction[3:, 4].max() < 0.1  # the strip of tissue down the middle


def test_mask_measures_the_whole_footprint_of_each_cell(tmp_path):
    # Top row: 75 % tissue, 25 % (a bottom-left quarter: its top-left corner pixel is glass), none.
    # Bottom row: all tissue. Each fraction is the share of the cell's whole footprint.
    boxes = [(0, 0, 256, 192), (256, 0 + 128, 128, 128), (0, 256, 768, 256)]
    path = write_pyramidal_tiff(tmp_path / "m.tiff", draw_tissue(512, 768, boxes), mpp=0.5, min_level_size=4096)
    with SlideSource(path) as source:
        res = resolution(0.5, source.slide.level_downsamples)
        mask = tissue_mask(source, Grid.of(source.slide.level_dimensions[0], res), threshold_min=8,
                           threshold_max=40)
    np.testing.assert_allclose(mask.background / mask.samples, [[0.25, 0.75, 1.0], [0.0, 0.0, 0.0]], atol=0.02)


def test_an_unreadable_file_is_a_slide_error_naming_it(tmp_path):
    bad = tmp_path / "broken.svs"
    bad.write_bytes(b"not a slide at all" * 100)
    with pytest.raises(SlideError, match="broken.svs"):
        SlideSource(bad)


def test_find_slides_scans_folders_for_slide_files(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ["a/one.svs", "a/two.TIFF", "three.ndpi", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    found = find_slides([tmp_path, tmp_path / "three.ndpi"])
    assert [p.name for p in found] == ["one.svs", "two.TIFF", "three.ndpi"]
    with pytest.raises(FileNotFoundError, match="missing.svs"):
        find_slides([tmp_path / "missing.svs"])
