from __future__ import annotations

import numpy as np
import pytest
import yaml

from cascope.io import Movie
from cascope.preprocess import Normalization, meanstd_normalization, percentile_normalization


@pytest.mark.parametrize("factory", [percentile_normalization, meanstd_normalization])
def test_inverse_round_trips(rng, factory):
    data = rng.gamma(2.0, 300.0, (5, 20, 30)).astype(np.uint16)
    norm = factory(data)
    back = norm.invert(norm.apply(data))
    np.testing.assert_allclose(back, data, rtol=1e-5, atol=1e-2)


def test_percentiles_map_to_zero_and_one(rng):
    data = rng.normal(1000, 50, (4, 64, 64))
    norm = percentile_normalization(data, low=2, high=98)
    out = norm.apply(data)
    assert np.mean(out < 0) == pytest.approx(0.02, abs=0.005)
    assert np.mean(out > 1) == pytest.approx(0.02, abs=0.005)
    assert norm.offset == pytest.approx(np.percentile(data, 2))


def test_sampled_movie_estimates_percentiles(rng):
    data = rng.normal(10, 2, (200, 16, 16)).astype(np.float32)
    norm = percentile_normalization(
        Movie(data, axes="TYX"), low=1, high=99, max_values=16 * 16 * 20
    )
    full = np.percentile(data, [1, 99])
    assert norm.offset == pytest.approx(full[0], abs=0.3)
    assert norm.offset + norm.scale == pytest.approx(full[1], abs=0.3)


def test_constant_image_gets_unit_scale():
    norm = percentile_normalization(np.full((8, 8), 7.0))
    assert norm.scale == 1.0 and norm.offset == 7.0


def test_record_serialises_and_restores():
    norm = Normalization(offset=3.5, scale=2.0, method="percentile", params={"low": 1, "high": 99})
    again = Normalization.model_validate(yaml.safe_load(yaml.safe_dump(norm.model_dump())))
    assert again == norm
    with pytest.raises(ValueError):
        Normalization(offset=0.0, scale=0.0)


def test_input_is_not_mutated(rng):
    data = rng.random((4, 4)).astype(np.float32)
    before = data.copy()
    Normalization(offset=1.0, scale=2.0).apply(data)
    np.testing.assert_array_equal(data, before)


def test_per_frame_baseline_round_trips_by_block_and_serialises(rng):
    from cascope.events.preprocess import preprocess

    movie = rng.normal(100.0, 5.0, (30, 16, 16)) * np.linspace(1.0, 0.7, 30)[:, None, None]
    movie = movie.astype(np.float32)
    movie[:, 4:12, 4:12] += 200.0
    norm = preprocess(movie)
    assert norm.method == "baseline" and norm.baseline.shape == (30,)
    block = norm.apply(movie[10:20], 10)
    np.testing.assert_array_equal(block, norm.apply(movie)[10:20])
    np.testing.assert_allclose(norm.invert(block, 10), movie[10:20], rtol=1e-5)
    # the drift is gone: the foreground's mean is the same in every frame
    assert np.ptp(norm.apply(movie)[:, norm.foreground].mean(axis=1)) < 0.05
    again = Normalization.model_validate(yaml.safe_load(yaml.safe_dump(norm.model_dump())))
    assert again == norm
    np.testing.assert_array_equal(again.view(movie)[10:20], block)
    with pytest.raises(ValueError, match="outside the 30 frames"):
        norm.apply(movie[:5], 28)
