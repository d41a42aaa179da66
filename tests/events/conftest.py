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


#: Simulated mSCT movies the event network is trained and tested on.
NETWORK_SIM = {"n_frames": 96, "shape": (48, 48), "event_rate": 30.0, "photons": 10.0}


def train_small_event_model(device: str) -> object:
    """A small event U-Net trained on two simulated movies (seeds 1, 2), threshold on seed 3.

    Returns ``(model, train_result)``.
    """
    from cascope.config.events import EventTrainConfig
    from cascope.config.training import TrainingConfig
    from cascope.events.train import train_event_detector
    from cascope.simulate import mscts

    train = [mscts(seed=s, **NETWORK_SIM) for s in (1, 2)]
    valid = mscts(seed=3, **NETWORK_SIM)
    config = EventTrainConfig(
        window=(16, 32, 32),
        cache=(24, 48, 48),
        model={"depth": 3, "base": 8},
        pu={"pos_weight": 2.0, "unlabeled_ratio": 1.0},
        training=TrainingConfig(steps=300, batch_size=2, val_every=10_000, lr=2e-3),
    )
    return train_event_detector(
        [s.noisy for s in train],
        [s.labels for s in train],
        config=config,
        valid=([valid.noisy], [valid.labels]),
        device=device,
    )


@pytest.fixture(scope="session")
def trained_event_model() -> object:
    """:func:`train_small_event_model` on the CPU, trained once per session."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_small_event_model("cpu")
    finally:
        torch.set_num_threads(old)


def end_bin_ratios(times: object, n_frames: int, bins: int) -> tuple[float, float]:
    """Counts of the first and last time bins of ``times``, each over the mean bin count."""
    counts, _ = np.histogram(np.asarray(times, float), bins=bins, range=(0, n_frames))
    mean = counts.mean()
    return float(counts[0] / mean), float(counts[-1] / mean)
