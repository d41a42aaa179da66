"""Threshold detection, size filter, block ownership and threshold optimisation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cascope.events.detect import (
    detect_in_blocks,
    detect_threshold_baseline,
    label_events,
    threshold_from_event_f1,
    threshold_from_pr,
)
from cascope.metrics import match_events


def _random_scores(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    from scipy import ndimage

    return ndimage.gaussian_filter(rng.random(shape), (1.5, 1.2, 1.2)).astype(np.float32)


def test_components_use_26_connectivity_and_size_filter() -> None:
    s = np.zeros((12, 12, 12), np.float32)
    s[1:4, 1:4, 1:4] = 1  # kept
    s[4, 4, 4] = 1  # touches the first by a corner only: joins it with 26-connectivity
    s[8:9, 8:11, 8:11] = 1  # one frame long: dropped
    s[7:10, 1:3, 1:4] = 1  # 2 px high: dropped
    lab, tab = label_events(s, threshold=0.5)
    assert len(tab) == 1
    assert tab.loc[0, "area"] == 28
    assert set(np.unique(lab)) == {0, 1}


@pytest.mark.parametrize("block", [3, 7, 16])
def test_blockwise_reports_each_event_once(rng: np.random.Generator, block: int) -> None:
    scores = _random_scores(rng, (60, 24, 24))
    thr = float(np.quantile(scores, 0.93))
    lab_full, full = label_events(scores, threshold=thr)
    assert len(full) > 5
    lab_blk = np.zeros_like(lab_full)
    blk = detect_in_blocks(scores, threshold=thr, block=block, halo=20, labels_out=lab_blk)
    # events crossing the many block borders are reported exactly once, identically
    assert len(blk) == len(full)
    cols = ["t", "y", "x", "area", "t_start", "t_end"]
    a = full[cols].sort_values(cols).to_numpy()
    b = blk[cols].sort_values(cols).to_numpy()
    np.testing.assert_allclose(a, b)
    assert (full["t_end"] - full["t_start"] > block).any() or block > 10
    np.testing.assert_array_equal(lab_blk > 0, lab_full > 0)


def test_event_crossing_border_counted_once() -> None:
    s = np.zeros((20, 10, 10), np.float32)
    s[8:13, 3:7, 3:7] = 1.0  # crosses the border at frame 10
    tab = detect_in_blocks(s, threshold=0.5, block=10, halo=6)
    assert len(tab) == 1 and tab.loc[0, "t_start"] == 8 and tab.loc[0, "t_end"] == 13


def test_threshold_optimisation_recovers_events(rng: np.random.Generator, event_movie) -> None:
    events = [
        {"t0": t0, "y0": y0, "x0": x0, "h": 4, "w": 4, "rise": 1, "tau": 3, "amp": 1, "length": 6}
        for t0, y0, x0 in [(5, 4, 4), (20, 20, 10), (40, 8, 22), (60, 24, 24)]
    ]
    _, labels = event_movie(events=events)
    prob = np.clip((labels > 0) * 0.8 + rng.normal(0, 0.15, labels.shape), 0, 1).astype(np.float32)
    thr = threshold_from_pr(prob, labels)
    assert 0.3 < thr < 0.75
    truth = pd.DataFrame(
        [(e["t0"] + 2.5, e["y0"] + 1.5, e["x0"] + 1.5) for e in events], columns=["t", "y", "x"]
    )
    best, curve = threshold_from_event_f1(prob, truth)
    assert curve["f1"].max() == 1.0 and 0.3 < best < 0.8
    _, tab = label_events(prob, threshold=best)
    assert match_events(tab, truth).f1 == 1.0


def test_threshold_baseline_finds_planted_events(event_movie) -> None:
    events = [
        {"t0": t0, "y0": y0, "x0": x0, "h": 4, "w": 4, "rise": 1, "tau": 4, "amp": 0.6, "length": 8}
        for t0, y0, x0 in [(10, 5, 5), (30, 20, 12), (55, 10, 22)]
    ]
    movie, labels = event_movie(events=events, noise=3.0, seed=1)
    _, tab = detect_threshold_baseline(movie, k=5.0)
    _, truth = label_events(labels > 0, threshold=0.5)
    assert match_events(tab, truth).f1 == 1.0


def test_threshold_detector_scores_are_as_noisy_at_the_ends_as_in_the_middle() -> None:
    from cascope.events.detect import baseline_scores
    from cascope.simulate import mscts

    # pure noise: the fraction of foreground voxels above 2.5 sd is the same in every frame
    rates = []
    for seed in range(300, 310):
        z = baseline_scores(mscts(seed=seed, n_frames=64, shape=(64, 64), event_rate=0).noisy)
        fg = (z != 0).any(axis=0)
        rates.append((z[:, fg] > 2.5).mean(axis=1))
    rate = np.mean(rates, axis=0)
    middle = rate[8:-8].mean()
    assert rate[0] < 1.5 * middle and rate[-1] < 1.5 * middle, (rate[:3], rate[-3:], middle)


def test_threshold_detector_event_times_are_uniform_on_a_stationary_movie() -> None:
    from tests.events.conftest import end_bin_ratios

    from cascope.simulate import mscts

    n_frames, times, truth = 120, [], []
    for seed in range(200, 208):
        # no redrawing of close events (min_separation 0), which would favour the ends
        sim = mscts(
            seed=seed, n_frames=n_frames, shape=(64, 64), event_rate=10.0, min_separation=(0, 0)
        )
        assert sim.bleach.min() == 1.0  # stationary: no bleaching
        _, table = detect_threshold_baseline(sim.noisy, k=3.0)
        times += list(table["t"])
        truth += list(sim.events["t"])
    assert len(times) > 150  # about 20 per bin
    first, last = end_bin_ratios(times, n_frames, bins=12)
    assert first < 1.5 and last < 1.5, (first, last, end_bin_ratios(truth, n_frames, bins=12))
