import numpy as np
import pytest

from cascope.io import Movie
from cascope.metrics import delta_f_over_f, extract_traces, trace_correlation


@pytest.fixture
def scene(rng):
    t, y, x = 300, 20, 24
    fp = np.zeros((2, y, x))
    fp[0, 2:8, 2:8] = 1.0
    fp[1, 10:18, 12:22] = np.linspace(0.5, 1.0, 10)[None, :]
    dff = np.zeros((2, t))
    for i, times in enumerate(([20, 120, 210], [60, 180])):
        for s in times:
            dff[i, s:] += 2.0 * np.exp(-np.arange(t - s) / 15.0)
    base = np.array([100.0, 60.0])
    clean = 50.0 + np.einsum("nt,nyx->tyx", base[:, None] * (1 + dff), fp)
    return clean, fp, dff


def test_extract_traces_weighted_mean_by_hand():
    movie = np.arange(2 * 2 * 3, dtype=float).reshape(2, 2, 3)
    fp = np.zeros((1, 2, 3))
    fp[0, 0, 0], fp[0, 1, 2] = 1.0, 3.0
    got = extract_traces(movie, fp)
    # frame 0: (0*1 + 5*3) / 4; frame 1: (6*1 + 11*3) / 4
    np.testing.assert_allclose(got, [[15 / 4, 39 / 4]])


def test_delta_f_over_f_baseline_percentile():
    f = np.array([[110.0, 110.0, 130.0, 110.0, 150.0]])
    dff = delta_f_over_f(f, percentile=0.0, offset=10.0)
    np.testing.assert_allclose(dff, [[0.0, 0.0, 0.2, 0.0, 0.4]])


def test_clean_movie_correlates_perfectly_and_noise_lowers_r(scene, rng):
    clean, fp, dff = scene
    res = trace_correlation(Movie(clean, axes="TYX"), fp, dff, offset=50.0)
    np.testing.assert_allclose(res.r, 1.0, atol=1e-9)
    noisy = clean + rng.normal(0, 80.0, clean.shape)
    worse = trace_correlation(noisy, fp, dff)
    assert 0.3 < worse.mean < 0.99
    assert worse.to_dict()["n_neurons"] == 2


def test_shuffled_truth_correlates_poorly(scene):
    clean, fp, dff = scene
    res = trace_correlation(clean, fp, dff[::-1])
    assert res.mean < 0.5


def test_shape_checks(scene):
    clean, fp, dff = scene
    with pytest.raises(ValueError, match="footprints"):
        trace_correlation(clean, fp[:, :5], dff)
    with pytest.raises(ValueError, match="ground-truth"):
        trace_correlation(clean, fp, dff[:, :10])
