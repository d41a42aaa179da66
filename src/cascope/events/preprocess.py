"""Event-detection input: foreground, per-frame ALS baseline, ``(x - b(t)) / F``; ROI ΔF/F traces.

A movie is reduced in one streamed pass to its temporal mean (for the foreground, by the triangle
threshold) and the mean foreground intensity of every frame; the asymmetric-least-squares (ALS)
baseline of that trace follows slow drifts (bleaching) but not the transients. The network then
sees ``(x - b(t)) / F`` with ``F`` the mean foreground intensity, so inputs of different
brightness and bleaching share one scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cascope.errors import InputError
from cascope.io import check_finite
from cascope.preprocess.dff import _BLOCK, _frames, als_baseline
from cascope.preprocess.normalization import Normalization, NormalizedMovie

__all__ = ["Normalization", "NormalizedMovie", "preprocess", "triangle_foreground"]


def triangle_foreground(mean_image: ArrayLike) -> NDArray[np.bool_]:
    """Foreground of a temporal mean image by the triangle threshold (dim, skewed histograms)."""
    from skimage.filters import threshold_triangle

    img = np.asarray(mean_image, dtype=np.float64)
    if not np.isfinite(img).all():
        raise InputError("the movie contains NaN or infinite values")
    if img.max() == img.min():
        return np.ones(img.shape, dtype=bool)
    return np.asarray(img > threshold_triangle(img))


def preprocess(
    data: Any, *, lam: float = 1e4, p: float = 0.01, block: int = _BLOCK
) -> Normalization:
    """Measure foreground, ``F`` and ``b(t)`` of a (T, Y, X) movie in two streamed passes.

    Parameters
    ----------
    data : array-like or Movie, (T, Y, X)
        The recording; read ``block`` frames at a time.
    lam, p : float
        ALS smoothness and asymmetry of the baseline.
    block : int
        Frames read at once.

    Returns
    -------
    Normalization
        ``offset`` 0, ``baseline`` ``b(t)``, ``scale`` ``F`` (method ``"baseline"``), with the
        ``foreground``, its mean ``trace`` and the ``mean_image`` it was measured on. Apply it
        with ``norm.apply(frames, start)`` or ``norm.view(data)``.
    """
    shape = tuple(int(s) for s in data.shape)
    if len(shape) != 3:
        raise InputError(f"event detection needs a (T, Y, X) movie, got shape {shape}")
    if shape[0] < 1 or shape[1] < 2 or shape[2] < 2:
        raise InputError(f"the movie is too small for event detection: {shape}")
    total = np.zeros(shape[1:], np.float64)
    for start, frames in _frames(data, block):
        check_finite(frames, path=getattr(data, "source", None), axis="T", start=start)
        total += frames.sum(axis=0)
    mean_image = total / shape[0]
    fg = triangle_foreground(mean_image)
    trace = np.empty(shape[0], np.float64)
    for s, frames in _frames(data, block):
        trace[s : s + len(frames)] = frames[:, fg].mean(axis=1)
    baseline = als_baseline(trace, lam=lam, p=p)
    f = float(mean_image[fg].mean())
    if not f > 0:
        raise InputError(
            f"the mean foreground intensity is {f:.4g}: event detection works on dF/F, which "
            "needs positive intensities (add back an offset or background that was subtracted)"
        )
    return Normalization(
        offset=0.0,
        scale=f,
        method="baseline",
        params={"lam": lam, "p": p},
        baseline=baseline,
        foreground=fg,
        trace=trace,
        mean_image=mean_image,
    )
