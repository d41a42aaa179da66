from __future__ import annotations

import numpy as np
import pytest

from cascope.preprocess import generalized_anscombe, inverse_generalized_anscombe


@pytest.mark.parametrize("photons", [5.0, 20.0, 200.0])
def test_variance_is_stabilised_to_one(rng, photons):
    gain, read_noise, offset = 2.5, 4.0, 100.0
    z = offset + gain * rng.poisson(photons, 200_000) + rng.normal(0, read_noise, 200_000)
    f = generalized_anscombe(z, gain=gain, read_noise=read_noise, offset=offset)
    assert f.std() == pytest.approx(1.0, abs=0.06)


@pytest.mark.parametrize("photons", [3.0, 30.0, 300.0])
def test_unbiased_inverse_recovers_the_mean(rng, photons):
    gain, read_noise, offset = 2.0, 3.0, 50.0
    z = offset + gain * rng.poisson(photons, 400_000) + rng.normal(0, read_noise, 400_000)
    f = generalized_anscombe(z, gain=gain, read_noise=read_noise, offset=offset)
    # an ideal denoiser returns the mean of the stabilised values
    back = inverse_generalized_anscombe(
        np.array([f.mean()]), gain=gain, read_noise=read_noise, offset=offset
    )
    expected = offset + gain * photons
    assert back[0] == pytest.approx(expected, rel=0.02)
