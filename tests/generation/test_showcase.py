"""The /conditioning/ page: two samples' real tiles beside tiles drawn from their expression, none of
which can ever be dealt in a game (its real slides stay outside the catalog; its drawn tiles are never
stored), built atomically by `python manage.py showcase`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from PIL import Image

from generation.imports import real_tiles_import_lmdb
from generation.models import Checkpoint, Tile
from generation.services import checkpoint_register
from generation.showcase import ShowcaseError, showcase_build, showcase_read, showcase_root, showcase_slides
from tests.generation.conftest import he_like_tile
from tests.training.inference.test_generate import make_run, write_prepared, write_vae_run

pytestmark = pytest.mark.django_db

SAMPLES = [f"GTEX-S{i}-0726-SM-{i}" for i in range(5)]
SLIDES = [s.rsplit("-SM", 1)[0] for s in SAMPLES]


@pytest.fixture
def rnagan_checkpoint(tmp_path, media_root, small_tiles):
    """An RNA-GAN run over five lung samples, each with three 64 px tiles in a real tile store."""
    from training.data.tile_store import TileStoreWriter, dumps, tile_key

    with TileStoreWriter(tmp_path / "tiles.lmdb") as writer:
        for i, slide in enumerate(SLIDES):
            writer.begin_slide(slide, {"slide_id": slide, "tissue": "Lung", "count": 0})
            entries = []
            for k in range(3):
                buffer = io.BytesIO()
                Image.fromarray(he_like_tile(10 * i + k, size=64)).save(buffer, format="JPEG", quality=90)
                entries.append((tile_key(slide, 256 * k, 0), buffer.getvalue(),
                                dumps({"slide_id": slide, "x": 256 * k, "y": 0})))
            writer.put_tiles(entries)
            writer.put_record(slide, {"slide_id": slide, "tissue": "Lung", "count": 3, "status": "complete",
                                     "jpeg_history": None})  # slides that were not JPEG-compressed
    prepared = write_prepared(tmp_path / "prepared", {
        "sample_id": SAMPLES, "slide_id": SLIDES, "tissue": ["Lung"] * 5, "split": ["train"] * 5})
    run = make_run(tmp_path / "rna", "rna-proj", str(write_vae_run(tmp_path / "vae")), str(prepared),
                   input_dim=12)
    config = json.loads((run / "config.json").read_text())
    config["tiles"] = str(tmp_path / "tiles.lmdb")
    config["model"]["noise_dim"] = 6
    (run / "config.json").write_text(json.dumps(config))
    return checkpoint_register(run_dir=str(run), name="lung-rnagan-show")


def _store(checkpoint) -> str:
    return json.loads((Path(checkpoint.run_dir) / "config.json").read_text())["tiles"]


def _latents(checkpoint) -> np.ndarray:
    from generation.loader import cached_generator

    loaded = cached_generator(checkpoint.run_dir, checkpoint.weights_sha256)
    return loaded.encode(np.stack([loaded.expression_for_sample(s) for s in SAMPLES]))


def test_the_set_shows_the_two_most_different_samples_outside_the_catalog(rnagan_checkpoint):
    real_tiles_import_lmdb(path=_store(rnagan_checkpoint), tissue="Lung", limit=1)
    (in_catalog,) = set(Tile.objects.values_list("expression_sample", flat=True))

    built = showcase_build(checkpoint=rnagan_checkpoint, per_sample=3)

    chosen = [SAMPLES.index(s.sample) for s in built.samples]
    outside = [i for i, slide in enumerate(SLIDES) if slide != in_catalog]
    assert set(chosen) <= set(outside)
    latents = _latents(rnagan_checkpoint)
    distance = {(i, j): ((latents[i] - latents[j]) ** 2).sum() for i in outside for j in outside if i < j}
    assert tuple(chosen) == max(distance, key=distance.get)
    folder = showcase_root() / "lung-rnagan-show"
    for sample in built.samples:
        assert len(sample.real) == len(sample.drawn) == 3
        for file in sample.real + sample.drawn:
            with Image.open(folder / file) as image:
                assert image.size == (64, 64) and image.format == "JPEG"
    first, second = (np.asarray(Image.open(folder / s.drawn[0])) for s in built.samples)
    assert np.abs(first.astype(int) - second.astype(int)).mean() > 1  # drawn from different expression
    assert Tile.objects.filter(checkpoint=rnagan_checkpoint).count() == 0  # nothing drawn enters the catalog
    assert [s.name for s in showcase_read()] == ["lung-rnagan-show"]


def test_slides_kept_out_of_the_import_are_the_ones_the_set_then_shows(rnagan_checkpoint, tmp_path):
    held = showcase_slides(checkpoint=rnagan_checkpoint, per_sample=3)
    assert len(held) == 2 and set(held) <= set(SLIDES)
    out = io.StringIO()
    call_command("import_tiles", "--lmdb", _store(rnagan_checkpoint), "--tissue", "Lung",
                 *[arg for slide in held for arg in ("--exclude-slide", slide)], stdout=out)
    assert set(Tile.objects.values_list("expression_sample", flat=True)) == set(SLIDES) - set(held)
    built = showcase_build(checkpoint=rnagan_checkpoint, per_sample=3)
    assert [s.slide for s in built.samples] == held


def test_a_set_whose_slide_later_enters_the_catalog_is_no_longer_shown(rnagan_checkpoint, client):
    built = showcase_build(checkpoint=rnagan_checkpoint, per_sample=2)
    page = client.get("/conditioning/")
    assert page.status_code == 200
    html = page.content.decode()
    for sample in built.samples:
        assert sample.sample in html
        for file in sample.real + sample.drawn:
            url = f"/conditioning/lung-rnagan-show/{file}"
            assert url in html
            response = client.get(url)
            assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    real_tiles_import_lmdb(path=_store(rnagan_checkpoint), tissue="Lung")  # every slide, the shown ones included
    assert showcase_read() == []
    assert client.get(f"/conditioning/lung-rnagan-show/{built.samples[0].real[0]}").status_code == 404
    assert built.samples[0].sample not in client.get("/conditioning/").content.decode()


@pytest.mark.parametrize("file", ["manifest.json", "s0-real-9.jpg", "..", "%2e%2e%2fmanifest.json"])
def test_only_the_files_a_set_lists_are_served(rnagan_checkpoint, client, file):
    showcase_build(checkpoint=rnagan_checkpoint, per_sample=2)
    assert client.get(f"/conditioning/lung-rnagan-show/{file}").status_code == 404
    assert client.get("/conditioning/another-set/s0-real-0.jpg").status_code == 404


def test_a_failed_build_leaves_the_previous_set_and_no_half_folder(rnagan_checkpoint, monkeypatch):
    before = showcase_build(checkpoint=rnagan_checkpoint, per_sample=2)

    def explode(*args, **kwargs):
        raise RuntimeError("the generator fell over")

    monkeypatch.setattr("training.inference.generate.generate", explode)
    with pytest.raises(RuntimeError, match="fell over"):
        showcase_build(checkpoint=rnagan_checkpoint, per_sample=3)
    assert sorted(p.name for p in showcase_root().iterdir()) == ["lung-rnagan-show"]
    assert showcase_read() == [before]


def test_a_gan_checkpoint_or_too_few_slides_is_a_clear_error(rnagan_checkpoint, gan_checkpoint, capsys):
    with pytest.raises(ShowcaseError, match="lung-gan-test is a gan run"):
        showcase_build(checkpoint=gan_checkpoint)
    with pytest.raises(ShowcaseError, match="fewer than two Lung samples have 4 tiles"):
        showcase_build(checkpoint=rnagan_checkpoint, per_sample=4)
    assert not showcase_root().exists() or not any(showcase_root().iterdir())


def test_the_command_builds_the_set_and_the_home_page_links_the_page(rnagan_checkpoint, client):
    out = io.StringIO()
    call_command("showcase", "--checkpoint", "lung-rnagan-show", "--per-sample", "2", stdout=out)
    assert "showcase of lung-rnagan-show (Lung)" in out.getvalue()
    assert Checkpoint.objects.get(name="lung-rnagan-show").kind == "rnagan"
    assert showcase_read()[0].tissue == "Lung"
    assert 'href="/conditioning/"' in client.get("/").content.decode()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_page_shows_every_tile_in_chromium_and_fits_a_phone(rnagan_checkpoint, browser, live_server):
    showcase_build(checkpoint=rnagan_checkpoint, per_sample=3)
    context = browser.new_context(viewport={"width": 375, "height": 740})
    page = context.new_page()
    response = page.goto(live_server.url + "/conditioning/")
    assert response is not None and response.status == 200
    images = page.locator(".showcase-grid img")
    assert images.count() == 12  # two samples × (3 real + 3 drawn)
    for k in range(12):
        images.nth(k).scroll_into_view_if_needed()  # lazy images load once near the viewport
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=images.nth(k).element_handle())
        assert images.nth(k).evaluate("img => img.naturalWidth") == 64
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    context.close()
