"""Intensity calibration of a trained denoiser: its output keeps the input's mean and contrast.

A network trained for a limited number of steps (or with a loss that estimates a median) can
return intensities that are off by a constant and by a gain: measured on simulated
Poisson–Gaussian movies, the mean inside bright structures was off by up to +16 % after a short
deepcad training even when the overall mean had been restored (benchmarks/results/denoise_bias.md).
Both are measured here on a sample of the training recording, from quantities whose noise is
independent of the network's input, so that the estimate is unbiased whatever the network
learnt:

- **gain**: the spatial covariance of the output's temporal mean image with an independent
  noisy view of the same scene, divided by the covariance of two independent noisy views with
  each other (which is the clean scene's spatial variance: independent noise does not covary).
  For deepcad the views are the interleaved frames: the network denoises the even frames and is
  compared with the odd ones, and the reverse, as it was trained. For Noise2Noise the second
  recording is the independent view; for CARE the clean target is the reference. A ratio of
  covariances, unlike a least-squares fit of the noisy view on the output, is not pulled towards
  zero by the output's own residual noise.
- **offset**: after the gain, the denoised sample keeps the mean of the target (for the
  self-supervised methods the noisy recording itself, whose mean is the clean mean).

The correction is affine, ``a * output + b``, and is folded into the denoiser's output
normalisation, so a saved model applies it wherever it predicts.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

#: Gains outside this range are not trusted (a field without structure, or too few frames):
#: the correction then keeps the offset only.
GAIN_RANGE = (0.5, 2.0)

Predict = Callable[[NDArray[np.float32]], NDArray[np.floating]]


@dataclass(frozen=True)
class Calibration:
    """``corrected = scale * output + shift`` (input units), and how the scale was found."""

    scale: float
    shift: float
    gain_measured: float | None
    note: str


def _mean_image(stack: NDArray[np.floating]) -> NDArray[np.float64]:
    return np.asarray(stack, np.float64).mean(axis=0)


def _cov(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    return float(np.mean((a - a.mean()) * (b - b.mean())))


def _gain(numerator: float, denominator: float, sigma_floor: float) -> float | None:
    """``numerator / denominator`` when the denominator holds structure above the noise."""
    if not (math.isfinite(numerator) and math.isfinite(denominator)):
        return None
    if denominator <= sigma_floor:
        return None
    g = numerator / denominator
    return g if GAIN_RANGE[0] <= g <= GAIN_RANGE[1] else None


def measure_gain(
    predict: Predict,
    sample: NDArray[np.float32],
    method: str,
    target: NDArray[np.float32] | None = None,
    output: NDArray[np.floating] | None = None,
) -> float | None:
    """Measure the denoiser's intensity gain on a sample, from views with independent noise.

    Parameters
    ----------
    predict : callable
        Denoises a ``(T|Z, Y, X)`` stack, as the recording will be denoised.
    sample : ndarray
        ``(T|Z, Y, X)`` sample of the training input.
    method : str
        ``deepcad``, ``n2n`` or ``care`` (the blind-spot methods have no independent view:
        ``None``).
    target : ndarray, optional
        The same region of the second noisy recording (``n2n``) or of the clean one (``care``).
    output : ndarray, optional
        ``predict(sample)`` when the caller has it already (``n2n`` and ``care`` compare it).

    Returns
    -------
    float or None
        ``output ≈ gain * clean + constant``; ``None`` when it cannot be measured reliably.
    """
    if method == "deepcad":
        n = sample.shape[0] // 4 * 4
        if n < 4:
            return None
        even, odd = sample[0:n:2], sample[1:n:2]
        e1, e2, o1, o2 = (
            _mean_image(part) for part in (even[0::2], even[1::2], odd[0::2], odd[1::2])
        )
        m_even, m_odd = (e1 + e2) / 2, (o1 + o2) / 2  # halves of equal length
        num = _cov(_mean_image(predict(even)), m_odd) + _cov(_mean_image(predict(odd)), m_even)
        den = _cov(o1, o2) + _cov(e1, e2)
        noise = float(np.var(o1 - o2)) / 2
    elif method in ("n2n", "care") and target is not None:
        out = _mean_image(predict(sample) if output is None else output)
        m_sample, ref = _mean_image(sample), _mean_image(target)
        num = _cov(out, ref)
        den = _cov(m_sample, ref) if method == "n2n" else _cov(ref, ref)
        noise = float(np.var(m_sample - ref)) / 2
    else:
        return None
    # A scene whose spatial variance is within a few noise deviations of zero has no
    # contrast to calibrate against.
    return _gain(num, den, sigma_floor=4 * noise / math.sqrt(max(sample[0].size, 1)))


def calibrate(
    predict: Predict,
    sample: NDArray[np.float32],
    method: str,
    target: NDArray[np.float32] | None = None,
) -> Calibration | None:
    """Measure the affine correction that makes a denoiser keep intensities.

    Parameters
    ----------
    predict, sample, method, target
        As in :func:`measure_gain`; ``method`` may also be a blind-spot method (``n2v``,
        ``n2v3d``: the offset only), and without ``target`` the offset keeps the sample's mean.

    Returns
    -------
    Calibration or None
        ``None`` when the output is not finite (nothing to correct with).
    """
    reference = sample if target is None else target
    out = np.asarray(predict(sample), np.float64)
    gain = measure_gain(predict, sample, method, target, output=out)
    scale = 1.0 / gain if gain is not None else 1.0
    shift = float(np.mean(reference, dtype=np.float64) - scale * out.mean())
    if not (math.isfinite(shift) and math.isfinite(scale)):
        return None
    if gain is None:
        note = "offset only: no independent view to measure a gain" + (
            "" if method in ("deepcad", "n2n", "care") else f" for {method}"
        )
    else:
        note = f"gain {gain:.4f} measured on independent views"
    log.info("intensity calibration: scale %.4g, shift %.4g (%s)", scale, shift, note)
    return Calibration(scale=scale, shift=shift, gain_measured=gain, note=note)
