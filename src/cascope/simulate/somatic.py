"""Two-photon-like movies of neuronal somata with neuropil, spikes and GCaMP-like kinetics."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from cascope.config.simulate import SomaticParams
from cascope.simulate._common import (
    bleach_curve,
    indicator_response,
    resolve_params,
    smooth_field,
)
from cascope.simulate._noise import acquire, expected_adu

logger = logging.getLogger(__name__)

_FRAME_BLOCK = 64
_N_NEUROPIL_MODES = 4


@dataclass(frozen=True)
class SomaticResult:
    """A simulated somatic movie and its ground truth.

    Attributes
    ----------
    noisy : ndarray of uint16, (T, Y, X)
        The recording as a camera would write it (ADU).
    clean : ndarray of float32, (T, Y, X)
        Expected value of ``noisy`` in ADU, ``offset + gain * photons`` (before rounding and
        clipping): compare a denoised movie in ADU with it directly.
    footprints : ndarray of float32, (N, Y, X)
        Spatial footprint of each neuron, peak 1 (ring: the nucleus is dimmer).
    dff : ndarray of float32, (N, T)
        Ground-truth ΔF/F of each neuron (without neuropil or bleaching).
    spikes : list of ndarray of int64
        Frame index of every spike of each neuron (repeated for several spikes in a frame).
    centers : ndarray of float64, (N, 2)
        Soma centres (y, x) in pixels.
    brightness : ndarray of float64, (N,)
        Resting cytosol brightness of each neuron, photons per pixel per frame.
    params : SomaticParams
        Every parameter, seed included.
    axes : str
        Axes of the movies, ``"TYX"``.
    """

    noisy: NDArray[np.uint16]
    clean: NDArray[np.float32]
    footprints: NDArray[np.float32]
    dff: NDArray[np.float32]
    spikes: list[NDArray[np.int64]]
    centers: NDArray[np.float64]
    brightness: NDArray[np.float64]
    params: SomaticParams
    axes: str = field(default="TYX")

    @property
    def frame_rate(self) -> float:
        """Frame rate in Hz."""
        return self.params.frame_rate


def place_neurons(
    shape: tuple[int, int], n: int, radius: float, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Draw soma centres and radii, keeping neighbours from overlapping by more than a little.

    Parameters
    ----------
    shape : (int, int)
        Field size (Y, X).
    n : int
        Number of neurons wanted (fewer when the field is full).
    radius : float
        Mean soma radius, pixels.
    rng : numpy.random.Generator
        Random source.

    Returns
    -------
    centers : ndarray, (N, 2)
    radii : ndarray, (N,)
    """
    centers: list[tuple[float, float]] = []
    radii: list[float] = []
    lo = radius * 0.5
    for _ in range(60 * max(n, 1)):
        if len(centers) == n:
            break
        r = radius * float(np.clip(rng.lognormal(0.0, 0.15), 0.7, 1.4))
        c = rng.uniform(lo, np.array(shape) - lo)
        if centers:
            d = np.hypot(*(np.asarray(centers) - c).T)
            if np.any(d < 1.6 * (np.asarray(radii) + r) / 2):
                continue
        centers.append((float(c[0]), float(c[1])))
        radii.append(r)
    if len(centers) < n:
        logger.info("placed %d of %d neurons: the field is full", len(centers), n)
    return np.asarray(centers, dtype=np.float64).reshape(-1, 2), np.asarray(radii)


def render_footprints(
    shape: tuple[int, int],
    centers: NDArray[np.float64],
    radii: NDArray[np.float64],
    *,
    nucleus_fraction: float,
    nucleus_brightness: float,
    psf_sigma: float,
    rng: np.random.Generator,
) -> tuple[NDArray[np.float32], list[tuple[slice, slice]]]:
    """Render ring-shaped (dim nucleus) elliptical soma footprints of peak 1.

    Returns
    -------
    footprints : ndarray of float32, (N, Y, X)
    boxes : list of (slice, slice)
        The bounding box of each footprint's support.
    """
    n = len(centers)
    out = np.zeros((n, *shape), dtype=np.float32)
    boxes: list[tuple[slice, slice]] = []
    soft = 0.08
    for i in range(n):
        r = radii[i]
        half = int(np.ceil(1.3 * r + 3 * psf_sigma + 2))
        cy, cx = centers[i]
        y0, y1 = max(int(cy) - half, 0), min(int(cy) + half + 1, shape[0])
        x0, x1 = max(int(cx) - half, 0), min(int(cx) + half + 1, shape[1])
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        theta = rng.uniform(0, np.pi)
        a, b = r * (1 + rng.uniform(-0.15, 0.15)), r * (1 + rng.uniform(-0.15, 0.15))
        u = (yy - cy) * np.cos(theta) + (xx - cx) * np.sin(theta)
        v = -(yy - cy) * np.sin(theta) + (xx - cx) * np.cos(theta)
        d = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        body = 1.0 / (1.0 + np.exp((d - 1.0) / soft))
        # the nucleus sits slightly off-centre in real somata
        ncy, ncx = rng.normal(0, 0.1 * r, 2)
        dn = np.hypot(u - ncy, v - ncx) / (nucleus_fraction * r) if nucleus_fraction > 0 else None
        if dn is not None:
            body *= 1.0 - (1.0 - nucleus_brightness) / (1.0 + np.exp((dn - 1.0) / (2 * soft)))
        if psf_sigma > 0:
            body = ndimage.gaussian_filter(body, psf_sigma, mode="constant")
        peak = body.max()
        out[i, y0:y1, x0:x1] = body / peak if peak > 0 else body
        boxes.append((slice(y0, y1), slice(x0, x1)))
    return out, boxes


def somata(
    p: SomaticParams, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.float32], list[tuple[slice, slice]]]:
    """Place the somata of a field and render their footprints, as :func:`somatic` does.

    Parameters
    ----------
    p : SomaticParams
        Field size, number of neurons (default: one per 550 pixels), radius, nucleus, PSF.
    rng : numpy.random.Generator
        Random source.

    Returns
    -------
    centers : ndarray of float64, (N, 2)
        Soma centres (y, x).
    footprints : ndarray of float32, (N, Y, X)
        Footprints of peak 1 (:func:`render_footprints`).
    boxes : list of (slice, slice)
        The bounding box of each footprint's support.
    """
    n_wanted = p.n_neurons if p.n_neurons is not None else round(p.shape[0] * p.shape[1] / 550)
    centers, radii = place_neurons(p.shape, n_wanted, p.cell_radius, rng)
    footprints, boxes = render_footprints(
        p.shape,
        centers,
        radii,
        nucleus_fraction=p.nucleus_fraction,
        nucleus_brightness=p.nucleus_brightness,
        psf_sigma=p.psf_sigma,
        rng=rng,
    )
    return centers, footprints, boxes


def _spike_counts(p: SomaticParams, n: int, rng: np.random.Generator) -> NDArray[np.float64]:
    rates = p.spike_rate * rng.lognormal(-0.5 * 0.7**2, 0.7, n)
    spikes_per_event = (1 - p.burst_fraction) + p.burst_fraction * 3.5
    lam = rates[:, None] / p.frame_rate / spikes_per_event
    events = rng.poisson(np.broadcast_to(lam, (n, p.n_frames)))
    counts = events.astype(np.float64)
    burst = (events > 0) & (rng.random(events.shape) < p.burst_fraction)
    for i, t in zip(*np.nonzero(burst), strict=True):
        # a burst adds 1–4 extra spikes within the next ~100 ms
        extra = rng.integers(1, 5)
        span = max(1, int(round(0.1 * p.frame_rate)))
        ts = np.minimum(t + rng.integers(0, span, extra), p.n_frames - 1)
        np.add.at(counts[i], ts, 1.0)
    return counts


def _neuropil(
    p: SomaticParams, rng: np.random.Generator
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """Neuropil as ``base(y, x) * (1 + sum_k weight_k(y, x) * trace_k(t))``."""
    shape = p.shape
    base = 1.0 + 0.25 * smooth_field(shape, max(shape) / 8, rng)
    base = np.clip(base, 0.3, None) * p.neuropil * p.photons
    logits = np.stack([2.0 * smooth_field(shape, max(shape) / 6, rng) for _ in range(4)])
    weights = np.exp(logits)
    weights /= weights.sum(axis=0, keepdims=True)
    rise = p.rise_time * p.frame_rate
    decay = p.decay_time * p.frame_rate
    slow_decay = max(5 * p.frame_rate, 2 * decay)
    # run the filters through a burn-in so the movie starts in the steady state
    burn = int(4 * slow_decay)
    n_t = p.n_frames + burn
    drive = rng.poisson(3.0, (_N_NEUROPIL_MODES, n_t)).astype(np.float64)
    traces = indicator_response(drive, rise_frames=rise, decay_frames=decay)[:, burn:]
    # a slow component (seconds) on top of the population activity
    slow = indicator_response(
        rng.standard_normal((_N_NEUROPIL_MODES, n_t)),
        rise_frames=rise,
        decay_frames=slow_decay,
    )[:, burn:]
    traces = traces / (traces.std(axis=1, keepdims=True) + 1e-12)
    traces += 0.5 * slow / (slow.std(axis=1, keepdims=True) + 1e-12)
    traces -= traces.mean(axis=1, keepdims=True)
    traces *= p.neuropil_fluctuation / (traces.std(axis=1, keepdims=True) + 1e-12)
    return (
        base.astype(np.float32),
        weights.reshape(_N_NEUROPIL_MODES, -1).astype(np.float32),
        traces.T.astype(np.float32),
    )


def somatic(params: SomaticParams | None = None, **overrides: Any) -> SomaticResult:
    """Simulate a two-photon-like movie of neurons with its ground truth.

    The expected photons of a pixel are ``bleach(t) * (background + neuropil(t, y, x) +
    sum_i F_i * footprint_i(y, x) * (1 + dff_i(t)))``; spikes (Poisson events, some bursts) are
    convolved with a double-exponential indicator kernel to give ``dff``. The camera adds
    Poisson–Gaussian noise (:class:`~cascope.config.simulate.CameraParams`).

    Parameters
    ----------
    params : SomaticParams, optional
        Base parameters (defaults when omitted).
    **overrides
        Any :class:`~cascope.config.simulate.SomaticParams` field, e.g. ``seed=1,
        n_frames=1000, shape=(256, 256), photons=5``.

    Returns
    -------
    SomaticResult
        Noisy and clean movies, footprints, ΔF/F traces, spike frames, parameters.

    Examples
    --------
    >>> from cascope.simulate import somatic
    >>> sim = somatic(seed=1, n_frames=50, shape=(64, 64))
    >>> sim.noisy.shape, sim.noisy.dtype.name, sim.dff.shape[1]
    ((50, 64, 64), 'uint16', 50)
    """
    p = resolve_params(SomaticParams, params, overrides)
    rng = np.random.default_rng(p.seed)
    centers, footprints, boxes = somata(p, rng)
    n = len(centers)
    brightness = p.photons * np.clip(rng.lognormal(0.0, 0.3, n), 0.4, 2.5)
    counts = _spike_counts(p, n, rng)
    amp = p.spike_dff * rng.uniform(0.7, 1.3, n)
    dff = (
        amp[:, None]
        * indicator_response(
            counts, rise_frames=p.rise_time * p.frame_rate, decay_frames=p.decay_time * p.frame_rate
        )
    ).astype(np.float32)
    np_base, np_weights, np_traces = _neuropil(p, rng)
    bleach = bleach_curve(p.n_frames, p.bleaching).astype(np.float32)
    # (1 + dff) scaled by brightness, per neuron and frame
    cell_gain = (brightness[:, None] * (1.0 + dff)).astype(np.float32)

    shape_t = (p.n_frames, *p.shape)
    clean = np.empty(shape_t, dtype=np.float32)
    noisy = np.empty(shape_t, dtype=np.uint16)
    for t0 in range(0, p.n_frames, _FRAME_BLOCK):
        t1 = min(t0 + _FRAME_BLOCK, p.n_frames)
        block = (np_traces[t0:t1] @ np_weights).reshape(t1 - t0, *p.shape)
        block += 1.0
        np.maximum(block, 0.0, out=block)
        block *= np_base
        block += np.float32(p.background)
        for i, (sy, sx) in enumerate(boxes):
            block[:, sy, sx] += cell_gain[i, t0:t1, None, None] * footprints[i, sy, sx]
        block *= bleach[t0:t1, None, None]
        clean[t0:t1] = expected_adu(block, p.camera)
        noisy[t0:t1] = acquire(block, p.camera, rng)
    spikes = [np.repeat(np.arange(p.n_frames), counts[i].astype(np.int64)) for i in range(n)]
    logger.info("simulated %d neurons, %d spikes, movie %s", n, int(counts.sum()), shape_t)
    return SomaticResult(
        noisy=noisy,
        clean=clean,
        footprints=footprints,
        dff=dff,
        spikes=spikes,
        centers=centers,
        brightness=brightness,
        params=p,
    )
