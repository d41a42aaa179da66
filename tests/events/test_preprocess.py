"""Foreground, ALS baseline, normalisation and ΔF/F."""

from __future__ import annotations

import numpy as np

from cascope.events.preprocess import preprocess, triangle_foreground
from cascope.preprocess.dff import als_baseline, baseline_reliable, delta_f_over_f, roi_traces


def test_als_follows_drift_but_not_transients() -> None:
    t = np.arange(400.0)
    drift = 100 * np.exp(-t / 300)
    y = drift.copy()
    y[150:160] += 30
    b = als_baseline(y, lam=1e3, p=0.01)
    assert np.abs(b - drift).max() < 1.0


def test_foreground_and_normalisation(rng: np.random.Generator) -> None:
    movie = rng.normal(10, 1, (40, 32, 32)).astype(np.float32)
    movie[:, 10:20, 5:25] += 90
    bleach = np.linspace(1.0, 0.8, 40, dtype=np.float32)[:, None, None]
    movie = movie * bleach
    fg = triangle_foreground(movie.mean(0))
    assert fg[12:18, 7:23].all() and not fg[25:, :].any()
    norm = preprocess(movie)
    assert abs(norm.f - movie[:, fg].mean()) / norm.f < 0.02
    x = norm.apply(movie)
    # the foreground mean of every frame is brought to ~0 despite the 20 % bleaching
    assert np.abs(x[:, fg].mean(axis=1)).max() < 0.03
    np.testing.assert_allclose(norm.view(movie)[5:9], x[5:9], rtol=1e-5)


def test_roi_dff_both_baselines() -> None:
    t = np.arange(300)
    trace = np.full(300, 50.0)
    trace[100:105] = 75.0
    movie = np.broadcast_to(trace[:, None, None], (300, 4, 4)).astype(np.float32)
    rois = np.zeros((4, 4), int)
    rois[:2] = 1
    tr = roi_traces(movie, rois)
    assert tr.shape == (1, 300)
    for method in ("als", "percentile"):
        dff = delta_f_over_f(tr, method=method)
        assert abs(dff[0, 102] - 0.5) < 0.05
        assert np.abs(dff[0, t > 150]).max() < 0.02


def test_dff_is_nan_where_the_baseline_is_within_the_noise_of_dark(rng) -> None:
    bright = 50.0 + rng.normal(0, 1, 300)
    dark = np.abs(rng.normal(0, 1, 300))  # resting at the dark level
    traces = np.stack([bright, dark])
    for method in ("als", "percentile"):
        dff = delta_f_over_f(traces, method=method)
        assert np.isfinite(dff[0]).all() and np.isnan(dff[1]).all()
    assert list(baseline_reliable(traces)) == [True, False]
    # the global-percentile form (what trace fidelity uses) keeps any positive baseline
    dff = delta_f_over_f(traces, method="percentile", window=None, min_snr=0)
    assert np.isfinite(dff[0]).all()
