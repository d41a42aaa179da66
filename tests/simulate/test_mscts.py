import numpy as np
import pytest

from cascope.simulate import mscts


@pytest.fixture(scope="module")
def sim():
    return mscts(seed=5, n_frames=300, shape=(96, 96))


def test_same_seed_identical_different_seed_differs():
    a = mscts(seed=1, n_frames=40, shape=(48, 48))
    b = mscts(seed=1, n_frames=40, shape=(48, 48))
    c = mscts(seed=2, n_frames=40, shape=(48, 48))
    np.testing.assert_array_equal(a.noisy, b.noisy)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.events.equals(b.events)
    assert not np.array_equal(a.dendrites, c.dendrites)


def test_outputs_and_event_table(sim):
    ev = sim.events
    assert sim.noisy.dtype == np.uint16 and sim.clean.dtype == np.float32
    assert sim.labels.dtype == np.int32 and sim.labels.shape == sim.noisy.shape
    assert {"id", "t", "y", "x", "t_start", "t_end", "area", "amplitude"} <= set(ev.columns)
    assert len(ev) >= 10
    assert set(np.unique(sim.labels)) - {0} == set(ev["id"])
    np.testing.assert_array_equal(np.bincount(sim.labels.ravel())[ev["id"]], ev["area"])
    lo, hi = sim.params.amplitude
    assert ev["amplitude"].between(lo, hi).all()
    # rare: a tiny fraction of voxels
    assert 0 < (sim.labels > 0).mean() < 0.02


def test_events_lie_on_dendrites(sim):
    ys = np.clip(np.round(sim.events["y"]).astype(int), 0, 95)
    xs = np.clip(np.round(sim.events["x"]).astype(int), 0, 95)
    assert sim.dendrites[ys, xs].all()
    assert 0.05 < sim.dendrites.mean() < 0.5


def test_labels_sit_where_the_clean_movie_rises(sim):
    dff = sim.dff()
    inside = dff[sim.labels > 0]
    outside = dff[sim.labels == 0]
    # outside the labels an event's ΔF/F stays below label_fraction of its peak
    bound = sim.params.label_fraction * sim.events["amplitude"].max()
    assert np.abs(outside).max() <= 1.05 * bound
    assert inside.mean() > 50 * max(outside.mean(), 1e-4)
    assert inside.min() > 0.9 * sim.params.label_fraction * sim.params.amplitude[0]


def test_each_event_label_frames_hold_its_clean_peak(sim):
    off = sim.params.camera.offset
    signal = sim.clean - off - (sim.baseline - off)[None] * sim.bleach[:, None, None]
    for row in sim.events.itertuples():
        mask = (sim.labels == row.id).any(axis=0)
        t0, t1 = max(row.t_start - 15, 0), min(row.t_end + 15, sim.params.n_frames)
        course = signal[t0:t1, mask].mean(axis=1)
        peak = t0 + int(np.argmax(course))
        assert row.t_start <= peak < row.t_end
        assert row.t_start <= row.t < row.t_end
        assert row.t_end - row.t_start <= 40


def test_amplitude_is_peak_dff_at_the_centre():
    sim = mscts(seed=9, n_frames=200, shape=(64, 64), psf_sigma=0.0)
    dff = sim.dff()
    for row in sim.events.itertuples():
        y, x = int(round(row.y)), int(round(row.x))
        measured = dff[row.t_start : row.t_end, y, x].max()
        assert measured == pytest.approx(row.amplitude, rel=0.35)


def test_bleaching_option():
    sim = mscts(seed=0, n_frames=50, shape=(48, 48), bleaching=0.3)
    assert sim.bleach[0] == 1 and sim.bleach[-1] == pytest.approx(0.7)
    off = sim.params.camera.offset
    assert (sim.clean[-1].mean() - off) < 0.8 * (sim.clean[0].mean() - off)
