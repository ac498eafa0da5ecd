"""Real tiles enter the catalog through the shared encoder; importing twice adds nothing."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from generation.imports import TileSourceError, real_tiles_import_folder, real_tiles_import_lmdb
from generation.models import Tile
from tests.generation.conftest import he_like_tile

pytestmark = pytest.mark.django_db


def test_importing_a_folder_creates_one_real_tile_per_image(media_root, tile_folder):
    assert real_tiles_import_folder(folder=tile_folder, tissue="Lung") == 6
    tiles = Tile.objects.all()
    assert {t.source for t in tiles} == {"real"}
    assert {t.tissue for t in tiles} == {"Lung"}
    assert all(t.checkpoint_id is None for t in tiles)
    assert all((media_root / t.image.name).exists() for t in tiles)


def test_importing_the_same_folder_twice_adds_nothing_and_leaves_no_orphan_files(media_root, tile_folder):
    real_tiles_import_folder(folder=tile_folder, tissue="Lung")
    assert real_tiles_import_folder(folder=tile_folder, tissue="Lung") == 0
    assert Tile.objects.count() == 6
    files = [p for p in media_root.rglob("*") if p.is_file()]
    assert len(files) == 6
    assert not [p for p in files if p.name.startswith(".partial-")]


def test_limit_caps_the_import(media_root, tile_folder):
    assert real_tiles_import_folder(folder=tile_folder, tissue="Lung", limit=4) == 4


def test_an_unreadable_image_is_named(media_root, tile_folder):
    (tile_folder / "broken.png").write_bytes(b"not a png")
    with pytest.raises(TileSourceError, match="broken.png"):
        real_tiles_import_folder(folder=tile_folder, tissue="Lung")


def test_import_tiles_command(media_root, tile_folder, capsys):
    call_command("import_tiles", "--folder", str(tile_folder), "--tissue", "Brain - Cortex", "--limit", "2")
    assert "imported 2 new real Brain - Cortex tiles" in capsys.readouterr().out
    with pytest.raises(CommandError, match="not a folder"):
        call_command("import_tiles", "--folder", str(tile_folder / "nope"), "--tissue", "Lung")


def test_importing_from_a_tile_store_takes_one_tissue_spread_over_its_slides(media_root, tmp_path):
    import io

    from PIL import Image

    from training.data.tile_store import TileStoreWriter, tile_key

    store = tmp_path / "tiles.lmdb"
    with TileStoreWriter(store) as writer:
        for slide, tissue in [("GTEX-A-0001", "Lung"), ("GTEX-B-0002", "Lung"), ("GTEX-C-0003", "Brain - Cortex")]:
            writer.begin_slide(slide, {"status": "partial", "tissue": tissue})
            tiles = []
            for i in range(4):
                buffer = io.BytesIO()
                Image.fromarray(he_like_tile(10 * len(tiles) + ord(slide[5]))).save(buffer, "JPEG")
                tiles.append((tile_key(slide, 256 * i, 0), buffer.getvalue(), b"{}"))
            writer.put_tiles(tiles)
            writer.put_record(slide, {"status": "complete", "tissue": tissue, "count": 4})
    assert real_tiles_import_lmdb(path=store, tissue="Lung", limit=4) == 4
    samples = sorted(Tile.objects.values_list("expression_sample", flat=True))
    assert samples == ["GTEX-A-0001", "GTEX-A-0001", "GTEX-B-0002", "GTEX-B-0002"]
    assert real_tiles_import_lmdb(path=store, tissue="Brain - Cortex") == 4
    with pytest.raises(TileSourceError, match="no complete slides of tissue 'Liver'.*Brain - Cortex, Lung"):
        real_tiles_import_lmdb(path=store, tissue="Liver")
