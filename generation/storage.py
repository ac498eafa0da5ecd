"""Where tile files live. A name is derived from the tile's opaque public identifier alone, never from
its source, tissue or checkpoint, and a file appears under its final name only once complete."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from django.conf import settings

from generation.encoding import EXTENSION


def tile_relative_path(public_id: str) -> str:
    # Two-character fan-out keeps folders small on a catalog of millions.
    return f"tiles/{public_id[:2]}/{public_id}{EXTENSION}"


def tile_absolute_path(relative: str) -> Path:
    return Path(settings.MEDIA_ROOT) / relative


def tile_file_write(*, public_id: str, data: bytes) -> str:
    """Write the bytes under a temporary name in the final folder, then rename; return the relative path."""
    relative = tile_relative_path(public_id)
    target = tile_absolute_path(relative)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".partial-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return relative


def tile_file_delete(relative: str) -> None:
    try:
        tile_absolute_path(relative).unlink()
    except FileNotFoundError:
        pass
