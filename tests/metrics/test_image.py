import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from cascope.metrics import (
    FrameScores,
    psnr,
    psnr_per_frame,
    si_psnr,
    si_psnr_improvement,
    si_psnr_per_frame,
    ssim,
)


@pytest.fixture
def pair(rng):
    ref = rng.uniform(0, 100, (4, 24, 32))
    pred = ref + rng.normal(0, 5, ref.shape)
    return pred, ref


@pytest.mark.parametrize("data_range", [None, 100.0, 255.0])
def test_psnr_matches_skimage(pair, data_range):
    pred, ref = pair
    expected_range = np.ptp(ref) if data_range is None else data_range
    expected = peak_signal_noise_ratio(ref, pred, data_range=expected_range)
    assert psnr(pred, ref, data_range=data_range) == pytest.approx(expected, rel=1e-12)


def test_psnr_integer_input_uses_explicit_range_not_dtype(rng):
    ref = rng.integers(0, 4096, (16, 16)).astype(np.uint16)
    pred = np.clip(ref.astype(int) + rng.integers(-20, 21, ref.shape), 0, 4095).astype(np.uint16)
    got = psnr(pred, ref, data_range=4095)
    assert got == pytest.approx(peak_signal_noise_ratio(ref, pred, data_range=4095))
    # uint16 arithmetic must not wrap around
    assert got < 60


def test_psnr_equal_is_inf_and_inputs_untouched(pair):
    pred, ref = pair
    before = ref.copy()
    assert psnr(ref, ref) == math.inf
    psnr(pred, ref)
    np.testing.assert_array_equal(ref, before)


def test_psnr_rejects_shape_mismatch_and_constant_ref():
    with pytest.raises(ValueError, match="shape"):
        psnr(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="data range"):
        psnr(np.zeros((2, 2)), np.ones((2, 2)))


def test_ssim_2d_matches_skimage(pair):
    pred, ref = pair
    got = ssim(pred[0], ref[0], data_range=100.0)
    assert got == pytest.approx(structural_similarity(ref[0], pred[0], data_range=100.0))


def test_ssim_movie_is_mean_of_frames(pair):
    pred, ref = pair
    rng_ = float(np.ptp(ref))
    expected = np.mean(
        [structural_similarity(r, p, data_range=rng_) for p, r in zip(pred, ref, strict=True)]
    )
    assert ssim(pred, ref) == pytest.approx(expected)


def test_ssim_3d_matches_skimage_volume(rng):
    ref = rng.uniform(0, 1, (9, 20, 20))
    pred = ref + rng.normal(0, 0.1, ref.shape)
    got = ssim(pred, ref, data_range=1.0, spatial_ndim=3)
    assert got == pytest.approx(structural_similarity(ref, pred, data_range=1.0))


def test_ssim_channel_axis(rng):
    ref = rng.uniform(0, 1, (3, 20, 20))
    pred = ref + rng.normal(0, 0.1, ref.shape)
    got = ssim(pred, ref, data_range=1.0, channel_axis=0)
    expected = structural_similarity(
        np.moveaxis(ref, 0, -1), np.moveaxis(pred, 0, -1), data_range=1.0, channel_axis=-1
    )
    assert got == pytest.approx(expected)


def test_si_psnr_hand_worked_four_pixels():
    # gt = [0, 1, 2, 3]: mean 1.5, std sqrt(1.25); range / std = 3 / sqrt(1.25), squared = 7.2.
    # pred = [0, 2, 1, 3] has Pearson r = 4 / 5 = 0.8 with gt, so the best scaled prediction
    # leaves a residual MSE of (1 - r**2) = 0.36 in std units: SI-PSNR = 10 log10(7.2 / 0.36).
    gt = np.array([0.0, 1.0, 2.0, 3.0])
    pred = np.array([0.0, 2.0, 1.0, 3.0])
    assert si_psnr(pred, gt) == pytest.approx(10 * np.log10(20.0), abs=1e-12)


def test_si_psnr_matches_careamics_steps(rng):
    # The CAREamics recipe written out step by step, independent of the closed form.
    gt = rng.uniform(0, 10, (12, 12))
    pred = 3 * gt + rng.normal(0, 2, gt.shape) + 7
    sd = np.std(gt)
    range_param = (gt.max() - gt.min()) / sd
    gt_n = (gt - gt.mean()) / sd
    q = pred - pred.mean()
    fixed = q * np.sum(gt_n * q) / np.sum(q * q)
    expected = peak_signal_noise_ratio(gt_n - gt_n.mean(), fixed, data_range=range_param)
    assert si_psnr(pred, gt) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize(("a", "b"), [(2.0, 0.0), (0.01, 5.0), (300.0, -1000.0), (-1.0, 3.0)])
def test_si_psnr_is_invariant_to_affine_changes(rng, a, b):
    gt = rng.uniform(0, 1, (16, 16))
    noisy = gt + rng.normal(0, 0.2, gt.shape)
    assert si_psnr(a * noisy + b, gt) == pytest.approx(si_psnr(noisy, gt), rel=1e-9)


def test_si_psnr_goes_up_with_less_noise(rng):
    gt = rng.uniform(0, 1, (32, 32))
    worse = gt + rng.normal(0, 0.3, gt.shape)
    better = gt + rng.normal(0, 0.05, gt.shape)
    assert si_psnr(better, gt) > si_psnr(worse, gt) + 10


def test_si_psnr_perfect_affine_prediction_is_huge():
    gt = np.arange(16.0).reshape(4, 4)
    assert si_psnr(2 * gt + 1, gt) > 200


def test_per_frame_scores_and_improvement(rng):
    gt = rng.uniform(0, 1, (5, 16, 16))
    noisy = gt + rng.normal(0, 0.3, gt.shape)
    pred = gt + rng.normal(0, 0.05, gt.shape)
    per = si_psnr_per_frame(pred, gt)
    assert isinstance(per, FrameScores)
    assert per.values.shape == (5,)
    assert per.values[2] == pytest.approx(si_psnr(pred[2], gt[2]))
    assert per.mean == pytest.approx(per.values.mean())
    assert per.std == pytest.approx(per.values.std())
    imp = si_psnr_improvement(pred, noisy, gt)
    expected = [si_psnr(p, g) - si_psnr(n, g) for p, n, g in zip(pred, noisy, gt, strict=True)]
    np.testing.assert_allclose(imp.values, expected)
    assert imp.mean > 10
    whole = si_psnr_improvement(pred, noisy, gt, axis=None)
    assert whole.values.size == 1
    d = imp.to_dict()
    assert d["n_frames"] == 5 and len(d["values"]) == 5


def test_psnr_per_frame_uses_the_whole_reference_range(rng):
    ref = rng.uniform(0, 1, (3, 8, 8))
    ref[0] *= 0.1  # a dim frame: its own range would flatter it
    pred = ref + 0.01
    per = psnr_per_frame(pred, ref)
    expected = [
        peak_signal_noise_ratio(r, p, data_range=np.ptp(ref))
        for p, r in zip(pred, ref, strict=True)
    ]
    np.testing.assert_allclose(per.values, expected)
