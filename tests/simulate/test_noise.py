import numpy as np
import pytest

from cascope.config.simulate import CameraParams
from cascope.simulate import acquire, expected_adu, mscts, somatic


def _fit(mean: np.ndarray, var: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(mean.ravel(), var.ravel(), 1)
    return float(slope), float(intercept)


@pytest.mark.parametrize("gain,read_noise,offset", [(2.0, 1.5, 100.0), (0.5, 3.0, 400.0)])
def test_acquire_mean_variance_follows_camera_model(rng, gain, read_noise, offset):
    cam = CameraParams(gain=gain, read_noise=read_noise, offset=offset)
    photons = np.linspace(1, 200, 64, dtype=np.float32)
    frames = np.broadcast_to(photons, (2000, 64))
    noisy = acquire(frames, cam, rng).astype(np.float64)
    clean = expected_adu(photons, cam)
    np.testing.assert_allclose(clean, offset + gain * photons, rtol=1e-6)
    # unbiased: rounding, not truncation
    np.testing.assert_allclose(noisy.mean(0), clean, atol=4 * np.sqrt(noisy.var(0) / 2000).max())
    slope, intercept = _fit(clean - offset, noisy.var(0, ddof=1))
    assert slope == pytest.approx(gain, rel=0.1)
    expected_intercept = (read_noise * gain) ** 2 + 1 / 12
    assert intercept == pytest.approx(expected_intercept, abs=0.1 * expected_intercept + 0.5)


def test_acquire_clips_to_bit_depth_and_does_not_modify_input(rng):
    cam = CameraParams(bit_depth=8, offset=10, gain=4)
    photons = np.full((10, 10), 500.0)
    before = photons.copy()
    out = acquire(photons, cam, rng)
    assert out.dtype == np.uint16
    assert out.max() == 255
    np.testing.assert_array_equal(photons, before)


def _residual_fit(noisy: np.ndarray, clean: np.ndarray, offset: float) -> tuple[float, float]:
    # clean changes over time, so look at the noise around it: its variance must follow the
    # Poisson-Gaussian model evaluated at the pixel's mean expected value
    resid = noisy.astype(np.float64) - clean
    return _fit(clean.mean(0) - offset, resid.var(0, ddof=1))


def test_somatic_noise_reproduces_mean_variance_relation():
    sim = somatic(seed=3, n_frames=300, shape=(64, 64), photons=30.0)
    cam = sim.params.camera
    slope, intercept = _residual_fit(sim.noisy, sim.clean, cam.offset)
    assert slope == pytest.approx(cam.gain, rel=0.1)
    assert intercept == pytest.approx((cam.read_noise * cam.gain) ** 2, abs=3.0)
    # clean is the expectation of noisy
    assert abs(sim.noisy.mean() - sim.clean.mean()) < 0.05


def test_mscts_noise_reproduces_mean_variance_relation():
    sim = mscts(seed=4, n_frames=300, shape=(64, 64), camera={"gain": 3.0, "offset": 50.0})
    slope, _ = _residual_fit(sim.noisy, sim.clean, 50.0)
    assert slope == pytest.approx(3.0, rel=0.1)
