"""Trace fidelity: extract each neuron's trace with known footprints and correlate its ΔF/F."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cascope.metrics.image import FrameScores

#: Frames read at a time when extracting traces from a (possibly lazy, memory-mapped) movie.
_BLOCK = 256


@dataclass(frozen=True)
class TraceCorrelation(FrameScores):
    """Per-neuron Pearson correlation of extracted ΔF/F with the ground truth.

    The per-item scores of :class:`~cascope.metrics.FrameScores`, one per neuron rather than
    per frame: ``values`` (also ``r``) holds each neuron's r (NaN where either trace is
    constant), ``mean`` and ``std`` summarise the neurons whose r is defined.

    Attributes
    ----------
    dff : ndarray of float64, (N, T)
        The extracted ΔF/F traces.
    """

    dff: NDArray[np.float64] = field(default_factory=lambda: np.empty((0, 0)))

    @property
    def r(self) -> NDArray[np.float64]:
        """Pearson correlation per neuron, ``(N,)``."""
        return self.values

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form for JSON (without the traces)."""
        return {
            "mean_r": self.mean,
            "median_r": float(np.nanmedian(self.r)) if np.isfinite(self.r).any() else None,
            "n_neurons": int(self.r.size),
            "r": [None if not np.isfinite(x) else float(x) for x in self.r],
        }


def extract_traces(movie: Any, footprints: ArrayLike) -> NDArray[np.float64]:
    """Footprint-weighted mean fluorescence of each neuron in each frame.

    ``F_i(t) = sum_p w_i(p) x_t(p) / sum_p w_i(p)`` with ``w_i`` the (non-negative) footprint of
    neuron ``i``. The movie is read in blocks of frames, so a memory-mapped movie is never read
    whole.

    Parameters
    ----------
    movie : Movie or array-like, (T, Y, X)
        The recording (a :class:`cascope.io.Movie` must have axes ``"TYX"``).
    footprints : array-like, (N, Y, X)
        Spatial weights of each neuron.

    Returns
    -------
    ndarray of float64, (N, T)
    """
    axes = getattr(movie, "axes", "TYX")
    if axes != "TYX":
        raise ValueError(f"trace extraction needs a TYX movie, got axes {axes!r}")
    w = np.asarray(footprints, dtype=np.float64)
    shape = tuple(int(s) for s in movie.shape)
    if w.ndim != 3 or w.shape[1:] != shape[1:]:
        raise ValueError(f"footprints {w.shape} do not match frames of the movie {shape}")
    if (w < 0).any():
        raise ValueError("footprints must be non-negative")
    total = w.reshape(len(w), -1).sum(axis=1)
    if (total <= 0).any():
        raise ValueError("every footprint needs a positive weight somewhere")
    flat_w = (w.reshape(len(w), -1) / total[:, None]).T
    out = np.empty((len(w), shape[0]), dtype=np.float64)
    for start in range(0, shape[0], _BLOCK):
        block = np.asarray(movie[start : start + _BLOCK], dtype=np.float64)
        out[:, start : start + len(block)] = (block.reshape(len(block), -1) @ flat_w).T
    return out


def delta_f_over_f(
    traces: ArrayLike, *, percentile: float = 8.0, offset: float = 0.0
) -> NDArray[np.float64]:
    """ΔF/F with a low-percentile baseline: ``(F - F0) / F0``, ``F0 = percentile(F - offset)``.

    Parameters
    ----------
    traces : array-like, (N, T)
        Raw fluorescence.
    percentile : float
        Percentile of each trace taken as its resting fluorescence ``F0`` (default 8: below most
        transients, above the noise floor).
    offset : float
        Camera offset subtracted from the traces first (ADU), so ``F0`` is the true resting level.

    Returns
    -------
    ndarray of float64, (N, T)
        ΔF/F; NaN for a trace whose baseline is not positive.

    See Also
    --------
    cascope.preprocess.delta_f_over_f : The one ΔF/F of the project, which this calls.
    """
    from cascope.preprocess.dff import delta_f_over_f as dff_of_traces

    return dff_of_traces(
        traces, method="percentile", window=None, percentile=percentile, offset=offset, min_snr=0
    )


def _pearson_rows(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, (a * b).sum(axis=1) / np.where(den > 0, den, 1.0), np.nan)


def trace_correlation(
    movie: Any,
    footprints: ArrayLike,
    dff_true: ArrayLike,
    *,
    percentile: float = 8.0,
    offset: float = 0.0,
) -> TraceCorrelation:
    """Pearson r between ΔF/F extracted with known footprints and the ground-truth ΔF/F.

    Traces are footprint-weighted means (:func:`extract_traces`), turned into ΔF/F with a
    low-percentile baseline (:func:`delta_f_over_f`). Because ΔF/F is an affine function of each
    trace, ``r`` does not depend on the baseline or offset chosen (unless the baseline is not
    positive); they only shape the returned ``dff``.

    Parameters
    ----------
    movie : Movie or array-like, (T, Y, X)
        Raw, denoised or clean recording.
    footprints : array-like, (N, Y, X)
        Spatial weights of each neuron.
    dff_true : array-like, (N, T)
        Ground-truth ΔF/F.
    percentile : float
        Baseline percentile (see :func:`delta_f_over_f`).
    offset : float
        Camera offset in ADU subtracted before ΔF/F.

    Returns
    -------
    TraceCorrelation
        Per-neuron ``r``, its mean and the extracted ΔF/F.
    """
    truth = np.asarray(dff_true, dtype=np.float64)
    traces = extract_traces(movie, footprints)
    if truth.shape != traces.shape:
        raise ValueError(f"ground-truth ΔF/F {truth.shape} does not match traces {traces.shape}")
    dff = delta_f_over_f(traces, percentile=percentile, offset=offset)
    r = _pearson_rows(dff, truth)
    finite = r[np.isfinite(r)]
    mean, std = (float(finite.mean()), float(finite.std())) if finite.size else (np.nan, np.nan)
    return TraceCorrelation(values=r, mean=mean, std=std, dff=dff)
