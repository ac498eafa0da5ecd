from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """The networks in these tests are tiny: intra-op threads gain nothing, and on a busy two-core
    machine OpenMP's spinning threads made tests up to twenty times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
