"""Fixtures for the quiz: a small tile catalog on disk and in the database, and a private cache."""

from __future__ import annotations

import hashlib
import io
import random
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from generation.models import Checkpoint, Tile
from quiz import services
from quiz.pool import pool_forget


@pytest.fixture(autouse=True)
def private_cache(settings) -> Iterator[None]:
    """Rate-limit counters, crowd statistics and the kept tile pool of one test stay invisible to the others."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"quiz-test-{uuid.uuid4().hex}"}}
    pool_forget()
    yield
    pool_forget()


def jpeg_bytes(rng: random.Random, size: int = 32) -> bytes:
    """A small noisy JPEG, as the one encoder writes them: no metadata at all."""
    out = io.BytesIO()
    Image.frombytes("RGB", (size, size), rng.randbytes(size * size * 3)).save(out, format="JPEG", quality=90)
    return out.getvalue()


class Catalog:
    """Creates tiles: `add(source, tissue, count)`; every tile gets its own JPEG under MEDIA_ROOT."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.rng = random.Random(folder)
        self.tiles: list[Tile] = []

    def checkpoint(self, kind: str, tissue: str) -> Checkpoint:
        checkpoint, _ = Checkpoint.objects.get_or_create(
            name=f"{kind}-{tissue}-{self.folder[-8:]}",
            defaults={"kind": kind, "tissue": tissue, "run_dir": f"/runs/{kind}-{tissue}",
                      "weights_sha256": "0" * 64, "vae_run_dir": "/runs/vae" if kind == "rnagan" else ""},
        )
        return checkpoint

    def add(self, source: str, tissue: str, count: int = 1) -> list[Tile]:
        checkpoint = None if source == "real" else self.checkpoint(source, tissue)
        made = []
        for _ in range(count):
            data = jpeg_bytes(self.rng)
            digest = hashlib.sha256(data).hexdigest()
            name = default_storage.save(f"{self.folder}/{digest[:16]}.jpg", ContentFile(data))
            made.append(Tile(source=source, tissue=tissue, image=name, sha256=digest, width=32, height=32,
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
    """Two tissues with enough tiles for two 20-round games without repeats."""
    catalog.fill(("lung", "colon"), real=12, gan=6, rnagan=6)
    return catalog


def play_through(game, *, answers=None, confidence: str = "sure") -> list[services.AnswerReceipt]:
    """Answer every round of a game in order; `answers` maps position → answer (default: always 'real')."""
    receipts = []
    for position in range(1, game.n + 1):
        answer = (answers or {}).get(position, "real")
        receipts.append(services.quiz_answer_submit(game_token=game.token, position=position, answer=answer,
                                                    confidence=confidence))
    return receipts
