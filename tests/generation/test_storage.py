"""A crash at any point of the two-phase write leaves rows and files that match."""

from __future__ import annotations

import os
import time

import pytest

from generation.models import Tile
from generation.storage import stage_file, staging_dir, staging_reconcile, staging_sweep, tile_relative_path

pytestmark = pytest.mark.django_db


def _row(public_id: str, *, active: bool) -> Tile:
    return Tile.objects.create(public_id=public_id, source="real", tissue="Lung", image=tile_relative_path(public_id),
                               sha256=public_id.ljust(64, "0"), width=256, height=256, active=active)


def test_reconcile_promotes_committed_tiles_and_deletes_the_rest(media_root):
    staging = staging_dir("job-1")
    for public_id in ("committedAAAAAAAAAAAAAA", "uncommittedBBBBBBBBBBBB"):
        stage_file(staging=staging, public_id=public_id, data=b"\xff\xd8jpeg")
    (staging / ".partial-xyz").write_bytes(b"half")
    _row("committedAAAAAAAAAAAAAA", active=False)  # killed after the insert, before promotion

    assert staging_reconcile(staging) == (1, 1)
    tile = Tile.objects.get()
    assert tile.active
    assert (media_root / tile.image.name).read_bytes() == b"\xff\xd8jpeg"
    assert not staging.exists()
    assert [p for p in media_root.rglob("*") if p.is_file()] == [media_root / tile.image.name]


def test_the_sweep_leaves_fresh_staging_folders_to_their_writers(media_root):
    fresh, old = staging_dir("job-2"), staging_dir("import-abc")
    stage_file(staging=fresh, public_id="freshCCCCCCCCCCCCCCCCC", data=b"x")
    stage_file(staging=old, public_id="oldDDDDDDDDDDDDDDDDDDD", data=b"x")
    past = time.time() - 3600
    os.utime(old, (past, past))
    assert staging_sweep(older_than_s=600) == ["import-abc"]
    assert fresh.exists() and not old.exists()
