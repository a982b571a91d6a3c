import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic_cpu():
    """Small CPU models: one thread per test process is fastest and keeps results reproducible."""
    torch.manual_seed(0)
    yield
