"""Image-quality scores of a restored image against a reference: PSNR, SSIM and SI-PSNR.

All functions take the prediction first and the reference (ground truth) second, work in float64
and never modify their inputs. The data range that PSNR and SSIM normalise by is explicit: pass
``data_range``, or leave it ``None`` to use the reference's own range ``max(ref) - min(ref)``
(never the dtype's range, which would make a 12-bit image in a uint16 container look 16 times
cleaner than it is).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class FrameScores:
    """A score computed frame by frame, with its mean and standard deviation.

    Attributes
    ----------
    values : ndarray of float64, (T,)
        One score per frame (per index of the frame axis).
    mean, std : float
        Mean and population standard deviation (``ddof=0``) of ``values``.
    """

    values: NDArray[np.float64]
    mean: float
    std: float

    @classmethod
    def of(cls, values: ArrayLike) -> FrameScores:
        """Summarise per-frame values."""
        v = np.asarray(values, dtype=np.float64).ravel()
        return cls(values=v, mean=float(np.mean(v)), std=float(np.std(v)))

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form for JSON: mean, std, number of frames and the values."""
        return {
            "mean": self.mean,
            "std": self.std,
            "n_frames": int(self.values.size),
            "values": [float(x) for x in self.values],
        }

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.std:.3f}"


def _pair(pred: ArrayLike, ref: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    p = np.asarray(pred, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    if p.shape != r.shape:
        raise ValueError(f"prediction and reference differ in shape: {p.shape} vs {r.shape}")
    if p.size == 0:
        raise ValueError("cannot score empty arrays")
    return p, r


def _range(ref: NDArray[np.float64], data_range: float | None) -> float:
    rng = float(np.max(ref) - np.min(ref)) if data_range is None else float(data_range)
    if not rng > 0:
        raise ValueError(
            "the data range must be positive (a constant reference needs an explicit data_range)"
        )
    return rng


def _psnr_from_mse(mse: float, data_range: float) -> float:
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def psnr(pred: ArrayLike, ref: ArrayLike, *, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB.

    ``PSNR = 10 log10(data_range**2 / mean((pred - ref)**2))``, the same definition as
    :func:`skimage.metrics.peak_signal_noise_ratio`.

    Parameters
    ----------
    pred : array-like
        Restored image or movie.
    ref : array-like
        Reference (ground truth) of the same shape.
    data_range : float, optional
        Peak-to-peak range of the signal. Default: ``max(ref) - min(ref)``.

    Returns
    -------
    float
        PSNR in dB; ``inf`` when the arrays are equal.

    Examples
    --------
    >>> round(psnr(np.array([0.0, 1.0]), np.array([0.0, 0.9]), data_range=1.0), 2)
    23.01
    """
    p, r = _pair(pred, ref)
    return _psnr_from_mse(float(np.mean((p - r) ** 2)), _range(r, data_range))


def ssim(
    pred: ArrayLike,
    ref: ArrayLike,
    *,
    data_range: float | None = None,
    spatial_ndim: int = 2,
    channel_axis: int | None = None,
) -> float:
    """Mean structural similarity (Wang et al. 2004), as skimage's ``structural_similarity``.

    SSIM windows span the last ``spatial_ndim`` axes (besides ``channel_axis``). With the default
    ``spatial_ndim=2`` a movie ``(T, Y, X)`` or a volume ``(Z, Y, X)`` is scored plane by plane
    and the mean over planes is returned; ``spatial_ndim=3`` gives volumetric SSIM.

    Parameters
    ----------
    pred : array-like
        Restored image, movie or volume.
    ref : array-like
        Reference of the same shape.
    data_range : float, optional
        Peak-to-peak range used in SSIM's stabilising constants, the same for every plane.
        Default: ``max(ref) - min(ref)`` over the whole reference.
    spatial_ndim : {2, 3}
        Number of trailing axes a window spans.
    channel_axis : int, optional
        Axis of colour channels (scored separately and averaged, as skimage does).

    Returns
    -------
    float
        Mean SSIM, at most 1.

    Examples
    --------
    >>> a = np.random.default_rng(0).random((2, 16, 16))
    >>> ssim(a, a)
    1.0
    """
    from skimage.metrics import structural_similarity

    p, r = _pair(pred, ref)
    rng = _range(r, data_range)
    if channel_axis is not None:
        channel_axis = channel_axis % p.ndim
        p, r = np.moveaxis(p, channel_axis, -1), np.moveaxis(r, channel_axis, -1)
    n_channel = 0 if channel_axis is None else 1
    if spatial_ndim not in (2, 3):
        raise ValueError("spatial_ndim must be 2 or 3")
    if p.ndim - n_channel < spatial_ndim:
        raise ValueError(f"an array of shape {p.shape} has fewer than {spatial_ndim} spatial axes")
    lead = p.shape[: p.ndim - n_channel - spatial_ndim]
    tail = p.shape[len(lead) :]
    flat_p, flat_r = p.reshape((-1, *tail)), r.reshape((-1, *tail))
    scores = [
        structural_similarity(
            a, b, data_range=rng, channel_axis=-1 if channel_axis is not None else None
        )
        for a, b in zip(flat_p, flat_r, strict=True)
    ]
    return float(np.mean(scores))


def si_psnr(pred: ArrayLike, gt: ArrayLike) -> float:
    """Scale-invariant PSNR in dB, exactly as CAREamics' ``scale_invariant_psnr`` defines it.

    With ``σ = std(gt)`` (population, ``ddof=0``):

    1. the data range is ``(max(gt) - min(gt)) / σ``;
    2. the ground truth is normalised, ``g = (gt - mean(gt)) / σ``;
    3. the prediction is centred, ``q = pred - mean(pred)``, and scaled by the least-squares factor
       ``a = sum(g q) / sum(q q)``;
    4. SI-PSNR is the PSNR of ``a q`` against ``g`` with that data range.

    Equivalently ``SI-PSNR = 10 log10(((max - min) / σ)**2 / (1 - r**2))`` with ``r`` the Pearson
    correlation of ``pred`` and ``gt``: any affine change ``c * pred + b`` (``c != 0``) of the
    prediction leaves it unchanged, so a denoiser is not punished for a different intensity scale.

    Parameters
    ----------
    pred : array-like
        Prediction.
    gt : array-like
        Ground truth of the same shape (not constant).

    Returns
    -------
    float
        SI-PSNR in dB (``inf`` for a perfect affine match; for a constant prediction it equals
        ``10 log10(range**2)`` of the normalised ground truth, the score of predicting its mean).

    Examples
    --------
    >>> round(si_psnr(np.array([0.0, 2.0, 1.0, 3.0]), np.array([0.0, 1.0, 2.0, 3.0])), 2)
    13.01
    """
    p, g = _pair(pred, gt)
    sd = float(np.std(g))
    if not sd > 0:
        raise ValueError("SI-PSNR needs a ground truth that is not constant")
    data_range = float(np.max(g) - np.min(g)) / sd
    gn = (g - g.mean()) / sd
    q = p - p.mean()
    qq = float(np.sum(q * q))
    fitted = q * (float(np.sum(gn * q)) / qq) if qq > 0 else np.zeros_like(q)
    return _psnr_from_mse(float(np.mean((gn - fitted) ** 2)), data_range)


def per_frame(
    score: Callable[[NDArray[np.float64], NDArray[np.float64]], float],
    pred: ArrayLike,
    ref: ArrayLike,
    *,
    axis: int = 0,
) -> FrameScores:
    """Apply a score to each frame (index of ``axis``) and summarise it as mean ± std.

    Parameters
    ----------
    score : callable
        ``score(pred_frame, ref_frame) -> float``, e.g. :func:`si_psnr`.
    pred, ref : array-like
        Arrays of the same shape.
    axis : int
        The frame axis.

    Returns
    -------
    FrameScores
    """
    p, r = _pair(pred, ref)
    p, r = np.moveaxis(p, axis, 0), np.moveaxis(r, axis, 0)
    return FrameScores.of([score(a, b) for a, b in zip(p, r, strict=True)])


def si_psnr_per_frame(pred: ArrayLike, gt: ArrayLike, *, axis: int = 0) -> FrameScores:
    """:func:`si_psnr` of each frame, with mean ± std over frames."""
    return per_frame(si_psnr, pred, gt, axis=axis)


def psnr_per_frame(
    pred: ArrayLike, ref: ArrayLike, *, data_range: float | None = None, axis: int = 0
) -> FrameScores:
    """:func:`psnr` of each frame; the data range defaults to that of the whole reference."""
    rng = _range(np.asarray(ref, dtype=np.float64), data_range)
    return per_frame(lambda a, b: psnr(a, b, data_range=rng), pred, ref, axis=axis)


def si_psnr_improvement(
    pred: ArrayLike, noisy: ArrayLike, gt: ArrayLike, *, axis: int | None = 0
) -> FrameScores:
    """SI-PSNR gain of a restoration over its input: ``SI-PSNR(pred) - SI-PSNR(noisy)``.

    Parameters
    ----------
    pred : array-like
        Restored movie.
    noisy : array-like
        The input the restoration started from.
    gt : array-like
        Ground truth; all three arrays share one shape.
    axis : int or None
        Frame axis: the improvement is computed frame by frame and summarised as mean ± std.
        ``None`` scores the whole array as one frame.

    Returns
    -------
    FrameScores
        Per-frame improvements in dB (positive: the restoration is closer to the ground truth).
    """
    p, n, g = (np.asarray(a, dtype=np.float64) for a in (pred, noisy, gt))
    if not p.shape == n.shape == g.shape:
        raise ValueError(f"shapes differ: pred {p.shape}, noisy {n.shape}, gt {g.shape}")
    if axis is None:
        return FrameScores.of([si_psnr(p, g) - si_psnr(n, g)])
    return FrameScores.of(
        si_psnr_per_frame(p, g, axis=axis).values - si_psnr_per_frame(n, g, axis=axis).values
    )
