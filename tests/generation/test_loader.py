"""The web workers' loader refuses damaged weights, naming the file, like every other loader."""

from __future__ import annotations

import pytest

from generation.loader import cached_generator, weights_sha256
from tests.generation.conftest import make_gan_run
from tests.support.damage import corrupt_tensor_bytes
from training.utils.checkpoints import CheckpointError


def test_a_worker_refuses_weights_whose_tensors_were_damaged(tmp_path):
    run = make_gan_run(tmp_path / "run")
    weights = run / "generator_ema.safetensors"
    corrupt_tensor_bytes(weights)
    # Registered as it is now (the file hash matches): only the checksum written at save time can tell.
    with pytest.raises(CheckpointError, match=rf"{weights}: damaged: its tensors do not match the checksum"):
        cached_generator(str(run), weights_sha256(run))


def test_a_worker_loads_intact_weights(tmp_path):
    run = make_gan_run(tmp_path / "run")
    assert cached_generator(str(run), weights_sha256(run)).kind == "gan"
