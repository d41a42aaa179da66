import numpy as np
import pytest

from cascope.simulate import pairs


@pytest.mark.parametrize("scene", ["somatic", "dendrites"])
def test_pairs_share_the_scene_with_independent_noise(scene):
    sim = pairs(seed=2, n_images=6, shape=(64, 64), scene=scene)
    off = sim.params.camera.offset
    assert sim.noisy_a.shape == sim.noisy_b.shape == sim.high_snr.shape == (6, 64, 64)
    assert sim.noisy_a.dtype == np.uint16
    ra = sim.noisy_a - sim.clean.astype(np.float64)
    rb = sim.noisy_b - sim.clean.astype(np.float64)
    assert abs(np.corrcoef(ra.ravel(), rb.ravel())[0, 1]) < 0.03
    assert abs(ra.mean()) < 0.1
    scale = sim.params.photons_high / sim.params.photons_low
    np.testing.assert_allclose(sim.clean_high - off, scale * (sim.clean - off), rtol=1e-4)
    # the high-SNR image is much closer to its expectation, relative to the signal
    rel_low = ra.std() / (sim.clean - off).std()
    rel_high = (sim.high_snr - sim.clean_high.astype(np.float64)).std() / (
        sim.clean_high - off
    ).std()
    assert rel_high < rel_low / 4
    # scenes differ from one another
    assert not np.allclose(sim.scene[0], sim.scene[1])


def test_pairs_seeded():
    a = pairs(seed=1, n_images=2, shape=(32, 32))
    b = pairs(seed=1, n_images=2, shape=(32, 32))
    np.testing.assert_array_equal(a.noisy_b, b.noisy_b)
