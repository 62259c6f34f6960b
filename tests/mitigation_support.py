"""Shared by the tests/test_mitigation_*.py modules."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    """The models and re-rankers in these tests are tiny: one torch thread avoids oversubscribing a
    shared CPU (on the 2-core development machine under load, 2 threads made re-ranking ~10x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
