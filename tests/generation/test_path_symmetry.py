"""The test that would have caught the compression leak: the same rendered pixels down both paths.

Real path: the project's slide writer → `tile-slides` → `import_tiles --lmdb`. Synthetic path: a
generation job whose generator returns the same rendered pixels (mirrored). What a browser receives from the
two cannot be told apart by headers, size, JPEG structure or compression history (AUC ≤ 0.6 with 200+
tiles a path), while the chain as it was (a tile store's tile decoded and encoded again by the catalog,
a synthetic tile encoded once, served unpadded) is separated by the same audit (AUC > 0.9).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.management import call_command
from django.test import RequestFactory
from PIL import Image

from generation.expressions import tile_seed
from generation.forensics import audit_families, tile_features
from generation.jobs import generation_job_run
from generation.models import GenerationJob, Tile
from generation.services import checkpoint_register, generation_job_create
from generation.serving import blinded_tile_response, jpeg_without_metadata
from tests.generation.conftest import make_gan_run
from training.data.tiling import tile_slides
from training.data.tiling_params import TilingParams
from training.data.wsi import write_pyramidal_tiff

pytestmark = pytest.mark.django_db

TILE = 256
SIDE = 15 * TILE  # 225 tiles a slide
SLIDE_QUALITY = 80  # the scanner's compression, which the synthetic chain must repeat


def render(seed: int, side: int = SIDE) -> np.ndarray:
    """Stained-tissue-like pixels: saturated pink and purple texture with nuclei-sized detail."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    field = gaussian_filter(rng.random((side, side)).astype(np.float32), 2.0)
    field = (field - field.min()) / (np.ptp(field) + 1e-9)
    coarse = gaussian_filter(rng.random((side, side)).astype(np.float32), 24.0)
    coarse = (coarse - coarse.min()) / (np.ptp(coarse) + 1e-9)
    pink, purple = np.array([235, 140, 185.0], np.float32), np.array([95, 55, 150.0], np.float32)
    mix = np.clip(0.6 * field + 0.4 * coarse, 0, 1)[..., None]
    rgb = pink * (1 - mix) + purple * mix + rng.normal(0, 3, (side, side, 3)).astype(np.float32)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def tiles_of(image: np.ndarray) -> list[np.ndarray]:
    n = image.shape[0] // TILE
    return [image[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE] for r in range(n) for c in range(n)]


def served(data: bytes, key: str) -> tuple[bytes, dict[str, str]]:
    response = blinded_tile_response(path_or_bytes=data, request=RequestFactory().get("/"), etag_key=key)
    return response.content, dict(response.headers)


def served_as_before(data: bytes) -> tuple[bytes, dict[str, str]]:
    # The old view: metadata stripped, served at its own length.
    body = jpeg_without_metadata(data)
    return body, {"Content-Type": "image/jpeg", "Content-Length": str(len(body))}


def old_catalog_encoder(rgb: np.ndarray) -> bytes:
    """The catalog encoder as it was: Pillow q90 4:2:0 of whatever pixels it was given."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=90, subsampling=2)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def rendered_store(tmp_path_factory):
    """One rendered slide through the project's writer and `tile-slides`, and the same pixels as tiles."""
    folder = tmp_path_factory.mktemp("rendered")
    slides = folder / "slides"
    slides.mkdir()
    image = render(1)
    write_pyramidal_tiff(slides / "GTEX-AAAA-0001.tiff", image, quality=SLIDE_QUALITY)
    store = folder / "tiles.lmdb"
    summary = tile_slides(sorted(slides.iterdir()), store, TilingParams(max_tiles=0, min_contrast=0),
                          progress=False)
    assert summary.tiles == 225 and not summary.failed
    # The very pixels the slide holds, mirrored so that no file is byte-identical to a real one (the
    # catalog keeps one row per file): identical content statistics, identical 8 × 8 grid.
    mirrored = [np.ascontiguousarray(np.fliplr(tile)) for tile in tiles_of(image)]
    return store, mirrored


@pytest.fixture
def both_paths(rendered_store, tmp_path, media_root, monkeypatch):
    store, rendered = rendered_store
    call_command("import_tiles", "--lmdb", str(store), "--tissue", "Lung")
    run = make_gan_run(tmp_path / "gan", size=TILE)
    checkpoint = checkpoint_register(run_dir=str(run), name="render-gan", tiles=str(store))
    assert checkpoint.source_jpeg["quality"] == SLIDE_QUALITY
    index_of = {tile_seed(0, i): i for i in range(len(rendered))}

    def test_generator(loaded, n, expression=None, seeds=None, **kwargs):
        return np.stack([rendered[index_of[seed]] for seed in seeds])

    monkeypatch.setattr("training.inference.generate.generate", test_generator)
    job = generation_job_create(checkpoint=checkpoint, requested=len(rendered), seed=0)
    assert generation_job_run(job_pk=job.pk).status == GenerationJob.Status.DONE
    return {"real": list(Tile.objects.filter(source="real")), "synthetic": list(Tile.objects.filter(source="gan"))}


def test_real_and_synthetic_files_from_the_same_renderer_cannot_be_told_apart(both_paths, media_root):
    real, synthetic = both_paths["real"], both_paths["synthetic"]
    assert len(real) >= 200 and len(synthetic) >= 200
    features, labels = [], []
    for i, tile in enumerate(real + synthetic):
        body, headers = served((media_root / tile.image.name).read_bytes(), f"play:game:{i}")
        features.append(tile_features(body, headers))
        labels.append(tile.source != "real")
    aucs = audit_families(features, labels)
    print("\n".join(a.line() for a in aucs.values()))  # the figures the README quotes (pytest -s)
    for family in "abc":
        assert aucs[family].auc <= 0.6, aucs[family].line()


def test_the_same_audit_separates_the_chain_as_it_was(rendered_store):
    from training.data.tile_store import TileStore, decode_jpeg

    path, rendered = rendered_store
    with TileStore(path) as store:
        slide = next(iter(store.slides()))
        real = [old_catalog_encoder(decode_jpeg(store.jpeg(key))) for key in store.keys(slide)]
    synthetic = [old_catalog_encoder(rgb) for rgb in rendered]
    features = [tile_features(*served_as_before(data)) for data in real + synthetic]
    aucs = audit_families(features, [False] * len(real) + [True] * len(synthetic))
    print("\n".join(a.line() for a in aucs.values()))
    assert aucs["c"].auc > 0.9, aucs["c"].line()
