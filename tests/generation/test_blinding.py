"""Nothing about a tile's file tells its source apart except its pixels."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generation.encoding import TileSizeError
from generation.imports import TileSourceError, real_tiles_import_folder
from generation.models import Tile
from generation.services import TileOrigin, tiles_create
from tests.generation.conftest import he_like_tile
from training.data.jpeg import JpegHistory, encode_store_jpeg, jpeg_round_trip

pytestmark = pytest.mark.django_db


def _jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """The JPEG marker segments up to the start of scan: (marker, payload)."""
    assert data[:2] == b"\xff\xd8"
    segments, pos = [], 2
    while pos < len(data):
        assert data[pos] == 0xFF
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        segments.append((marker, data[pos + 4 : pos + 2 + length]))
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        pos += 2 + length
    return segments


def _fingerprint(path: Path) -> dict:
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        info = {k: v for k, v in image.info.items() if k not in {"jfif", "jfif_version", "jfif_unit", "jfif_density"}}
        return {
            "format": image.format,
            "mode": image.mode,
            "size": image.size,
            "quantization": image.quantization,
            "subsampling": image.layers,
            "extra_info": info,
            "markers": [m for m, _ in _jpeg_segments(data)],
            "app_payloads": [p for m, p in _jpeg_segments(data) if 0xE0 <= m <= 0xEF or m == 0xFE],
            "huffman_and_frame": [p for m, p in _jpeg_segments(data) if m in (0xC0, 0xC4, 0xDA)],
        }


def test_real_and_synthetic_files_cannot_be_told_apart_by_format_or_metadata(media_root, tile_folder, gan_checkpoint):
    real_tiles_import_folder(folder=tile_folder, tissue="Lung")
    tiles_create(
        images=[he_like_tile(100 + i) for i in range(3)], source="gan", tissue="Lung", checkpoint=gan_checkpoint,
        origins=[TileOrigin(seed=i) for i in range(3)],
    )
    prints = {}
    for tile in Tile.objects.all():
        fp = _fingerprint(media_root / tile.image.name)
        prints.setdefault(tile.source, []).append(fp)
    assert set(prints) == {"real", "gan"}
    reference = prints["real"][0]
    for source, fps in prints.items():
        for fp in fps:
            assert fp["format"] == "JPEG" and fp["mode"] == "RGB", source
            assert fp["size"] == (256, 256)
            assert fp["quantization"] == reference["quantization"], source
            assert fp["markers"] == reference["markers"], source
            assert fp["app_payloads"] == reference["app_payloads"], source  # the one shared JFIF header
            assert fp["extra_info"] == {}, source  # no EXIF, ICC, comment, dpi
    assert [m for m in reference["markers"] if m in (0xE1, 0xE2, 0xFE)] == []  # no EXIF, ICC or comment


def test_file_names_come_from_the_opaque_identifier_only(media_root, tile_folder, gan_checkpoint):
    real_tiles_import_folder(folder=tile_folder, tissue="Lung")
    tiles_create(images=[he_like_tile(7)], source="gan", tissue="Lung", checkpoint=gan_checkpoint,
                 origins=[TileOrigin(seed=1)])
    for tile in Tile.objects.all():
        name = tile.image.name
        assert name == f"tiles/{tile.public_id[:2]}/{tile.public_id}.jpg"
        for leak in ("real", "gan", "lung", "Lung", gan_checkpoint.name):
            assert leak not in name.replace(tile.public_id, "")


def test_public_identifiers_are_random_not_sequential(media_root, tile_folder):
    real_tiles_import_folder(folder=tile_folder, tissue="Lung")
    ids = list(Tile.objects.order_by("id").values_list("public_id", flat=True))
    assert len(set(ids)) == len(ids) and all(len(i) >= 20 for i in ids)
    assert ids != sorted(ids) or len(ids) < 3  # creation order does not sort them


def test_a_generator_tile_of_another_size_is_refused_naming_the_checkpoint(media_root, gan_checkpoint):
    for size in (128, 512):  # never resized: neither upsampled nor, for a generator, downsampled
        with pytest.raises(TileSizeError, match=f"checkpoint {gan_checkpoint.name}.*{size}×{size} px"):
            tiles_create(images=[he_like_tile(3, size=size)], source="gan", tissue="Lung", checkpoint=gan_checkpoint,
                         origins=[TileOrigin(seed=5)])
    assert not Tile.objects.exists()


def test_a_larger_real_tile_is_downsampled_and_a_smaller_one_refused_naming_the_file(media_root, tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    Image.fromarray(he_like_tile(4, size=512)).save(folder / "large.png")
    real_tiles_import_folder(folder=folder, tissue="Lung")
    with Image.open(media_root / Tile.objects.get().image.name) as image:
        assert image.size == (256, 256)
    Image.fromarray(he_like_tile(5, size=128)).save(folder / "small.png")
    with pytest.raises(TileSourceError, match="small.*128×128 px.*never upsamples"):
        real_tiles_import_folder(folder=folder, tissue="Lung")


def test_a_synthetic_tile_gets_its_training_slides_jpeg_round_trip_before_the_store_encoder(media_root, gan_checkpoint):
    rgb = he_like_tile(21)
    history = JpegHistory(quality=70, subsampling=(2, 2), colorspace="ycbcr", exact=True)
    gan_checkpoint.source_jpeg = history.to_dict()
    gan_checkpoint.save()
    tiles_create(images=[rgb], source="gan", tissue="Lung", checkpoint=gan_checkpoint, origins=[TileOrigin(seed=1)])
    stored = (media_root / Tile.objects.get().image.name).read_bytes()
    assert stored == encode_store_jpeg(jpeg_round_trip(rgb, history), 90)
    assert stored != encode_store_jpeg(rgb, 90)


def test_pixels_survive_encoding_closely(media_root, gan_checkpoint):
    rgb = he_like_tile(11)
    tiles_create(images=[rgb], source="gan", tissue="Lung", checkpoint=gan_checkpoint, origins=[TileOrigin()])
    tile = Tile.objects.get()
    with Image.open(media_root / tile.image.name) as image:
        decoded = np.asarray(image.convert("RGB")).astype(int)
    # q90 keeps the structure; most of the difference is the fine noise the test image carries (σ = 4).
    assert np.abs(decoded - rgb.astype(int)).mean() < 5.0
