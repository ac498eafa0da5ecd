"""Serving a tile blinded: one length, one marker sequence, the same pixels, headers that name nothing."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.test import RequestFactory
from PIL import Image

from generation.forensics import jpeg_structure
from generation.models import Tile
from generation.services import TileOrigin, tiles_create
from generation.serving import (
    NotAJpeg,
    TileTooLarge,
    blinded_etag,
    blinded_jpeg,
    blinded_tile_response,
    padding_segments,
)
from tests.generation.conftest import he_like_tile
from training.data.jpeg import encode_store_jpeg


def _jpeg(seed: int, noise: float = 4.0) -> bytes:
    rgb = he_like_tile(seed).astype(np.float32) + np.random.default_rng(seed).normal(0, noise, (256, 256, 3))
    return encode_store_jpeg(np.clip(rgb, 0, 255).astype(np.uint8), 90)


def test_every_file_is_padded_to_one_length_with_one_structure_and_its_pixels_unchanged():
    files = [_jpeg(1, 1), _jpeg(2, 12)]
    assert len(files[0]) < len(files[1])
    served = [blinded_jpeg(f, size=40_000) for f in files]
    assert [len(s) for s in served] == [40_000, 40_000]
    structures = [jpeg_structure(s) for s in served]
    assert structures[0] == structures[1]
    for original, padded in zip(files, served, strict=True):
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(original))), np.asarray(Image.open(io.BytesIO(padded))))


def test_metadata_and_trailing_bytes_go_and_large_sizes_use_a_fixed_number_of_padding_segments():
    buffer = io.BytesIO()
    Image.open(io.BytesIO(_jpeg(3))).save(buffer, format="JPEG", quality=90, comment=b"gan checkpoint 7")
    tagged = buffer.getvalue() + b"trailing secret"
    served = blinded_jpeg(tagged, size=200_000)
    assert b"gan" not in served and b"secret" not in served and len(served) == 200_000
    assert jpeg_structure(served)["markers"].count("FE") == padding_segments(200_000) == 4


def test_a_tile_too_large_or_not_a_jpeg_is_refused_by_name():
    with pytest.raises(TileTooLarge, match="abc.jpg.*RNAGAN_TILE_SERVED_BYTES=1,000"):
        blinded_jpeg(_jpeg(4), size=1000, name="abc.jpg")
    with pytest.raises(NotAJpeg, match="x.png"):
        blinded_jpeg(b"\x89PNG....", name="x.png")


def test_the_response_has_fixed_headers_and_a_tag_from_the_key_only(settings):
    settings.RNAGAN_TILE_SERVED_BYTES = 30_000
    request = RequestFactory().get("/")
    a = blinded_tile_response(path_or_bytes=_jpeg(5, 1), request=request, etag_key="k1")
    b = blinded_tile_response(path_or_bytes=_jpeg(6, 8), request=request, etag_key="k1")
    assert dict(a.headers) == dict(b.headers)
    assert a["Content-Length"] == "30000" and len(a.content) == len(b.content) == 30_000
    assert a["ETag"] == blinded_etag("k1") != blinded_etag("k2")
    cached = RequestFactory().get("/", HTTP_IF_NONE_MATCH=a["ETag"])
    assert blinded_tile_response(path_or_bytes=b"", request=cached, etag_key="k1").status_code == 304


@pytest.mark.django_db
def test_a_tile_that_would_not_fit_the_served_size_is_left_out_of_the_catalog(media_root, settings, caplog):
    settings.RNAGAN_TILE_SERVED_BYTES = len(_jpeg(7, 1)) + 200
    made = tiles_create(jpegs=[_jpeg(7, 1), _jpeg(8, 40)], source="real", tissue="Lung",
                        origins=[TileOrigin(cohort="store", sample="small"), TileOrigin(cohort="store", sample="big")])
    assert made == 1 and Tile.objects.get().expression_sample == "small"
    assert "do not fit RNAGAN_TILE_SERVED_BYTES" in caplog.text
