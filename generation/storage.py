"""Where tile files live, and how they get there without ever leaving an orphan or a dangling row.

A file's final name comes from the tile's opaque public identifier alone, never from its source,
tissue or checkpoint. Writing is two-phase, with the database as the source of truth:
1. encoded files are written into a staging folder (`staging/<batch>/`), each under a temporary name
   and renamed when complete;
2. their rows are inserted, inactive (the quiz never sees them), and committed;
3. staged files are moved to their final names, then the rows are activated.
A process killed anywhere in between leaves a staging folder that `staging_reconcile` settles: files
whose row exists are promoted and activated, the others deleted. A job reconciles its own folder before
it resumes; a periodic sweep settles folders abandoned by anything else.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from django.conf import settings

from generation.encoding import EXTENSION

STAGING = "staging"


def tile_relative_path(public_id: str) -> str:
    # Two-character fan-out keeps folders small on a catalog of millions.
    return f"tiles/{public_id[:2]}/{public_id}{EXTENSION}"


def tile_absolute_path(relative: str) -> Path:
    return Path(settings.MEDIA_ROOT) / relative


def staging_dir(batch: str) -> Path:
    return Path(settings.MEDIA_ROOT) / STAGING / batch


def stage_file(*, staging: Path, public_id: str, data: bytes) -> None:
    """Write under a temporary name in the staging folder, then rename to `<public_id>.jpg` there."""
    staging.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".partial-", dir=staging)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, staging / f"{public_id}{EXTENSION}")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def promote(*, staging: Path, public_id: str) -> str:
    """Move a staged file to its final name; return that name relative to MEDIA_ROOT."""
    relative = tile_relative_path(public_id)
    target = tile_absolute_path(relative)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging / f"{public_id}{EXTENSION}", target)
    return relative


def discard(*, staging: Path, public_id: str) -> None:
    try:
        (staging / f"{public_id}{EXTENSION}").unlink()
    except FileNotFoundError:
        pass


def staging_remove_if_empty(staging: Path) -> None:
    try:
        staging.rmdir()
    except OSError:
        pass


def staging_reconcile(staging: Path) -> tuple[int, int]:
    """Settle a staging folder left by a killed process: (promoted, deleted)."""
    from generation.models import Tile

    if not staging.is_dir():
        return 0, 0
    for partial in staging.glob(".partial-*"):
        partial.unlink(missing_ok=True)
    staged = {p.name[: -len(EXTENSION)] for p in staging.glob(f"*{EXTENSION}")}
    existing = set(Tile.objects.filter(public_id__in=staged).values_list("public_id", flat=True))
    for public_id in existing:
        promote(staging=staging, public_id=public_id)
    for public_id in staged - existing:
        discard(staging=staging, public_id=public_id)
    Tile.objects.filter(public_id__in=existing).update(active=True)
    staging_remove_if_empty(staging)
    return len(existing), len(staged - existing)


def staging_sweep(*, older_than_s: float) -> list[str]:
    """Reconcile every staging folder untouched for `older_than_s` seconds (their writers are gone)."""
    root = Path(settings.MEDIA_ROOT) / STAGING
    if not root.is_dir():
        return []
    cutoff = time.time() - older_than_s
    settled = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.stat().st_mtime < cutoff:
            staging_reconcile(folder)
            settled.append(folder.name)
    return settled
