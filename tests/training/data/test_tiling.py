"""`rnagan tile-slides`: which tiles are kept, at what scale, and how a run survives bad slides and kills."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lmdb
import numpy as np
import openslide
import pytest
from PIL import Image

from tests.training.data.test_slides import draw_tissue
from training.cli.rnagan import main
from training.data.tile_store import TileStore, decode_jpeg
from training.data.tiling import CRASH_ENV, TilingParams, tile_slide, tile_slides
from training.data.wsi import write_pyramidal_tiff

ROOT = Path(__file__).resolve().parents[3]
# Cells of 256 px: full tissue cells, a half-tissue cell (kept) and a 3/4-glass cell (dropped).
BOXES = [(0, 0, 768, 256), (256, 256, 512, 256), (0, 512, 128, 256), (768, 512, 64, 256), (256, 768, 256, 256)]


def store_content(path: Path) -> dict[tuple[str, bytes], bytes]:
    """Every record of every database: tiles (main), meta, slides, store."""
    env = lmdb.open(str(path), readonly=True, lock=False, max_dbs=4)
    content = {}
    with env.begin() as txn:
        content.update({("tiles", k): v for k, v in txn.cursor() if b"/" in k})
    for name in (b"meta", b"slides", b"store"):
        db = env.open_db(name, create=False)
        with env.begin(db=db) as txn:
            content.update({(name.decode(), k): v for k, v in txn.cursor()})
    env.close()
    return content


@pytest.fixture(scope="module")
def slides(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("slides")
    made = {}
    for seed, name in enumerate(["alpha", "beta", "gamma"]):
        boxes = BOXES if name != "beta" else [(0, 0, 1024, 768)]
        made[name] = write_pyramidal_tiff(folder / f"{name}.svs", draw_tissue(1024, 1024, boxes, seed=seed),
                                          mpp=0.5, app_mag=20, min_level_size=256)
    return made


def test_cmu_tile_count_matches_an_independent_count(shared_data, tmp_path):
    path = shared_data / "CMU-1-Small-Region.svs"
    summary = tile_slides([path], tmp_path / "store", TilingParams(max_tiles=0, min_contrast=0), progress=False)
    assert summary.failed == {}

    # Independently: the whole level as RGB, 16 × 16 px blocks averaged, saturation, Otsu by brute force.
    rgb = np.asarray(openslide.OpenSlide(path).read_region((0, 0), 0, (2220, 2967)).convert("RGB"), np.float64)
    cols, rows = 2220 // 256, 2967 // 256
    sat = np.zeros((rows * 16, cols * 16), np.int64)
    for i in range(rows * 16):
        for j in range(cols * 16):
            mean = rgb[i * 16:(i + 1) * 16, j * 16:(j + 1) * 16].reshape(-1, 3).mean(axis=0)
            sat[i, j] = round((mean.max() - mean.min()) / mean.max() * 255) if mean.max() > 0 else 0
    spreads = []
    for t in range(255):
        low, high = sat[sat <= t], sat[sat > t]
        spreads.append(len(low) * len(high) * (low.mean() - high.mean()) ** 2 if len(low) and len(high) else -1)
    threshold = min(max(int(np.argmax(spreads)), 8), 40)
    kept = {(col * 256, row * 256) for row in range(rows) for col in range(cols)
            if (sat[row * 16:(row + 1) * 16, col * 16:(col + 1) * 16] <= threshold).mean() <= 0.6}

    with TileStore(tmp_path / "store") as store:
        record = store.slides()["CMU-1-Small-Region"]
        keys = store.keys("CMU-1-Small-Region")
        assert record["mask"]["threshold"] == threshold
        assert record["count"] == len(keys) == len(kept) > 20
        assert {tuple(int(v) for v in k.split("/")[1].split("_")) for k in keys} == kept
        for key in keys:
            tile = decode_jpeg(store.jpeg(key))
            assert tile.shape == (256, 256, 3) and tile.dtype == np.uint8
            # The stored pixels themselves, judged at the mask's scale, are no more than 60 % glass
            # (a little slack for JPEG).
            blocks = tile.reshape(16, 16, 16, 16, 3).mean(axis=(1, 3))
            tile_sat = (blocks.max(-1) - blocks.min(-1)) / blocks.max(-1) * 255
            assert (tile_sat <= threshold).mean() <= 0.6 + 0.03, key
            meta = store.meta(key)
            assert meta["tissue_fraction"] >= 0.4 and meta["mpp"] == pytest.approx(0.499)


def test_synthetic_slide_keeps_cells_by_their_whole_footprint(slides, tmp_path):
    tile_slides([slides["alpha"]], tmp_path / "s", TilingParams(max_tiles=0), progress=False)
    with TileStore(tmp_path / "s") as store:
        keys = set(store.keys("alpha"))
    expected = {(0, 0), (256, 0), (512, 0), (256, 256), (512, 256), (0, 512), (256, 768)}
    assert keys == {f"alpha/{x}_{y}" for x, y in expected}


def test_a_40x_slide_without_a_20x_level_gives_the_tiles_of_a_20x_scan(tmp_path):
    scene = draw_tissue(2048, 2048, [(2 * x, 2 * y, 2 * w, 2 * h) for x, y, w, h in BOXES], seed=7)
    at_20x = np.asarray(Image.fromarray(scene).reduce(2))
    only_40x = write_pyramidal_tiff(tmp_path / "s40.svs", scene, mpp=0.25, app_mag=40, min_level_size=4096)
    pyramid_40x = write_pyramidal_tiff(tmp_path / "p40.svs", scene, mpp=0.25, app_mag=40, min_level_size=256)
    reference = write_pyramidal_tiff(tmp_path / "r20.svs", at_20x, mpp=0.5, app_mag=20, min_level_size=4096)
    tile_slides([only_40x, pyramid_40x, reference], tmp_path / "store", TilingParams(max_tiles=0), progress=False)
    with TileStore(tmp_path / "store") as store:
        records = store.slides()
        assert (records["s40"]["level"], records["s40"]["read_size"]) == (0, 512)
        assert (records["p40"]["level"], records["p40"]["read_size"]) == (1, 256)
        reference_tiles = {k.split("/")[1]: decode_jpeg(store.jpeg(k)) for k in store.keys("r20")}
        assert len(reference_tiles) == 7
        for slide_id in ("s40", "p40"):
            tiles = {}
            for key in store.keys(slide_id):
                x, y = (int(v) // 2 for v in key.split("/")[1].split("_"))  # level-0 px of a 40× slide
                tiles[f"{x}_{y}"] = decode_jpeg(store.jpeg(key))
                assert store.meta(key)["mpp"] == pytest.approx(0.5)
            assert tiles.keys() == reference_tiles.keys(), slide_id
            for name, tile in tiles.items():
                assert tile.shape == (256, 256, 3)
                tile, expected = tile.astype(int), reference_tiles[name]
                # Two JPEG generations of sharp purple-on-pink nuclei differ by ~3 grey levels; a tile
                # off by only 2 px differs by ~20.
                difference = np.abs(tile - expected).mean()
                assert difference < 4, (slide_id, name, difference)
                assert np.abs(tile[:, 2:] - expected[:, :-2]).mean() > 3 * difference


def test_max_tiles_is_a_seeded_choice_and_low_contrast_tiles_are_dropped(tmp_path):
    scene = draw_tissue(1024, 1024, [(0, 0, 1024, 1024)], seed=2)
    scene[:256, :] = (232, 150, 190)  # flat pink: tissue-coloured, no texture
    path = write_pyramidal_tiff(tmp_path / "flat.svs", scene, mpp=0.5, min_level_size=4096)

    def keys(out, **params):
        summary = tile_slides([path], tmp_path / out, TilingParams(**params), progress=False)
        assert summary.failed == {}
        with TileStore(tmp_path / out) as store:
            return store.keys("flat"), store.slides()["flat"]

    every, record = keys("all", max_tiles=0)
    assert len(every) == 12 and all(not k.endswith("_0") for k in every)  # the flat top row is gone
    assert (record["candidates"], record["low_contrast"]) == (16, 4)
    five, record = keys("five", max_tiles=5)
    assert len(five) == 5 and set(five) <= set(every) and record["count"] == 5
    assert keys("five-again", max_tiles=5)[0] == five
    assert keys("other-seed", max_tiles=5, seed=1)[0] != five


def test_a_slide_without_resolution_fails_by_name_and_works_with_assume_mpp(slides, tmp_path, capsys):
    bare = write_pyramidal_tiff(tmp_path / "bare.tiff", draw_tissue(768, 768, [(0, 0, 768, 768)]),
                                mpp=None, app_mag=None, min_level_size=4096)
    assert main(["tile-slides", str(bare), str(slides["beta"]), "--out", str(tmp_path / "s"), "--no-progress"]) == 1
    output = capsys.readouterr().out
    assert "failed 1" in output and "bare.tiff: no resolution metadata" in output and "--assume-mpp" in output
    with TileStore(tmp_path / "s") as store:
        records = store.slides()
    assert records["bare"]["status"] == "failed" and records["beta"]["status"] == "complete"

    assert main(["tile-slides", str(bare), "--out", str(tmp_path / "s"), "--assume-mpp", "0.5",
                 "--no-progress"]) == 0
    with TileStore(tmp_path / "s") as store:
        records = store.slides()
        assert records["bare"]["mpp_source"] == "assumed" and len(store.keys("bare")) == records["bare"]["count"] == 9


def test_a_truncated_slide_is_reported_and_the_others_are_tiled(slides, tmp_path, capsys):
    data = slides["beta"].read_bytes()
    broken = tmp_path / "broken.svs"
    broken.write_bytes(data[: len(data) // 3])
    folder = tmp_path / "in"
    folder.mkdir()
    for path in (broken, slides["alpha"], slides["gamma"]):
        (folder / path.name).write_bytes(path.read_bytes())
    assert main(["tile-slides", str(folder), "--out", str(tmp_path / "s"), "--no-progress", "--tissue", "Lung"]) == 1
    output = capsys.readouterr().out
    assert "tiled 2 slide(s)" in output and "failed 1" in output and "FAILED broken.svs:" in output
    with TileStore(tmp_path / "s") as store:
        records = store.slides()
        assert records["broken"]["status"] == "failed" and store.keys("broken") == []
        assert {records[s]["status"] for s in ("alpha", "gamma")} == {"complete"}
        assert records["alpha"]["tissue"] == "Lung"


def test_a_slide_with_a_corrupt_tile_fails_and_leaves_none_of_its_tiles(slides, tmp_path):
    import tifffile

    path = write_pyramidal_tiff(tmp_path / "corrupt.svs", draw_tissue(512, 2560, [(0, 0, 2560, 512)]),
                                min_level_size=128)
    with tifffile.TiffFile(path) as tif:
        # The last tile of level 0: the mask comes from level 2, and the first read block (8 columns)
        # is tiled and written before this tile is read.
        offset = tif.pages[0].dataoffsets[19]
    data = bytearray(path.read_bytes())
    data[offset:offset + 64] = bytes(64)
    path.write_bytes(bytes(data))
    messages = [kind for kind, _ in tile_slide(path, TilingParams(max_tiles=0), chunk_size=2)]
    assert messages == ["chunk"] * 8 + ["failed"]  # 16 tiles were sent before the bad one was read
    summary = tile_slides([path, slides["beta"]], tmp_path / "s", TilingParams(max_tiles=0), progress=False,
                          chunk_size=2)
    assert list(summary.failed) == ["corrupt"] and "corrupt.svs" in summary.failed["corrupt"]
    assert summary.tiled == {"beta": 12}
    with TileStore(tmp_path / "s") as store:
        assert store.slides()["corrupt"]["status"] == "failed" and store.keys("corrupt") == []


def test_a_killed_run_resumes_to_the_same_bytes_as_an_uninterrupted_one(slides, tmp_path):
    paths = [slides["alpha"], slides["beta"], slides["gamma"]]
    params = TilingParams(max_tiles=10)
    tile_slides(paths, tmp_path / "whole", params, progress=False, chunk_size=3)

    code = (f"from training.data.tiling import TilingParams, tile_slides\n"
            f"tile_slides({[str(p) for p in paths]!r}, {str(tmp_path / 'killed')!r}, TilingParams(max_tiles=10), "
            "progress=False, chunk_size=3)\n")
    env = {**os.environ, CRASH_ENV: "beta:2"}  # dies after beta's second chunk is committed
    killed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, timeout=300)
    assert killed.returncode == 75, killed.stderr.decode()
    with TileStore(tmp_path / "killed") as store:
        records = store.slides()
        assert records["alpha"]["status"] == "complete" and records["beta"]["status"] == "partial"
        assert "gamma" not in records and len(store.keys("beta")) == 6

    resumed = tile_slides(paths, tmp_path / "killed", params, progress=False)
    assert resumed.skipped == ["alpha"] and set(resumed.tiled) == {"beta", "gamma"}
    assert store_content(tmp_path / "killed") == store_content(tmp_path / "whole")

    again = tile_slides(paths, tmp_path / "killed", params, progress=False)
    assert sorted(again.skipped) == ["alpha", "beta", "gamma"] and again.tiles == 0


def test_changed_params_redo_a_slide_and_replace_its_tiles(slides, tmp_path):
    tile_slides([slides["beta"]], tmp_path / "s", TilingParams(max_tiles=0), progress=False)
    redone = tile_slides([slides["beta"]], tmp_path / "s", TilingParams(max_tiles=4), progress=False)
    assert redone.tiled == {"beta": 4}
    with TileStore(tmp_path / "s") as store:
        assert len(store.keys("beta")) == 4 and store.slides()["beta"]["params"]["max_tiles"] == 4


def test_two_workers_write_what_one_writes(slides, tmp_path):
    paths = list(slides.values())
    serial = tile_slides(paths, tmp_path / "one", TilingParams(), workers=1, progress=False)
    parallel = tile_slides(paths, tmp_path / "two", TilingParams(), workers=2, progress=False)
    assert parallel.tiled == serial.tiled and parallel.failed == {}
    assert store_content(tmp_path / "one") == store_content(tmp_path / "two")


def test_tiles_info_and_export(slides, tmp_path, capsys):
    tile_slides([slides["alpha"], slides["beta"]], tmp_path / "s", TilingParams(), progress=False,
                tissue_of={"alpha": "Lung"}.get)
    assert main(["tiles-info", str(tmp_path / "s"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["tissues"] == {"Lung": {"slides": 1, "tiles": 7}, "(none)": {"slides": 1, "tiles": 12}}
    assert info["slides"]["alpha"]["status"] == "complete" and info["tiles"] == 19
    assert main(["tiles-info", str(tmp_path / "s")]) == 0
    assert "Lung: 1 slide(s), 7 tiles" in capsys.readouterr().out

    assert main(["tiles-export", str(tmp_path / "s"), "--out", str(tmp_path / "png"), "--slide", "alpha",
                 "--limit", "3"]) == 0
    written = sorted((tmp_path / "png" / "alpha").iterdir())
    assert len(written) == 3 and written[0].name == "0_0.png"
    with Image.open(written[0]) as image:
        assert image.mode == "RGB" and image.size == (256, 256)
    assert main(["tiles-info", str(tmp_path / "nowhere")]) == 2


def test_tissue_labels_come_from_gtex_sample_attributes(slides, tmp_path, capsys):
    attributes = tmp_path / "SampleAttributesDS.txt"
    attributes.write_text("SAMPID\tSMTS\tSMTSD\n"
                          "GTEX-1117F-0226-SM-5GZZ7\tLung\tLung\n"
                          "GTEX-11DXY-0526-SM-5EGGQ\tBrain\tBrain - Cortex\n")
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("GTEX-1117F-0226", "GTEX-11DXY-0526-SM-5EGGQ", "GTEX-UNKNOWN-0001"):
        (folder / f"{name}.svs").write_bytes(slides["beta"].read_bytes())
    assert main(["tile-slides", str(folder), "--out", str(tmp_path / "s"), "--attributes", str(attributes),
                 "--no-progress", "--max-tiles", "2"]) == 0
    assert "no tissue label for 1 slide(s): GTEX-UNKNOWN-0001" in capsys.readouterr().err
    with TileStore(tmp_path / "s") as store:
        tissues = {slide: record["tissue"] for slide, record in store.slides().items()}
    assert tissues == {"GTEX-1117F-0226": "Lung", "GTEX-11DXY-0526-SM-5EGGQ": "Brain - Cortex",
                       "GTEX-UNKNOWN-0001": None}

    # Relabelling (here by the coarser SMTS) updates the index without tiling anything again.
    assert main(["tile-slides", str(folder), "--out", str(tmp_path / "s"), "--attributes", str(attributes),
                 "--tissue-column", "SMTS", "--no-progress", "--max-tiles", "2"]) == 0
    assert "tiled 0 slide(s)" in capsys.readouterr().out
    with TileStore(tmp_path / "s") as store:
        assert store.slides()["GTEX-11DXY-0526-SM-5EGGQ"]["tissue"] == "Brain"
