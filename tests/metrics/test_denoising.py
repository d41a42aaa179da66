import numpy as np
import pytest
from scipy import ndimage as ndi

from cascope.metrics import (
    psnr,
    score_denoising,
    si_psnr,
    si_psnr_improvement,
    si_psnr_per_frame,
    ssim,
)
from cascope.simulate import somatic


@pytest.fixture(scope="module")
def movie():
    return somatic(n_frames=60, shape=(48, 48), photons=4.0, seed=3)


def test_denoising_scores_rise_over_the_noisy_input(movie):
    noisy = movie.noisy.astype(np.float32)
    smooth = ndi.gaussian_filter(noisy, (1.0, 1.5, 1.5))
    truth = {"footprints": movie.footprints, "dff_true": movie.dff}
    before = score_denoising(noisy, movie.clean, noisy=noisy, **truth)
    after = score_denoising(smooth, movie.clean, noisy=noisy, **truth)
    assert after.psnr > before.psnr + 3
    assert after.ssim > before.ssim
    assert after.si_psnr > before.si_psnr + 3
    assert before.si_psnr_gain == pytest.approx(0.0)
    assert after.si_psnr_gain == pytest.approx(after.si_psnr - before.si_psnr)
    assert after.trace_corr is not None and before.trace_corr is not None
    assert after.trace_corr >= before.trace_corr - 0.01


def test_one_data_range_the_clean_movies_for_psnr_and_ssim(movie):
    pred = ndi.uniform_filter(movie.noisy.astype(np.float64), 3)
    s = score_denoising(pred, movie.clean)
    rng = float(np.ptp(movie.clean))
    assert s.data_range == pytest.approx(rng)
    assert s.psnr == pytest.approx(psnr(pred, movie.clean, data_range=rng))
    assert s.ssim == pytest.approx(ssim(pred, movie.clean, data_range=rng))
    # a wider range (e.g. the dtype's) would flatter the result: it is never used by default
    assert score_denoising(pred, movie.clean, data_range=65535.0).psnr > s.psnr + 10


def test_si_psnr_whole_recording_or_per_frame(movie):
    noisy = movie.noisy.astype(np.float64)
    pred = ndi.gaussian_filter(noisy, 1.0)
    whole = score_denoising(pred, movie.clean, noisy=noisy)
    frames = score_denoising(pred, movie.clean, noisy=noisy, per_frame=True)
    assert whole.si_psnr == pytest.approx(si_psnr(pred, movie.clean))
    assert whole.si_psnr_std is None
    assert frames.si_psnr == pytest.approx(si_psnr_per_frame(pred, movie.clean).mean)
    assert frames.si_psnr_std == pytest.approx(si_psnr_per_frame(pred, movie.clean).std)
    assert frames.si_psnr_gain == pytest.approx(si_psnr_improvement(pred, noisy, movie.clean).mean)
    # the scale of a result does not change its SI-PSNR
    assert score_denoising(3 * pred + 7, movie.clean).si_psnr == pytest.approx(whole.si_psnr)


def test_to_dict_holds_only_what_was_computed(movie):
    noisy = movie.noisy.astype(np.float64)
    assert set(score_denoising(noisy, movie.clean).to_dict()) == {"psnr", "ssim", "si_psnr"}
    demo = score_denoising(noisy, movie.clean, noisy=noisy, per_frame=True).to_dict()
    assert set(demo) == {"psnr", "ssim", "si_psnr", "si_psnr_std", "si_psnr_gain"}
    truth = {"footprints": movie.footprints, "dff_true": movie.dff}
    assert "trace_corr" in score_denoising(noisy, movie.clean, **truth).to_dict()


def test_bad_inputs_are_refused(movie):
    with pytest.raises(ValueError, match="T, Y, X"):
        score_denoising(movie.clean[0], movie.clean[0])
    with pytest.raises(ValueError, match="both footprints and dff_true"):
        score_denoising(movie.clean, movie.clean, footprints=movie.footprints)
