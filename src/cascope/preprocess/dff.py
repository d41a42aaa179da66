"""Resting fluorescence and ΔF/F: baselines (ALS, running percentile), trace noise, ROI traces.

The one ΔF/F of cascope: events, ROI traces, metrics and reports all call
:func:`delta_f_over_f`, which returns NaN (never a huge number) where the resting level is too
close to the dark level to divide by.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

_BLOCK = 64


def als_baseline(
    y: ArrayLike, *, lam: float = 1e4, p: float = 0.01, n_iter: int = 10
) -> NDArray[np.float64]:
    """Asymmetric least-squares baseline of a 1-D signal (Eilers & Boelens 2005).

    Minimises ``sum w_i (y_i - z_i)^2 + lam * sum (second difference of z)^2`` with weights
    ``p`` above the baseline and ``1 - p`` below it, so upward transients barely lift it.

    Parameters
    ----------
    y : array-like, (N,)
        The signal.
    lam : float
        Smoothness (larger: stiffer baseline).
    p : float
        Asymmetry in (0, 1); small values keep the baseline under the transients.
    n_iter : int
        Reweighting iterations.

    Returns
    -------
    ndarray of float64, (N,)

    Examples
    --------
    >>> t = np.arange(200.0)
    >>> y = 10 - 0.01 * t
    >>> y[100:105] += 5
    >>> b = als_baseline(y)
    >>> bool(abs(b[102] - y[102] + 5) < 0.5)
    True
    """
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    sig = np.asarray(y, dtype=np.float64).ravel()
    n = sig.size
    if not 0 < p < 1:
        raise ValueError("p must lie in (0, 1)")
    if lam <= 0:
        raise ValueError("lam must be positive")
    if n < 3:
        return sig.copy()
    d = sparse.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(n - 2, n))
    penalty = lam * (d.T @ d)
    w = np.ones(n)
    z = sig
    for _ in range(n_iter):
        wm = sparse.diags(w)
        z = spsolve((wm + penalty).tocsc(), w * sig)
        w = np.where(sig > z, p, 1.0 - p)
    return np.asarray(z, dtype=np.float64)


def percentile_baseline(
    y: ArrayLike, *, window: int = 101, percentile: float = 8.0
) -> NDArray[np.float64]:
    """Running-percentile baseline of 1-D signals (last axis), smoothed by a running mean.

    Parameters
    ----------
    y : array-like, (..., N)
        Signals along the last axis.
    window : int
        Window length in samples (clipped to the signal length).
    percentile : float
        Percentile in [0, 100] taken in each window.

    Returns
    -------
    ndarray of float64, same shape as ``y``
    """
    from scipy import ndimage

    arr = np.asarray(y, dtype=np.float64)
    win = max(1, min(int(window), arr.shape[-1]))
    size = (1,) * (arr.ndim - 1) + (win,)
    low = ndimage.percentile_filter(arr, percentile, size=size, mode="nearest")
    return np.asarray(ndimage.uniform_filter1d(low, win, axis=-1, mode="nearest"))


def _frames(data: Any, block: int) -> Iterator[tuple[int, NDArray[np.float64]]]:
    n = int(data.shape[0])
    for s in range(0, n, block):
        yield s, np.asarray(data[s : s + block], dtype=np.float64)


def roi_traces(data: Any, rois: ArrayLike, *, block: int = _BLOCK) -> NDArray[np.float64]:
    """Mean intensity per ROI and frame, streamed over time.

    Parameters
    ----------
    data : array-like, (T, Y, X)
        The recording.
    rois : array-like of int, (Y, X)
        ROI labels (0 = none).

    Returns
    -------
    ndarray of float64, (n_rois, T)
        Row ``k`` belongs to the ``k``-th ROI label in increasing order.
    """
    from scipy import ndimage

    lab = np.asarray(rois)
    ids = np.unique(lab[lab > 0])
    out = np.empty((len(ids), int(data.shape[0])), np.float64)
    for s, frames in _frames(data, block):
        for j, frame in enumerate(frames):
            out[:, s + j] = ndimage.mean(frame, lab, ids)
    return out


def noise_sigma(traces: ArrayLike, *, axis: int = -1) -> NDArray[np.float64]:
    """Robust per-sample noise of signals along ``axis``, from their first differences.

    ``1.4826 * median(|diff|) / sqrt(2)``: transients and slow drifts barely change it. Where
    that is 0 (quantised signals that rarely change), the RMS of the differences over
    ``sqrt(2)`` is used instead.

    Parameters
    ----------
    traces : array-like
        Signals; at least two samples along ``axis``.
    axis : int
        The time axis.

    Returns
    -------
    ndarray of float64
        ``traces`` without ``axis``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> bool(abs(noise_sigma(rng.normal(5, 2, 20000)) - 2) < 0.1)
    True
    """
    d = np.diff(np.asarray(traces, dtype=np.float64), axis=axis)
    if d.shape[axis] == 0:
        return np.zeros(np.delete(np.asarray(d.shape), axis % d.ndim), np.float64)
    mad = 1.4826 * np.median(np.abs(d), axis=axis) / np.sqrt(2.0)
    rms = np.sqrt(np.mean(d * d, axis=axis) / 2.0)
    return np.asarray(np.where(mad > 0, mad, rms), dtype=np.float64)


def delta_f_over_f(
    traces: ArrayLike,
    *,
    method: Literal["als", "percentile"] = "als",
    lam: float = 1e4,
    p: float = 0.01,
    window: int | None = 101,
    percentile: float = 8.0,
    offset: float = 0.0,
    min_snr: float = 3.0,
) -> NDArray[np.float64]:
    """ΔF/F of traces ``(n, T)`` against an ALS or a percentile baseline; NaN where unreliable.

    The baseline ``F0`` of a trace is reliable where it stands clearly above the dark level:
    ``F0 > min_snr * sigma`` with ``sigma`` the trace's noise (:func:`noise_sigma`), so its
    per-frame ΔF/F noise is at most ``1 / min_snr``. Elsewhere ΔF/F is NaN rather than a huge
    number from a division by almost zero; :func:`baseline_reliable` says which traces.

    Parameters
    ----------
    traces : array-like, (n, T) or (T,)
        Fluorescence traces.
    method : {"als", "percentile"}
        Baseline estimator.
    lam, p : float
        ALS options.
    window : int or None
        Running-percentile window in samples; None: one percentile of the whole trace.
    percentile : float
        Percentile taken as the resting level.
    offset : float
        Camera dark level subtracted from the traces first.
    min_snr : float
        Smallest ``F0 / sigma`` of a reliable baseline (0: any positive baseline).

    Returns
    -------
    ndarray of float64, same shape as ``traces``
        ``(F - F0) / F0``, NaN where ``F0`` is not reliable.

    Examples
    --------
    >>> f = np.array([[110.0, 110.0, 130.0, 110.0], [1.0, 0.0, 9.0, 0.0]])
    >>> delta_f_over_f(f, method="percentile", window=None, percentile=0, offset=10.0).round(2)
    array([[0. , 0. , 0.2, 0. ],
           [nan, nan, nan, nan]])
    """
    arr = np.asarray(traces, dtype=np.float64) - offset
    flat, f0, ok = _baseline_where_reliable(arr, method, lam, p, window, percentile, min_snr)
    with np.errstate(divide="ignore", invalid="ignore"):
        dff = np.where(ok, (flat - f0) / np.where(ok, f0, 1.0), np.nan)
    return np.asarray(dff.reshape(arr.shape))


def baseline_reliable(
    traces: ArrayLike,
    *,
    method: Literal["als", "percentile"] = "als",
    lam: float = 1e4,
    p: float = 0.01,
    window: int | None = 101,
    percentile: float = 8.0,
    offset: float = 0.0,
    min_snr: float = 3.0,
) -> NDArray[np.bool_]:
    """Whether each trace's baseline is reliable everywhere (the test of :func:`delta_f_over_f`).

    Returns
    -------
    ndarray of bool, (n,)
    """
    arr = np.asarray(traces, dtype=np.float64) - offset
    ok = _baseline_where_reliable(arr, method, lam, p, window, percentile, min_snr)[2]
    return np.asarray(ok.all(axis=-1))


def _baseline_where_reliable(
    arr: NDArray[np.float64],
    method: Literal["als", "percentile"],
    lam: float,
    p: float,
    window: int | None,
    percentile: float,
    min_snr: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Traces as rows ``(n, T)``, their baseline ``F0`` and where ``F0`` is reliable."""
    flat = arr.reshape(-1, arr.shape[-1])
    f0 = trace_baseline(flat, method=method, lam=lam, p=p, window=window, percentile=percentile)
    return flat, f0, _reliable(f0, noise_sigma(flat)[:, None], min_snr)


def _reliable(
    f0: NDArray[np.float64], sigma: NDArray[np.float64] | float, min_snr: float
) -> NDArray[np.bool_]:
    return np.asarray((f0 > 0) & (f0 > min_snr * np.asarray(sigma)))


def trace_baseline(
    traces: ArrayLike,
    *,
    method: Literal["als", "percentile"] = "als",
    lam: float = 1e4,
    p: float = 0.01,
    window: int | None = 101,
    percentile: float = 8.0,
) -> NDArray[np.float64]:
    """Resting fluorescence ``F0`` of traces ``(n, T)``: the baseline :func:`delta_f_over_f` uses.

    Parameters
    ----------
    traces : array-like, (n, T)
        Fluorescence traces (offset already subtracted).
    method, lam, p, window, percentile
        As in :func:`delta_f_over_f`.

    Returns
    -------
    ndarray of float64, (n, T)
    """
    flat = np.asarray(traces, dtype=np.float64)
    flat = flat.reshape(-1, flat.shape[-1])
    if method == "als":
        return np.stack([als_baseline(tr, lam=lam, p=p) for tr in flat])
    if method == "percentile":
        if window is None:
            level = np.percentile(flat, percentile, axis=-1, keepdims=True)
            return np.asarray(np.broadcast_to(level, flat.shape), dtype=np.float64)
        return percentile_baseline(flat, window=window, percentile=percentile)
    raise ValueError(f"unknown baseline {method!r}")
