"""Feature values on hand-built events with known duration, area, rise and decay."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cascope.events.features import (
    NEIGHBOUR_COLUMNS,
    ROW_COLUMNS,
    decay_tau,
    event_features,
    read_table,
    rise_time,
    write_table,
)


def test_kinetics_helpers() -> None:
    t = np.arange(30.0)
    assert decay_tau(2.0 * np.exp(-t / 5.0)) == pytest.approx(5.0, rel=1e-3)
    # linear rise over 10 samples: 10 %→90 % takes 8 samples
    assert rise_time(np.r_[np.zeros(3), np.linspace(0, 1, 11), np.ones(2)]) == pytest.approx(8.0)
    assert np.isnan(rise_time(np.zeros(5)))


def test_features_of_hand_built_events(event_movie) -> None:
    events = [
        {"t0": 10, "y0": 4, "x0": 4, "h": 4, "w": 5, "rise": 3, "tau": 4, "amp": 0.8, "length": 8},
        {"t0": 40, "y0": 20, "x0": 6, "h": 3, "w": 3, "rise": 1, "tau": 2, "amp": 0.5, "length": 4},
    ]
    movie, labels = event_movie(events=events, f0=100.0)
    rois = np.zeros((32, 32), int)
    rois[:16] = 1
    rois[16:] = 2
    tab = event_features(movie, labels, frame_rate=20.0, f0=np.full((32, 32), 100.0), rois=rois)
    assert list(tab["id"]) == [1, 2]
    a, b = tab.iloc[0], tab.iloc[1]
    assert a["area"] == 4 * 5 * 8 and b["area"] == 3 * 3 * 4
    assert a["footprint_area"] == 20
    assert a["duration_frames"] == 8 and a["duration_s"] == pytest.approx(0.4)
    assert a["dff_peak"] == pytest.approx(0.8, rel=1e-4)
    assert b["dff_peak"] == pytest.approx(0.5, rel=1e-4)
    # linear rise over 3 frames sampled at frames: 10 %→90 % interpolates to 0.8 * 3 frames
    assert a["rise_time_frames"] == pytest.approx(2.4, abs=1e-6)
    assert a["rise_time_s"] == pytest.approx(0.12, abs=1e-6)
    assert a["decay_tau_frames"] == pytest.approx(4.0, rel=0.02)
    assert b["decay_tau_frames"] == pytest.approx(2.0, rel=0.05)
    assert a["y"] == pytest.approx(5.5) and a["x"] == pytest.approx(6.0)
    assert a["major_axis_length"] > a["minor_axis_length"] and a["spatial_aspect"] > 1
    assert b["spatial_aspect"] == pytest.approx(1.0) and b["solidity"] == pytest.approx(1.0)
    assert len(a["profile"]) == 8 and a["profile_max"] == pytest.approx(0.8, rel=1e-4)
    assert a["intensity_max"] == pytest.approx(180.0, rel=1e-4)
    assert (a["roi"], b["roi"]) == (1, 2)
    d = np.hypot(a["y"] - b["y"], a["x"] - b["x"])
    assert a["nn_distance_2d"] == pytest.approx(d)
    assert a["nn_distance_3d"] == pytest.approx(np.sqrt(d**2 + (a["t"] - b["t"]) ** 2))
    assert (a["local_count"], b["local_count"]) == (0, 0)
    assert list(tab.columns) == [*ROW_COLUMNS, "roi", *NEIGHBOUR_COLUMNS]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_movie_without_events_gives_a_table_with_its_columns(event_movie, tmp_path, suffix):
    movie, labels = event_movie(events=[], f0=100.0)
    tab = event_features(movie, labels, frame_rate=20.0)
    assert len(tab) == 0 and list(tab.columns) == [*ROW_COLUMNS, *NEIGHBOUR_COLUMNS]
    write_table(tab, tmp_path / f"events{suffix}")
    back = read_table(tmp_path / f"events{suffix}")
    assert len(back) == 0 and list(back.columns) == list(tab.columns)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_round_trip(tmp_path, suffix: str) -> None:
    tab = pd.DataFrame({"id": [1, 2], "t": [1.5, 2.0], "profile": [[0.1, 0.2], [0.3]]})
    path = tmp_path / f"events{suffix}"
    write_table(tab, path)
    back = read_table(path)
    assert list(back["id"]) == [1, 2] and list(back["t"]) == [1.5, 2.0]


def test_dff_of_an_event_on_a_dark_baseline_is_nan_with_a_reason(event_movie, rng) -> None:
    shape = {"h": 4, "w": 4, "rise": 1, "tau": 3, "amp": 0.8, "length": 6}
    events = [{"t0": 10, "y0": 4, "x0": 4, **shape}, {"t0": 30, "y0": 20, "x0": 20, **shape}]
    movie, labels = event_movie(events=events, f0=100.0)
    movie = movie + rng.normal(0, 1.0, movie.shape).astype(np.float32)
    # the second event sits on a resting level indistinguishable from the dark level
    movie[:, 20:24, 20:24] -= 99.8
    movie[30:33, 20:24, 20:24] += 40.0
    # one dark pixel inside the first event's footprint must not make its ΔF/F explode
    movie[:, 4, 4] = np.maximum(movie[:, 4, 4] - 99.0, 0.0)
    tab = event_features(movie, labels, frame_rate=10.0)
    good, dark = tab.iloc[0], tab.iloc[1]
    assert good["baseline_reliable"] and good["dff_note"] == ""
    assert 0.5 < good["dff_peak"] < 1.2 and good["baseline_f0"] == pytest.approx(94, abs=2)
    assert not dark["baseline_reliable"] and "resting level" in dark["dff_note"]
    for col in ("dff_peak", "dff_mean", "profile_max", "profile_integral", "profile_std"):
        assert np.isnan(dark[col])
    assert np.isnan(dark["profile"]).all()
    # what does not depend on the baseline's scale is still measured
    assert dark["area"] > 0 and np.isfinite(dark["intensity_max"])


def test_an_implausible_dff_marks_the_baseline_unreliable(event_movie) -> None:
    ev = {"t0": 10, "y0": 4, "x0": 4, "h": 4, "w": 4, "rise": 1, "tau": 3, "amp": 50.0, "length": 6}
    movie, labels = event_movie(events=[ev], f0=2.0)
    row = event_features(movie, labels).iloc[0]
    assert not row["baseline_reliable"] and "physiological bound" in row["dff_note"]
    assert np.isnan(row["dff_peak"])
    # a user who expects such values raises the bound
    row = event_features(movie, labels, max_dff=100).iloc[0]
    assert row["dff_peak"] == pytest.approx(50, rel=1e-3)
