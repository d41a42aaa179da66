"""Shared fixtures: seeded random generators and the real example files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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
