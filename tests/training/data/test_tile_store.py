"""The LMDB tile store and TileDataset: layout, single-writer transactions, RGB order, filters, expression join."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import openslide
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from tests.training.data.test_slides import draw_tissue
from training.data import tile_store as tiles
from training.data.dataset import TileDataset
from training.data.expression import PreparedExpression
from training.data.scaler import Scaler
from training.data.tile_store import TileStore, TileStoreWriter, decode_jpeg, dumps
from training.data.tiling import TilingParams, tile_slides
from training.data.wsi import write_pyramidal_tiff

RED, BLUE = (200, 40, 60), (50, 40, 210)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """Three 768² slides: "red" (left third red, the rest blue), "lung", and "liver"; max 6 tiles a slide."""
    folder = tmp_path_factory.mktemp("tiles")
    scene = draw_tissue(768, 768, [(0, 0, 768, 768)], seed=1)
    noise = np.random.default_rng(0).integers(-25, 25, (768, 768, 1))
    scene[:, :256] = np.clip(np.array(RED) + noise[:, :256], 0, 255)
    scene[:, 256:] = np.clip(np.array(BLUE) + noise[:, 256:], 0, 255)
    slides = {"red": write_pyramidal_tiff(folder / "red.svs", scene, min_level_size=4096)}
    for seed, name in enumerate(["lung", "liver"], start=2):
        slides[name] = write_pyramidal_tiff(folder / f"{name}.svs", draw_tissue(768, 768, [(0, 0, 768, 768)], seed),
                                            min_level_size=4096)
    tissue = {"red": "Lung", "lung": "Lung", "liver": "Liver"}
    summary = tile_slides(list(slides.values()), folder / "store", TilingParams(max_tiles=6), progress=False,
                          tissue_of=tissue.get)
    assert summary.tiled == {"red": 6, "lung": 6, "liver": 6}
    return folder / "store", slides


def test_store_layout_keys_meta_and_slide_index(store):
    path, _ = store
    with TileStore(path) as reader:
        records = reader.slides()
        assert set(records) == {"red", "lung", "liver"}
        keys = reader.keys("lung")
        assert len(keys) == 6 and all(k.startswith("lung/") for k in keys)
        x, y = (int(v) for v in keys[0].split("/")[1].split("_"))
        assert x % 256 == 0 and y % 256 == 0
        assert reader.jpeg(keys[0])[:3] == b"\xff\xd8\xff"
        meta = reader.meta(keys[0])
        assert {k: meta[k] for k in ("slide", "x", "y", "level", "size", "downsample", "mpp")} == {
            "slide": "lung", "x": x, "y": y, "level": 0, "size": 256, "downsample": 1.0, "mpp": 0.5}
        assert 0.4 <= meta["tissue_fraction"] <= 1 and meta["contrast"] >= 8
        record = records["liver"]
        assert (record["status"], record["tissue"], record["count"], record["params"]["quality"]) == (
            "complete", "Liver", 6, 90)
        with pytest.raises(KeyError, match="no tile lung/1_1"):
            reader.jpeg("lung/1_1")


def test_begin_slide_drops_only_that_slides_tiles(tmp_path):
    with TileStoreWriter(tmp_path / "s") as writer:
        for slide in ("A", "A-1", "AB"):
            writer.begin_slide(slide, {"slide_id": slide, "count": 0})
            writer.put_tiles([(f"{slide}/0_0", b"jpeg", b"{}"), (f"{slide}/0_256", b"jpeg", b"{}")])
        writer.begin_slide("A", {"slide_id": "A", "count": 0})
    with TileStore(tmp_path / "s") as reader:
        assert reader.keys("A") == [] and len(reader.keys("A-1")) == 2 and len(reader.keys("AB")) == 2
        assert reader.slides()["A"]["status"] == "partial"
        with pytest.raises(KeyError):
            reader.meta("A/0_0")
        assert reader.meta("AB/0_0") == {}


def test_the_store_grows_when_its_map_is_full(tmp_path, monkeypatch):
    monkeypatch.setattr(tiles, "INITIAL_MAP_SIZE", 256 * 1024)
    payload = np.random.default_rng(0).bytes(100_000)
    with TileStoreWriter(tmp_path / "s") as writer:
        writer.begin_slide("big", {"count": 0})
        writer.put_tiles([(f"big/{i}_0", payload, b"{}") for i in range(30)])
        assert writer.env.info()["map_size"] > 256 * 1024
    with TileStore(tmp_path / "s") as reader:
        assert len(reader.keys("big")) == 30 and reader.jpeg("big/29_0") == payload


def test_a_folder_that_is_not_a_store_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds no tile store"):
        TileStoreWriter(tmp_path)
    with pytest.raises(FileNotFoundError, match="no tile store here"):
        TileStore(tmp_path)
    assert dumps({"b": 1, "a": 2}) == b'{"a":2,"b":1}'


def test_dataset_yields_rgb_tiles_matching_the_slide(store):
    path, slides = store
    dataset = TileDataset(path, slides=["red"])
    slide = openslide.OpenSlide(slides["red"])
    assert len(dataset) == 6
    for item in dataset:
        image = item["image"]
        assert image.dtype == torch.uint8 and image.shape == (3, 256, 256) and item["expression_row"] == -1
        x, y = (int(v) for v in item["key"].split("/")[1].split("_"))
        expected = np.asarray(slide.read_region((x, y), 0, (256, 256)).convert("RGB")).transpose(2, 0, 1)
        assert np.abs(image.numpy().astype(int) - expected).mean() < 4
        red, blue = image[0].float().mean(), image[2].float().mean()
        assert (red > blue + 80) if x < 256 else (blue > red + 80)  # channels not swapped


def test_dataset_resizes_and_filters_by_tissue_and_slide(store):
    path, _ = store
    small = TileDataset(path, image_size=64)
    assert len(small) == 18 and small[0]["image"].shape == (3, 64, 64)
    assert {small[i]["slide_id"] for i in range(len(small))} == {"red", "lung", "liver"}
    lung = TileDataset(path, tissue="Lung")
    assert set(lung.slide_ids) == {"red", "lung"}
    assert set(TileDataset(path, tissue=["Liver"], slides=["liver", "lung"]).slide_ids) == {"liver"}
    with pytest.raises(KeyError, match="no slide"):
        TileDataset(path, slides=["missing"])


def test_dataset_caps_tiles_per_slide_with_a_seed(store):
    path, _ = store
    first = TileDataset(path, max_tiles_per_slide=2, seed=5).keys
    assert len(first) == 6 and TileDataset(path, max_tiles_per_slide=2, seed=5).keys == first
    others = [TileDataset(path, max_tiles_per_slide=2, seed=s).keys for s in range(6, 10)]
    assert any(keys != first for keys in others)


def test_dataset_joins_expression_rows_and_drops_slides_without_one(store, caplog):
    path, _ = store
    genes = ("ENSG1.1", "ENSG2.1")
    expression = PreparedExpression(
        path=Path("prepared"), matrix=np.zeros((2, 2), np.float32),
        samples=pd.DataFrame({"sample_id": ["S-1", "S-2"], "slide_id": ["liver", "lung"], "tissue": ["Liver", "Lung"],
                              "split": ["train", "train"]}),
        genes=genes, scaler=Scaler(genes, np.zeros(2), np.ones(2), np.ones(2, bool)))
    dataset = TileDataset(path, expression=expression)
    assert dataset.dropped_slides == ["red"] and dataset.dropped_tiles == 6
    assert "left out 6 tiles of 1 slides" in caplog.text
    rows = {item["slide_id"]: item["expression_row"] for item in dataset}
    assert rows == {"liver": 0, "lung": 1}


def test_dataset_works_in_dataloader_workers_and_pickles_without_its_handle(store):
    path, _ = store
    dataset = TileDataset(path, image_size=32)
    dataset[0]  # opens the environment in this process
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone._store is None and torch.equal(clone[3]["image"], dataset[3]["image"])
    loader = DataLoader(dataset, batch_size=4, num_workers=2)
    batches = list(loader)
    assert sum(len(b["key"]) for b in batches) == 18
    images = torch.cat([b["image"] for b in batches])
    assert images.shape == (18, 3, 32, 32) and images.dtype == torch.uint8
    assert torch.equal(images[5], dataset[5]["image"])
    with TileStore(path) as reader:
        assert decode_jpeg(reader.jpeg(dataset.keys[0])).shape == (256, 256, 3)
