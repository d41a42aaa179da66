"""Seeded synthetic scenes with known clean values for the denoising tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import ndimage


def smooth_scene(rng: np.random.Generator, shape: tuple[int, ...]) -> NDArray[np.float64]:
    """Blobs on a constant background, smooth along every axis (positive values ~100-300)."""
    spikes = (rng.random(shape) < 0.01).astype(np.float64)
    blobs = ndimage.gaussian_filter(spikes, sigma=[1.5] * (len(shape) - 2) + [2.5, 2.5])
    blobs *= 200.0 / max(blobs.max(), 1e-12)
    return 100.0 + blobs


@pytest.fixture
def make_scene() -> Callable[[np.random.Generator, tuple[int, ...]], NDArray[np.float64]]:
    """The scene builder, for tests that need other shapes."""
    return smooth_scene


@pytest.fixture
def scene(rng: np.random.Generator) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(clean, noisy) TYX movie, 6 x 48 x 48, Gaussian noise of sigma 12."""
    clean = smooth_scene(rng, (6, 48, 48))
    noisy = clean + rng.normal(0.0, 12.0, clean.shape)
    return clean, noisy
