"""The classical detector: events where the smoothed robust z-score of the movie exceeds ``k``.

The baseline a network is compared with (and the detector to use without a trained network):
the normalised movie is smoothed, each pixel's temporal median is subtracted and the result
divided by its robust standard deviation; :func:`~cascope.events.labels.label_events` then
finds the events above ``k``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cascope.events.labels import MIN_SIZE, label_events

#: Gaussian smoothing (frames, pixels, pixels) of the intensity-threshold detector.
BASELINE_SIGMA = (0.7, 1.0, 1.0)


def temporal_noise_factor(n_frames: int, sigma: float) -> NDArray[np.float32]:
    """Noise sd of each frame after Gaussian smoothing in time, relative to the middle frames.

    ``scipy.ndimage.gaussian_filter`` mirrors the movie at its ends (mode ``"reflect"``), so a
    first or last frame is averaged with copies of itself and its white noise is smoothed
    less: its sd is larger than in the middle of the movie.

    Parameters
    ----------
    n_frames : int
        Length of the movie.
    sigma : float
        Temporal sigma of the smoothing (frames).

    Returns
    -------
    ndarray of float32, (n_frames,)
        1 away from the ends.

    Examples
    --------
    >>> f = temporal_noise_factor(50, 0.7)
    >>> bool(f[0] > 1.2 and f[-1] > 1.2 and abs(f[25] - 1) < 1e-6)
    True
    """
    from scipy import ndimage

    if sigma <= 0 or n_frames < 2:
        return np.ones(n_frames, np.float32)
    radius = int(4.0 * sigma + 0.5)
    m = min(n_frames, 2 * radius + 2)  # long enough for both ends to be complete
    weights = ndimage.gaussian_filter1d(np.eye(m), sigma, axis=0, mode="reflect")
    sd = np.sqrt((weights**2).sum(axis=1))
    inner = ndimage.gaussian_filter1d(np.eye(2 * radius + 1), sigma, axis=0, mode="constant")
    ref = float(np.sqrt((inner[:, radius] ** 2).sum()))
    if m == n_frames:
        return np.asarray(sd / ref, dtype=np.float32)
    out = np.ones(n_frames, np.float64)
    out[: radius + 1] = sd[: radius + 1] / ref
    out[n_frames - radius - 1 :] = sd[m - radius - 1 :] / ref
    return np.asarray(out, dtype=np.float32)


def baseline_scores(
    data: Any,
    *,
    norm: Any = None,
    sigma: Sequence[float] = BASELINE_SIGMA,
) -> NDArray[np.float32]:
    """Robust z-score movie of the classical intensity-threshold detector (in memory).

    The normalised movie ``(x - b(t)) / F`` is smoothed by a Gaussian, each pixel's temporal
    median is subtracted and the result divided by its robust standard deviation
    (1.4826 × MAD); pixels outside the (dilated) foreground get 0. Near the first and last
    frames the temporal smoothing averages fewer independent frames (the movie is mirrored
    there), so the smoothed noise is larger: each frame's score is divided by that frame's
    noise factor (:func:`temporal_noise_factor`), so the ends do not collect false events.

    Parameters
    ----------
    data : array-like, (T, Y, X)
        The recording.
    norm : Normalization, optional
        From :func:`~cascope.events.preprocess.preprocess` (computed when omitted).
    sigma : sequence of float
        Gaussian smoothing in (frames, pixels, pixels).

    Returns
    -------
    ndarray of float32, (T, Y, X)
    """
    from scipy import ndimage

    from cascope.events.preprocess import preprocess

    nm = preprocess(data) if norm is None else norm
    z = robust_z(nm.apply(np.asarray(data), 0), sigma=sigma)
    fg = ndimage.binary_dilation(nm.foreground, iterations=2)
    return np.asarray(np.where(fg[None], z, 0.0), dtype=np.float32)


def robust_z(x: NDArray[np.float32], *, sigma: Sequence[float]) -> NDArray[Any]:
    """Smoothed robust z-score of normalised frames: the per-pixel part of :func:`baseline_scores`.

    Every frame of a (Y, X) region is needed (each pixel's temporal median and MAD); the
    spatial smoothing makes a pixel depend on its neighbours within ``4 * sigma``, so a region
    read with that margin gives, inside the margin, the values of the whole movie.

    Parameters
    ----------
    x : ndarray of float32, (T, Y, X)
        Normalised frames (all of them) of a region.
    sigma : sequence of float
        Gaussian smoothing in (frames, pixels, pixels).

    Returns
    -------
    ndarray, (T, Y, X)
    """
    from scipy import ndimage

    xs = ndimage.gaussian_filter(x, sigma)
    med = np.median(xs, axis=0)
    mad = np.median(np.abs(xs - med), axis=0) * 1.4826
    z = (xs - med) / np.maximum(mad, 1e-6)
    z /= temporal_noise_factor(x.shape[0], float(sigma[0]))[:, None, None]
    return np.asarray(z)


def detect_threshold_baseline(
    data: Any, *, k: float = 4.0, norm: Any = None, min_size: Sequence[int] = MIN_SIZE
) -> tuple[NDArray[np.uint32], pd.DataFrame]:
    """Classical detector: events where the smoothed robust z-score exceeds ``k``.

    Returns
    -------
    labels, table
        As in :func:`label_events` (``score_*`` columns hold z-scores).
    """
    return label_events(baseline_scores(data, norm=norm), threshold=k, min_size=min_size)
