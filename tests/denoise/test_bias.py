"""The default temporal denoiser keeps the mean intensity, overall and inside bright structures."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import uniform_filter, uniform_filter1d

from cascope.config.denoise import DENOISE_STEPS, DeepDenoiseConfig
from cascope.config.simulate import CameraParams
from cascope.denoise.calibration import calibrate, measure_gain
from cascope.denoise.deep import train_denoiser
from cascope.simulate import somatic

CAMERA = CameraParams(gain=1.0, read_noise=0.5, offset=5.0)  # offset near 0, nothing clipped


def _movie(photons: float, frames: int, size: int, seed: int = 1):
    """Somatic movie whose clean mean holds ``photons`` photons per pixel above the offset."""
    common = {"n_frames": frames, "shape": (size, size), "seed": seed, "background": 0.0}
    probe = somatic(photons=10.0, camera=CAMERA, **common)
    per_unit = (float(probe.clean.mean()) - CAMERA.offset) / CAMERA.gain / 10.0
    sim = somatic(photons=photons / per_unit, camera=CAMERA, **common)
    fp = np.asarray(sim.footprints)
    mask = (fp > 0.5 * fp.max(axis=(1, 2), keepdims=True)).any(0)
    return sim, mask


def _bias(out: np.ndarray, clean: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Deviation of the mean from the clean mean, as a fraction of the clean signal."""
    if mask is not None:
        out, clean = out[:, mask], clean[:, mask]
    c = float(clean.mean(dtype=np.float64))
    return (float(out.mean(dtype=np.float64)) - c) / (c - CAMERA.offset)


@pytest.mark.parametrize("photons", [0.5, 1.0, 5.0, 50.0])
@pytest.mark.parametrize("gain", [0.7, 1.3])
def test_calibration_measures_a_denoisers_gain_from_independent_frames(photons, gain):
    # A smoothing "denoiser" with a wrong gain and offset: the calibration must find the gain
    # from the interleaved frames alone (their noise is independent), so that the corrected
    # output keeps the clean mean inside the neurons as well as overall, at any photon count.
    sim, mask = _movie(photons, frames=64, size=64)
    noisy = sim.noisy.astype(np.float32)

    def denoiser(stack: np.ndarray) -> np.ndarray:
        return gain * uniform_filter1d(stack.astype(np.float64), 5, axis=0, mode="nearest") + 3.0

    cal = calibrate(denoiser, noisy, "deepcad")
    assert cal is not None and cal.gain_measured is not None
    assert cal.gain_measured == pytest.approx(gain, rel=0.03)
    out = cal.correct(denoiser(noisy))
    floor_all, floor_fp = _bias(noisy, sim.clean), _bias(noisy, sim.clean, mask)
    assert abs(_bias(out, sim.clean) - floor_all) < 1e-6  # the noisy movie's own mean
    assert abs(_bias(out, sim.clean, mask) - floor_fp) < 0.01
    uncorrected = denoiser(noisy) - float(denoiser(noisy).mean()) + float(noisy.mean())
    assert abs(_bias(uncorrected, sim.clean, mask)) > 0.05  # an offset alone cannot do this


@pytest.mark.parametrize("photons", [0.5, 1.0, 5.0, 50.0])
@pytest.mark.parametrize("power", [0.6, 1.5])
def test_response_curve_undoes_a_denoiser_whose_response_is_not_affine(photons, power):
    # A "denoiser" whose output is a power of the (smoothed) signal: dim and bright structures
    # get different gains, as deepcad's after a default-length training at 0.5 photons (which
    # lifted bright structures more). The curve measured on the interleaved frames keeps the
    # neurons within 1.25 % of the noisy movie's own mean there (measured: -0.2 % to -1.1 %);
    # for the compressive response the affine correction is off by about twice as much.
    sim, mask = _movie(photons, frames=64, size=64)
    noisy = sim.noisy.astype(np.float32)
    level = float(noisy.mean()) - CAMERA.offset

    def denoiser(stack: np.ndarray) -> np.ndarray:
        s = uniform_filter(stack.astype(np.float64), (5, 3, 3), mode="nearest") - CAMERA.offset
        return level * np.sign(s) * np.abs(s / level) ** power + 3.0

    cal = calibrate(denoiser, noisy, "deepcad")
    assert cal is not None and cal.curve is not None
    assert np.all(np.diff(cal.curve.values) >= 0)
    out = cal.correct(denoiser(noisy))
    floor_all, floor_fp = _bias(noisy, sim.clean), _bias(noisy, sim.clean, mask)
    assert abs(_bias(out, sim.clean) - floor_all) < 1e-6
    off_curve = abs(_bias(out, sim.clean, mask) - floor_fp)
    assert off_curve < 0.0125
    gain = measure_gain(denoiser, noisy, "deepcad")
    assert gain is not None
    affine = denoiser(noisy) / gain
    affine += float(noisy.mean()) - float(affine.mean())
    if power < 1:
        assert abs(_bias(affine, sim.clean, mask) - floor_fp) > off_curve + 0.005


def test_calibration_keeps_the_offset_where_no_gain_can_be_measured():
    # A flat field has no contrast to measure a gain against: the offset is still corrected.
    rng = np.random.default_rng(0)
    flat = rng.poisson(3.0, (32, 24, 24)).astype(np.float32)
    cal = calibrate(lambda s: 0.5 * s.astype(np.float64), flat, "deepcad")
    assert cal is not None and cal.gain_measured is None and cal.scale == 1.0
    assert cal.shift == pytest.approx(0.5 * float(flat.mean()), rel=1e-6)
    blind = calibrate(lambda s: 0.5 * s.astype(np.float64), flat, "n2v")
    assert blind is not None and blind.gain_measured is None


@pytest.mark.parametrize("loss", ["l2", pytest.param("l1+l2", marks=pytest.mark.slow)])
def test_deepcad_output_keeps_the_clean_mean_after_any_short_training(loss):
    # ~1 photon per pixel. After 40 steps of this small network (seeds 0-2, 0.5-50 photons
    # measured) the output's gain is 1.1 to 1.6, so an offset correction alone leaves +6 % to
    # +39 % inside the neurons; the intensity calibration (a response curve) brings the overall
    # mean to the noisy movie's own and the neurons to within -2.6 % to +0.9 % (at 1 photon
    # -0.6 % to +0.9 %; the former affine correction +2.1 % to +3.1 %).
    sim, mask = _movie(1.0, frames=32, size=48)
    cfg = DeepDenoiseConfig.model_validate(
        {
            "method": "deepcad",
            "loss": loss,
            "patch": (4, 32, 32),
            "depth": 2,
            "base": 8,
            "training": {"steps": 40, "val_every": 10, "seed": 0},
        }
    )
    assert DeepDenoiseConfig().loss == "l2" and cfg.mean_correction
    model, _ = train_denoiser(sim.noisy, config=cfg, device="cpu")
    out = model.predict(sim.noisy, device="cpu")
    assert out is not None and np.isfinite(out).all()
    noisy = sim.noisy.astype(np.float32)
    assert abs(_bias(out, sim.clean) - _bias(noisy, sim.clean)) < 0.005
    assert abs(_bias(out, sim.clean, mask)) < 0.03
    assert model.output_curve is not None  # a response was measured and applied


@pytest.mark.slow
@pytest.mark.parametrize("photons", [0.5, 1.0, 5.0, 50.0])
def test_deepcad_keeps_the_clean_mean_inside_neurons_at_any_photon_count(photons):
    # The benchmark's setting (benchmarks/denoise_bias.py, the default 1000 steps): inside the
    # neurons the output calibrated by its response curve was within -0.85 % to +0.33 % of the
    # clean mean at 0.5-50 photons (seeds 0 and 1; an offset correction alone: -3.2 % to
    # +30 %; the former affine correction +2.1 % at 0.5 photons, and +1.4 % to +3.0 % in four
    # of six 0.5-photon runs). The bound leaves room for another CPU's trajectory; overall the
    # output keeps the noisy movie's own mean exactly.
    sim, mask = _movie(photons, frames=60, size=64, seed=0)
    noisy = sim.noisy.astype(np.float32)
    cfg = DeepDenoiseConfig.model_validate(
        {
            "method": "deepcad",
            "patch": (8, 48, 48),
            "depth": 3,
            "base": 8,
            "training": {"steps": DENOISE_STEPS, "batch_size": 4, "val_every": 50, "seed": 0},
        }
    )
    model, _ = train_denoiser(noisy, config=cfg, device="cpu")
    out = model.predict(noisy, device="cpu")
    assert out is not None and np.isfinite(out).all()
    assert model.output_curve is not None
    assert abs(_bias(out, sim.clean) - _bias(noisy, sim.clean)) < 1e-3
    assert abs(_bias(out, sim.clean, mask)) < 0.015
