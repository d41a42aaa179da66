"""Poisson–Gaussian noise model from the mean–variance relation of neighbouring-pixel differences.

A camera or PMT that counts photo-electrons ``n ~ Poisson(λ)``, adds Gaussian read noise
``Normal(0, σ_r)`` and converts with gain ``g`` (ADU per electron) and offset ``o`` gives pixels
with mean ``μ = o + g λ`` and variance ``var = g (μ - o) + g² σ_r²``: a straight line in ``μ``
whose slope is the gain. The line is fitted to pairs (local mean, local noise variance) measured
from residuals of neighbouring pixels within each frame (second differences, which cancel a
smoothly varying signal); the frame-to-frame signal plays no part, so the model stays valid for
movies whose frames are decorrelated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Fraction of the smallest squared differences kept per bin: drops edges of bright structures.
_KEEP = 0.9
#: Minimum samples in an intensity bin to estimate its variance.
_MIN_BIN = 200
#: A read-noise variance below ``-_READ_TOLERANCE`` times the darkest bins' variance is no
#: rounding error of the fit: the darkest pixels vary less than their shot noise alone would.
_READ_TOLERANCE = 0.1


def _trimmed_factor(keep: float) -> float:
    """``E[z² | |z| <= q]`` for a standard normal ``z`` and ``P(|z| <= q) = keep``."""
    from scipy.stats import norm

    q = float(norm.ppf(0.5 + keep / 2))
    return 1.0 - 2.0 * q * float(norm.pdf(q)) / keep


def robust_variance(diffs: NDArray[np.float64]) -> float:
    """Noise variance from zero-mean residuals, robust to signal edges.

    The largest ``10 %`` of ``|d|`` are dropped and the mean square of the rest is divided by
    its expectation under a Gaussian (``0.623``).

    Parameters
    ----------
    diffs : ndarray
        Residuals normalised to the variance of one pixel, e.g. ``(x_i - x_j) / sqrt 2`` or
        ``(2 x_i - x_{i-1} - x_{i+1}) / sqrt 6``.

    Returns
    -------
    float
        Estimated variance of one pixel.
    """
    d2 = np.sort(np.asarray(diffs, dtype=np.float64) ** 2)
    kept = d2[: max(1, int(round(_KEEP * d2.size)))]
    return float(kept.mean() / _trimmed_factor(_KEEP))


@dataclass(frozen=True)
class NoiseModel:
    """Fitted ``var(μ) = intercept + gain * μ`` and the camera parameters it implies.

    Attributes
    ----------
    gain : float or None
        ADU per photo-electron (slope); ``None`` when no positive slope could be fitted.
    intercept : float
        Variance at ``μ = 0`` (ADU²).
    offset : float
        Offset ``o`` used to express the read noise (ADU).
    read_noise_adu : float
        Noise standard deviation at the offset (ADU): the median over the three darkest bins of
        ``variance - gain * max(mean - o, 0)``, square-rooted.
    read_noise_e : float or None
        The same in photo-electrons, ``read_noise_adu / gain``.
    means, variances : ndarray of float64
        The binned points the line was fitted to.
    reliable : bool
        Whether the fit is physically possible: enough bins, a positive slope, and a read-noise
        variance that is not clearly negative.
    problem : str or None
        Why the model is unreliable (``None`` when it is reliable).
    """

    gain: float | None
    intercept: float
    offset: float
    read_noise_adu: float
    read_noise_e: float | None
    means: NDArray[np.float64] = field(repr=False)
    variances: NDArray[np.float64] = field(repr=False)
    reliable: bool
    problem: str | None = None

    def variance(self, mean: Any) -> NDArray[np.float64]:
        """Noise variance (ADU², at least 0) expected at a mean intensity."""
        slope = self.gain if self.gain is not None else 0.0
        return np.maximum(self.intercept + slope * np.asarray(mean, dtype=np.float64), 0.0)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form for JSON, with the fitted points."""
        return {
            "gain_adu_per_electron": self.gain,
            "read_noise_adu": self.read_noise_adu,
            "read_noise_electrons": self.read_noise_e,
            "offset": self.offset,
            "intercept": self.intercept,
            "reliable": self.reliable,
            "problem": self.problem,
            "points": {"mean": self.means.tolist(), "variance": self.variances.tolist()},
        }


def fit_noise_model(
    means: NDArray[np.float64],
    diffs: NDArray[np.float64],
    *,
    offset: float,
    n_bins: int = 24,
) -> NoiseModel:
    """Fit the Poisson–Gaussian line to (local mean, residual) samples.

    Samples are binned by equal-count quantiles of the local mean; each bin with at least 200
    samples gives one point (mean of its local means, :func:`robust_variance` of its
    differences), and the Theil–Sen line through the points (robust to a few bins spoiled by
    structure edges or saturation) gives gain and intercept. The read noise is the variance of
    the three darkest bins brought down to the offset along the line.

    Parameters
    ----------
    means : ndarray
        Local mean of each sample (the mean of the two pixels differenced).
    diffs : ndarray
        The residuals, normalised to the variance of one pixel.
    offset : float
        Offset at which the read noise is reported (ADU).
    n_bins : int
        Number of intensity bins.

    Returns
    -------
    NoiseModel
    """
    from scipy.stats import theilslopes

    m = np.asarray(means, dtype=np.float64).ravel()
    d = np.asarray(diffs, dtype=np.float64).ravel()
    edges = np.unique(np.quantile(m, np.linspace(0, 1, n_bins + 1))) if m.size else np.zeros(1)
    which = np.clip(np.searchsorted(edges, m, side="right") - 1, 0, max(len(edges) - 2, 0))
    pts_m, pts_v = [], []
    for b in range(max(len(edges) - 1, 1)):
        sel = which == b
        if np.count_nonzero(sel) >= _MIN_BIN:
            pts_m.append(float(m[sel].mean()))
            pts_v.append(robust_variance(d[sel]))
    pm, pv = np.asarray(pts_m), np.asarray(pts_v)
    gain: float | None = None
    problem: str | None = None
    if pm.size >= 3 and np.ptp(pm) > 0:
        slope, intercept = (float(v) for v in theilslopes(pv, pm)[:2])
        if slope > 0:
            gain = slope
        else:
            problem = "the noise variance does not grow with the intensity (no shot noise)"
    else:
        problem = f"too few intensity bins with {_MIN_BIN} samples ({pm.size} of 3)"
    if gain is None:
        fallback = float(robust_variance(d)) if d.size else 0.0
        intercept = float(np.median(pv)) if pv.size else fallback
        read_var = max(intercept, 0.0)
    else:
        # anchored at the darkest bins rather than extrapolated along the whole line, so a small
        # slope error does not swamp a read noise that is small beside the shot noise
        darkest = np.argsort(pm)[:3]
        excess = np.maximum(pm[darkest] - offset, 0.0)  # bins below the offset are pure read noise
        raw = float(np.median(pv[darkest] - gain * excess))
        seen = float(np.median(pv[darkest]))
        if raw < -_READ_TOLERANCE * seen:
            shot = float(np.median(gain * excess))
            problem = (
                f"impossible fit: the darkest pixels vary less ({seen:.3g} ADU²) than their shot "
                f"noise alone would ({shot:.3g} ADU²), so the read noise cannot be measured; the "
                "data were probably rescaled, filtered or offset-subtracted"
            )
        read_var = max(raw, 0.0)
    read_adu = math.sqrt(read_var)
    return NoiseModel(
        gain=gain,
        intercept=intercept,
        offset=float(offset),
        read_noise_adu=read_adu,
        read_noise_e=read_adu / gain if gain else None,
        means=pm,
        variances=pv,
        reliable=problem is None,
        problem=problem,
    )
