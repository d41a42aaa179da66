"""Seeded synthetic fixtures for event detection: hand-built events with known properties."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    # on shared cores several intra-op threads spin against each other; one is much faster
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def make_event_movie(
    *,
    shape: tuple[int, int, int] = (80, 32, 32),
    events: list[dict[str, float]],
    f0: float = 100.0,
    noise: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A flat movie with box-shaped events of a linear rise and an exponential decay.

    Each event dict holds ``t0`` (onset frame), ``y0, x0, h, w`` (footprint box), ``rise``
    (frames from 0 to the peak, linear), ``tau`` (decay constant, frames), ``amp`` (peak ΔF/F)
    and ``length`` (labelled frames from the onset).
    Returns the movie and its event labels (ids in list order).
    """
    rng = np.random.default_rng(seed)
    movie = np.full(shape, f0, np.float64)
    labels = np.zeros(shape, np.int32)
    t = np.arange(shape[0], dtype=np.float64)
    for i, ev in enumerate(events, start=1):
        s = t - ev["t0"]
        rise = max(ev["rise"], 1e-9)
        prof = np.where(s < 0, 0.0, np.where(s <= rise, s / rise, np.exp(-(s - rise) / ev["tau"])))
        ys = slice(int(ev["y0"]), int(ev["y0"] + ev["h"]))
        xs = slice(int(ev["x0"]), int(ev["x0"] + ev["w"]))
        movie[:, ys, xs] += f0 * ev["amp"] * prof[:, None, None]
        ts = slice(int(ev["t0"]), int(ev["t0"] + ev["length"]))
        labels[ts, ys, xs] = i
    if noise:
        movie += rng.normal(0, noise, shape)
    return movie.astype(np.float32), labels


@pytest.fixture
def event_movie() -> object:
    """The :func:`make_event_movie` factory."""
    return make_event_movie
