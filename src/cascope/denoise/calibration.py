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

The affine correction, ``a * output + b``, assumes the output is proportional to the clean
intensity. After a default-length training at half a photon per pixel it is not: the network
lifted bright structures more than dim ones, and an affine correction left the neurons +1.4 % to
+3.0 % off in four of six runs (benchmarks/results/denoise_bias_1000steps.md). For the methods
with two independent views (deepcad's interleaved frames, Noise2Noise's two recordings) the
correction is therefore a **response curve** (:func:`measure_response`): the pixels are binned by
the *denoised* other view, whose noise is independent of this view's and which is precise enough
to make narrow bins; in each bin the mean of the noisy view (the clean level, since its noise
averages out) is paired with the mean of the denoised view (the network's response to that level).
A monotone fit through those pairs, inverted, is the correction; beyond the measured levels it
continues with the pairs' overall slope. An affine correction is folded into the denoiser's
output normalisation and a curve travels with the model (``output_curve``), so a saved model
applies either wherever it predicts.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cascope.models.response import Curve

log = logging.getLogger(__name__)

#: Gains outside this range are not trusted (a field without structure, or too few frames):
#: the correction then keeps the offset only.
GAIN_RANGE = (0.5, 2.0)
#: Bins of the response curve (quantiles of the denoised other view), and the fewest pixels a
#: bin needs (smaller samples get fewer bins; under 4 bins, no curve).
RESPONSE_BINS = 32
MIN_BIN_PIXELS = 32

Predict = Callable[[NDArray[np.float32]], NDArray[np.floating]]


@dataclass(frozen=True)
class Calibration:
    """``corrected = scale * output + shift`` (input units), or ``curve(output)`` when measured.

    With a curve, ``scale`` and ``shift`` are its affine summary (the overall slope of the
    response, and the shift that keeps the mean), recorded for provenance.
    """

    scale: float
    shift: float
    gain_measured: float | None
    note: str
    curve: Curve | None = None

    def correct(self, output: NDArray[Any]) -> NDArray[np.float64]:
        """Apply the correction to an output (input units)."""
        if self.curve is not None:
            return self.curve(output)
        return self.scale * np.asarray(output, np.float64) + self.shift


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


def _binned(
    instrument: NDArray[np.float64],
    level: NDArray[np.float64],
    response: NDArray[np.float64],
    bins: int,
) -> NDArray[np.float64]:
    """``(mean level, mean response, pixels)`` in quantile bins of ``instrument``."""
    edges = np.quantile(instrument, np.linspace(0.0, 1.0, bins + 1))
    idx = np.clip(np.searchsorted(edges, instrument, side="right") - 1, 0, bins - 1).ravel()
    n = np.bincount(idx, minlength=bins).astype(np.float64)
    lv = np.bincount(idx, weights=level.ravel(), minlength=bins)
    rs = np.bincount(idx, weights=response.ravel(), minlength=bins)
    keep = n > 0
    return np.stack([lv[keep] / n[keep], rs[keep] / n[keep], n[keep]], axis=1)


def independent_views(
    sample: NDArray[np.float32], method: str, target: NDArray[np.float32] | None = None
) -> tuple[NDArray[np.float32], NDArray[np.float32]] | None:
    """Two views of the scene whose noise is independent, as the method was trained on.

    deepcad: the even and the odd frames; Noise2Noise: the two recordings; otherwise ``None``.
    """
    if method == "deepcad":
        n = sample.shape[0] // 2 * 2
        return (sample[0:n:2], sample[1:n:2]) if n >= 4 else None
    if method == "n2n" and target is not None:
        return sample, target
    return None


def measure_response(
    predict: Predict,
    first: NDArray[np.float32],
    second: NDArray[np.float32],
    *,
    bins: int = RESPONSE_BINS,
) -> Curve | None:
    """Measure the curve that maps a denoiser's output back to the clean intensity.

    Each view is denoised. The pixels are binned by the temporal mean of one *denoised* view;
    in each bin, the mean of the other *noisy* view estimates the clean level (its noise is
    independent of the binning, so it averages out) and the mean of the other *denoised* view
    the network's response to that level. Both directions give pairs; a monotone (isotonic)
    fit of level on response through them is the curve, continued beyond its ends with the
    pairs' overall slope (a weighted least-squares line).

    Parameters
    ----------
    predict : callable
        Denoises a ``(T|Z, Y, X)`` stack, as the recording will be denoised.
    first, second : ndarray
        Two views of the same scene with independent noise (:func:`independent_views`).
    bins : int
        Quantile bins per direction (fewer when a bin would hold under
        :data:`MIN_BIN_PIXELS` pixels).

    Returns
    -------
    Curve or None
        ``None`` when the sample is too small, the field has no contrast, or the response is
        not increasing within :data:`GAIN_RANGE`.
    """
    from scipy.optimize import isotonic_regression

    bins = min(bins, first[0].size // MIN_BIN_PIXELS)
    if bins < 4:
        return None
    m1, m2 = _mean_image(first), _mean_image(second)
    d1, d2 = _mean_image(predict(first)), _mean_image(predict(second))
    if not (np.isfinite(d1).all() and np.isfinite(d2).all()):
        return None
    pairs = np.concatenate([_binned(d2, m1, d1, bins), _binned(d1, m2, d2, bins)])
    level, response, weight = pairs[:, 0], pairs[:, 1], pairs[:, 2]
    if float(np.ptp(response)) <= 0 or float(np.ptp(level)) <= 0:
        return None
    slope = float(np.polyfit(response, level, 1, w=np.sqrt(weight))[0])
    if not (math.isfinite(slope) and slope > 0 and GAIN_RANGE[0] <= 1 / slope <= GAIN_RANGE[1]):
        return None
    order = np.argsort(response, kind="stable")
    response, level, weight = response[order], level[order], weight[order]
    knots, first_of = np.unique(response, return_index=True)  # equal responses: one knot
    sums = np.add.reduceat(level * weight, first_of)
    weight = np.add.reduceat(weight, first_of)
    values = isotonic_regression(sums / weight, weights=weight).x
    if len(knots) < 4:
        return None
    return Curve(tuple(map(float, knots)), tuple(map(float, values)), (slope, slope))


def calibrate(
    predict: Predict,
    sample: NDArray[np.float32],
    method: str,
    target: NDArray[np.float32] | None = None,
) -> Calibration | None:
    """Measure the correction that makes a denoiser keep intensities.

    Parameters
    ----------
    predict, sample, method, target
        As in :func:`measure_gain`; ``method`` may also be a blind-spot method (``n2v``,
        ``n2v3d``: the offset only), and without ``target`` the offset keeps the sample's mean.

    Returns
    -------
    Calibration or None
        A response curve for deepcad and Noise2Noise (:func:`measure_response`), else (or when
        none can be measured) the affine gain and offset; ``None`` when the output is not
        finite (nothing to correct with).
    """
    reference = sample if target is None else target
    out = np.asarray(predict(sample), np.float64)
    views = independent_views(sample, method, target)

    def known(stack: NDArray[np.float32]) -> NDArray[np.floating]:
        return out if stack is sample else predict(stack)  # n2n's first view is the sample

    curve = measure_response(known, *views) if views is not None else None
    if curve is not None:
        shift = float(np.mean(reference, dtype=np.float64) - curve(out).mean())
        if math.isfinite(shift):
            curve = curve.then_affine(1.0, shift)
            slope = curve.slopes[1]
            note = (
                f"response curve ({len(curve.knots)} knots, overall gain {1 / slope:.4f}) "
                "measured on independent views"
            )
            log.info("intensity calibration: %s", note)
            level = float(out.mean())
            return Calibration(
                scale=slope,
                shift=float(curve(np.array(level))) - slope * level,
                gain_measured=1 / slope,
                note=note,
                curve=curve,
            )
    gain = measure_gain(predict, sample, method, target, output=out)
    scale = 1.0 / gain if gain is not None else 1.0
    shift = float(np.mean(reference, dtype=np.float64) - scale * out.mean())
    if not (math.isfinite(shift) and math.isfinite(scale)):
        return None
    if gain is None:
        if method in ("deepcad", "n2n", "care"):
            note = (
                "offset only: no gain could be measured on independent views (a field "
                f"without contrast, or a gain outside {GAIN_RANGE[0]:g}-{GAIN_RANGE[1]:g})"
            )
        else:
            note = f"offset only: no independent view to measure a gain for {method}"
    else:
        note = f"gain {gain:.4f} measured on independent views"
    log.info("intensity calibration: scale %.4g, shift %.4g (%s)", scale, shift, note)
    return Calibration(scale=scale, shift=shift, gain_measured=gain, note=note)
