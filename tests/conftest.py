"""Shared fixtures: seeded random generators and the real example files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Run torch on one thread: small test models gain nothing from more, and on a busy 2-core
    machine OpenMP threads that wait on each other slow the whole suite down many times over."""
    try:
        import torch
    except ImportError:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def real_data() -> Path:
    """Folder of real example recordings; tests using it skip when it is absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real example data not found at {REAL_DATA} (a plain clone has no ../shared)")
    return REAL_DATA
