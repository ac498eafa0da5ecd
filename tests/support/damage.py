"""Ways to damage files the way disks, copies and careless hands do, for tests of the refusals."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path


def safetensors_data_offset(path: Path) -> int:
    """Where the tensor bytes of a safetensors file start (after the 8-byte length and the JSON header)."""
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
    return 8 + length


def corrupt_tensor_bytes(path: str | os.PathLike[str], *, fill: bytes = b"\0") -> None:
    """Overwrite every tensor byte, keeping the header intact: the file still parses and loads."""
    path = Path(path)
    start = safetensors_data_offset(path)
    size = path.stat().st_size - start
    with open(path, "r+b") as handle:
        handle.seek(start)
        handle.write((fill * size)[:size])


def safetensors_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    path = Path(path)
    with open(path, "rb") as handle:
        handle.seek(8)
        header = json.loads(handle.read(safetensors_data_offset(path) - 8))
    return header.get("__metadata__", {})


def random_lmdb(folder: str | os.PathLike[str], size: int = 64 * 1024) -> Path:
    """A folder holding a data.mdb of random bytes: what a half-copied or overwritten store looks like."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.mdb").write_bytes(os.urandom(size))
    return folder
