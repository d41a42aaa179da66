"""Evenly spaced plane sampling: the one helper the denoisers' statistics come from."""

import numpy as np
import pytest

from cascope.io import Movie
from cascope.preprocess.sampling import evenly_spaced, sample_planes


@pytest.mark.parametrize(("n", "count"), [(1, 16), (10, 4), (100, 16), (64, 64), (5, 100)])
def test_indices_are_unique_sorted_and_span_the_recording(n, count):
    idx = evenly_spaced(n, count)
    assert len(idx) == min(n, count)
    assert idx[0] == 0 and idx[-1] == n - 1
    assert np.all(np.diff(idx) > 0)
    gaps = np.diff(idx)
    if len(gaps):  # evenly spaced: gaps differ by at most one plane
        assert gaps.max() - gaps.min() <= 1


def test_no_planes_give_no_indices():
    assert evenly_spaced(0, 16).size == 0


def test_planes_are_read_one_by_one_from_a_lazy_movie():
    data = np.arange(30 * 4 * 5, dtype=np.uint16).reshape(30, 4, 5)
    sample = sample_planes(Movie(data, axes="TYX"), 4, dtype=np.float64)
    assert sample.shape == (4, 4, 5) and sample.dtype == np.float64
    np.testing.assert_array_equal(sample, data[evenly_spaced(30, 4)])
