"""Checkpoints loaded once per worker process: a generator stays in (GPU) memory between jobs."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from training.utils.checkpoints import GENERATOR_FILE, CheckpointError

if TYPE_CHECKING:  # the web process never needs torch: workers import it on first use
    from training.inference.generate import LoadedGenerator


def weights_sha256(run_dir: str | Path) -> str:
    path = Path(run_dir) / GENERATOR_FILE
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: weights file not found") from None
    # Every job checks the weights against the catalog; a paper-sized file is ~370 MB, so it is hashed
    # again only when its size or modification time changes.
    return _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=4)
def _load(run_dir: str, sha256: str) -> LoadedGenerator:
    # The hash is part of the key: a run folder retrained in place is loaded afresh.
    from training.inference.generate import load_generator

    return load_generator(run_dir)


def cached_generator(run_dir: str, expected_sha256: str) -> LoadedGenerator:
    actual = weights_sha256(run_dir)
    if actual != expected_sha256:
        raise CheckpointError(
            f"{Path(run_dir) / GENERATOR_FILE}: weights changed since registration "
            f"(sha256 {actual[:12]}…, registered {expected_sha256[:12]}…); register the checkpoint again"
        )
    try:
        return _load(str(run_dir), actual)
    except Exception as exc:
        raise CheckpointError(f"{run_dir}: checkpoint could not be loaded: {exc}") from exc
