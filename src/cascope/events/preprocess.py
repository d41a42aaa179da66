"""Event-detection input: foreground, per-frame ALS baseline, ``(x - b(t)) / F``; ROI ΔF/F traces.

A movie is reduced in one streamed pass to its temporal mean (for the foreground, by the triangle
threshold) and the mean foreground intensity of every frame; the asymmetric-least-squares (ALS)
baseline of that trace follows slow drifts (bleaching) but not the transients. The network then
sees ``(x - b(t)) / F`` with ``F`` the mean foreground intensity, so inputs of different
brightness and bleaching share one scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cascope.errors import InputError
from cascope.io import check_finite
from cascope.preprocess.dff import _BLOCK, _frames, als_baseline


def triangle_foreground(mean_image: ArrayLike) -> NDArray[np.bool_]:
    """Foreground of a temporal mean image by the triangle threshold (dim, skewed histograms)."""
    from skimage.filters import threshold_triangle

    img = np.asarray(mean_image, dtype=np.float64)
    if not np.isfinite(img).all():
        raise InputError("the movie contains NaN or infinite values")
    if img.max() == img.min():
        return np.ones(img.shape, dtype=bool)
    return np.asarray(img > threshold_triangle(img))


@dataclass(frozen=True)
class Normalization:
    """What :func:`preprocess` measured: apply it with :meth:`apply` or lazily via :meth:`view`.

    Attributes
    ----------
    foreground : ndarray of bool, (Y, X)
        Triangle-threshold foreground of the temporal mean.
    f : float
        Mean foreground intensity over the movie.
    baseline : ndarray of float64, (T,)
        ALS baseline ``b(t)`` of the per-frame mean foreground intensity.
    trace : ndarray of float64, (T,)
        The per-frame mean foreground intensity itself.
    mean_image : ndarray of float64, (Y, X)
        Temporal mean.
    """

    foreground: NDArray[np.bool_]
    f: float
    baseline: NDArray[np.float64]
    trace: NDArray[np.float64]
    mean_image: NDArray[np.float64]

    def apply(self, block: ArrayLike, start: int = 0) -> NDArray[np.float32]:
        """Normalise frames ``start, start + 1, ...`` of the movie: ``(x - b(t)) / F``."""
        arr = np.asarray(block, dtype=np.float32)
        b = self.baseline[start : start + arr.shape[0]].astype(np.float32)
        return np.asarray((arr - b[:, None, None]) / np.float32(self.f), dtype=np.float32)

    def view(self, data: Any) -> NormalizedMovie:
        """Return a lazy normalised view of ``data`` (sliced along time on access)."""
        return NormalizedMovie(data, self)


class NormalizedMovie:
    """Lazy ``(x - b(t)) / F`` of a (T, Y, X) array-like; a time slice reads only its frames."""

    def __init__(self, data: Any, norm: Normalization) -> None:
        self.data = data
        self.norm = norm
        self.shape = tuple(int(s) for s in data.shape)
        self.ndim = 3
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> NDArray[np.float32]:
        key = key if isinstance(key, tuple) else (key,)
        t = key[0]
        if isinstance(t, slice):
            start, stop, step = t.indices(self.shape[0])
            if step != 1:
                raise IndexError("only contiguous time slices are supported")
            frames = self.norm.apply(self.data[start:stop], start)
        else:
            idx = int(t) % self.shape[0]
            frames = self.norm.apply(self.data[idx : idx + 1], idx)[0]
        return frames[(slice(None), *key[1:])] if isinstance(t, slice) else frames[key[1:]]

    def __array__(self, dtype: Any = None, copy: Any = None) -> NDArray[Any]:
        out = self[:]
        return out if dtype is None else out.astype(dtype)


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
        Apply it with ``norm.apply(frames, start)`` or ``norm.view(data)``.
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
    return Normalization(fg, f, baseline, trace, mean_image)


