"""Fixtures for the quiz: a small tile catalog on disk and in the database, and a private cache."""

from __future__ import annotations

import hashlib
import random
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from generation.models import Checkpoint, Tile
from quiz import services
from quiz.pool import pool_forget
from training.data.jpeg import JpegHistory, encode_store_jpeg, jpeg_round_trip


@pytest.fixture(autouse=True)
def private_cache(settings) -> Iterator[None]:
    """Rate-limit counters, crowd statistics and the kept tile pool of one test stay invisible to the others."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"quiz-test-{uuid.uuid4().hex}"}}
    pool_forget()
    yield
    pool_forget()


SLIDE_HISTORY = JpegHistory(quality=90, subsampling=(2, 2), colorspace="ycbcr", exact=True)


def tile_jpeg(rng: np.random.Generator, source: str, size: int = 256) -> bytes:
    """A catalog file as the pipeline writes it, with content that differs by source the way a weak
    generator's does: real tiles are sharper and busier (≈ 20–30 kB), synthetic ones softer (≈ 10–15 kB).
    Both chains are the real ones (the slide's JPEG, then the store encoder), so only content differs."""
    from scipy.ndimage import gaussian_filter

    sigma, grain = (1.2, 10.0) if source == "real" else (2.5, 5.0)
    field = gaussian_filter(rng.random((size, size)), sigma)
    field = (field - field.min()) / (np.ptp(field) + 1e-9)
    pink, purple = np.array([230, 150, 190.0]), np.array([90, 60, 150.0])
    rgb = pink * (1 - field[..., None]) + purple * field[..., None] + rng.normal(0, grain, (size, size, 3))
    rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    return encode_store_jpeg(jpeg_round_trip(rgb, SLIDE_HISTORY), 90)


class Catalog:
    """Creates tiles: `add(source, tissue, count)`; every tile gets its own JPEG under MEDIA_ROOT."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.rng = np.random.default_rng(random.Random(folder).randrange(2**32))
        self.tiles: list[Tile] = []

    def checkpoint(self, kind: str, tissue: str) -> Checkpoint:
        checkpoint, _ = Checkpoint.objects.get_or_create(
            name=f"{kind}-{tissue}-{self.folder[-8:]}",
            defaults={"kind": kind, "tissue": tissue, "run_dir": f"/runs/{kind}-{tissue}",
                      "weights_sha256": "0" * 64, "vae_run_dir": "/runs/vae" if kind == "rnagan" else ""},
        )
        return checkpoint

    def add(self, source: str, tissue: str, count: int = 1, *, look: str | None = None) -> list[Tile]:
        """`look`: draw the content as this source's (default: its own)."""
        checkpoint = None if source == "real" else self.checkpoint(source, tissue)
        made = []
        for _ in range(count):
            data = tile_jpeg(self.rng, look or source)
            digest = hashlib.sha256(data).hexdigest()
            name = default_storage.save(f"{self.folder}/{digest[:16]}.jpg", ContentFile(data))
            made.append(Tile(source=source, tissue=tissue, image=name, sha256=digest, width=256, height=256,
                             checkpoint=checkpoint))
        made = Tile.objects.bulk_create(made)
        pool_forget()  # a web process would see them within POOL_TTL_S; a test looks at once
        self.tiles.extend(made)
        return made

    def fill(self, tissues: tuple[str, ...] = ("lung", "colon"), *, real: int = 12, gan: int = 6,
             rnagan: int = 6) -> None:
        """Per tissue: `real` real tiles, `gan` GAN and `rnagan` RNA-GAN tiles."""
        for tissue in tissues:
            self.add("real", tissue, real)
            self.add("gan", tissue, gan)
            self.add("rnagan", tissue, rnagan)


@pytest.fixture
def catalog(db, settings) -> Iterator[Catalog]:
    folder = f"tiles/test-quiz-{uuid.uuid4().hex}"
    yield Catalog(folder)
    shutil.rmtree(Path(settings.MEDIA_ROOT) / folder, ignore_errors=True)


@pytest.fixture
def full_catalog(catalog: Catalog) -> Catalog:
    """Two tissues with 20 tiles of each source in all: a game of 20 can be dealt whatever its sources."""
    catalog.fill(("lung", "colon"), real=10, gan=10, rnagan=10)
    return catalog


def play_through(game, *, answers=None, confidence: str = "sure") -> list[services.AnswerReceipt]:
    """Answer every round of a game in order; `answers` maps position → answer (default: always 'real')."""
    receipts = []
    for position in range(1, game.n + 1):
        answer = (answers or {}).get(position, "real")
        receipts.append(services.quiz_answer_submit(game_token=game.token, position=position, answer=answer,
                                                    confidence=confidence))
    return receipts
