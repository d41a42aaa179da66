"""Dendrites of cultured neurons with miniature synaptic calcium transients (mSCTs)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import ndimage

from cascope.config.simulate import MsctParams
from cascope.io.event_table import TRUTH_COLUMNS
from cascope.simulate._common import bleach_curve, resolve_params, smooth_field
from cascope.simulate._noise import acquire, expected_adu

logger = logging.getLogger(__name__)

_FRAME_BLOCK = 64

#: Columns of the ground-truth event table (:data:`cascope.io.event_table.TRUTH_COLUMNS`).
EVENT_COLUMNS = TRUTH_COLUMNS


@dataclass(frozen=True)
class MsctResult:
    """A simulated mSCT movie and its ground truth.

    Attributes
    ----------
    noisy : ndarray of uint16, (T, Y, X)
        The recording as a camera would write it (ADU).
    clean : ndarray of float32, (T, Y, X)
        Expected value of ``noisy`` in ADU (``offset + gain * photons``, before rounding/clipping).
    labels : ndarray of int32, (T, Y, X)
        Event instance labels: voxel = event id (1..N) where the event's ΔF/F exceeds
        ``label_fraction`` of its peak ΔF/F, 0 elsewhere. Where two events overlap the earlier
        keeps the voxel.
    events : pandas.DataFrame
        One row per event: ``id``; ``t``, ``y``, ``x`` (centroid of the labelled voxels weighted by
        the event's ΔF/F; frames, pixels); ``t_start, t_end, y_start, y_end, x_start, x_end``
        (bounding box of the labels, end exclusive); ``area`` (labelled voxels); ``amplitude``
        (peak ΔF/F); ``radius`` (pixels); ``t_onset``, ``t_peak`` (frames); ``decay_frames``;
        ``dendrite`` (index of the dendrite it sits on).
    dendrites : ndarray of bool, (Y, X)
        Dendrite mask (pixels within half the width of a dendrite's axis).
    baseline : ndarray of float32, (Y, X)
        Expected ADU of the resting movie (no events) at the first frame.
    bleach : ndarray of float64, (T,)
        Bleaching factor of the fluorescence (photons) per frame.
    params : MsctParams
        Every parameter, seed included.
    axes : str
        Axes of the movies, ``"TYX"``.
    """

    noisy: NDArray[np.uint16]
    clean: NDArray[np.float32]
    labels: NDArray[np.int32]
    events: pd.DataFrame
    dendrites: NDArray[np.bool_]
    baseline: NDArray[np.float32]
    bleach: NDArray[np.float64]
    params: MsctParams
    axes: str = field(default="TYX")

    def dff(self) -> NDArray[np.float32]:
        """Ground-truth ΔF/F movie: the events' relative change over the resting fluorescence.

        Returns
        -------
        ndarray of float32, (T, Y, X)
            ``(clean - offset) / ((baseline - offset) * bleach(t)) - 1``.
        """
        off = np.float32(self.params.camera.offset)
        rest = (self.baseline - off)[None] * self.bleach[:, None, None].astype(np.float32)
        return np.asarray((self.clean - off) / rest - 1.0, dtype=np.float32)


def _walk(
    start: NDArray[np.float64],
    theta: float,
    shape: tuple[int, int],
    max_len: float,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """Smooth random path (curvature follows an Ornstein–Uhlenbeck process) until it leaves."""
    pts = [start.copy()]
    pos = start.copy()
    omega = 0.0
    step = 0.5
    for _ in range(int(max_len / step)):
        omega += -0.05 * omega + rng.normal(0, 0.006)
        theta += omega
        pos = pos + step * np.array([np.sin(theta), np.cos(theta)])
        if not (-2 <= pos[0] < shape[0] + 2 and -2 <= pos[1] < shape[1] + 2):
            break
        pts.append(pos)
    return np.asarray(pts)


def dendrite_paths(
    shape: tuple[int, int], n: int, branch_probability: float, rng: np.random.Generator
) -> list[NDArray[np.float64]]:
    """Centrelines (points (y, x), 0.5 px apart) of ``n`` dendrites crossing the field, + branches.

    Parameters
    ----------
    shape : (int, int)
        Field size.
    n : int
        Number of primary dendrites.
    branch_probability : float
        Probability of one side branch per dendrite.
    rng : numpy.random.Generator
        Random source.

    Returns
    -------
    list of ndarray, each (P, 2)
        Primary dendrites first, then branches.
    """
    paths = []
    span = float(np.hypot(*shape))
    for _ in range(n):
        start = rng.uniform(0.15, 0.85, 2) * np.array(shape)
        theta = rng.uniform(0, 2 * np.pi)
        fwd = _walk(start, theta, shape, span, rng)
        back = _walk(start, theta + np.pi, shape, span, rng)
        paths.append(np.concatenate([back[::-1], fwd[1:]]))
    for path in list(paths):
        if rng.random() < branch_probability and len(path) > 20:
            k = int(rng.integers(len(path) // 5, 4 * len(path) // 5))
            d = path[min(k + 1, len(path) - 1)] - path[max(k - 1, 0)]
            theta = float(np.arctan2(d[0], d[1]))
            theta += rng.choice([-1, 1]) * rng.uniform(np.pi / 6, np.pi / 2.5)
            paths.append(_walk(path[k], theta, shape, rng.uniform(0.2, 0.5) * span, rng))
    return paths


def _render_dendrites(
    p: MsctParams, rng: np.random.Generator
) -> tuple[
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.bool_],
    NDArray[np.int32],
    list[NDArray[np.int64]],
]:
    """Resting photons and dendrite photons (Y, X), mask, index map, axis pixels per dendrite."""
    n = (
        p.n_dendrites
        if p.n_dendrites is not None
        else max(1, round(p.shape[0] * p.shape[1] / 3000))
    )
    paths = dendrite_paths(p.shape, n, p.branch_probability, rng)
    profile = np.zeros(p.shape)
    mask = np.zeros(p.shape, dtype=bool)
    owner = np.zeros(p.shape, dtype=np.int32)
    best = np.full(p.shape, np.inf)
    axis_pixels = []
    lo, hi = p.dendrite_width
    for i, path in enumerate(paths):
        width = rng.uniform(lo, hi) * (0.75 if i >= n else 1.0)
        px = np.unique(np.rint(path).astype(np.int64), axis=0)
        inside = (
            (px[:, 0] >= 0) & (px[:, 0] < p.shape[0]) & (px[:, 1] >= 0) & (px[:, 1] < p.shape[1])
        )
        px = px[inside]
        if len(px) == 0:
            continue
        axis = np.ones(p.shape, dtype=bool)
        axis[px[:, 0], px[:, 1]] = False
        dist = ndimage.distance_transform_edt(axis)
        sigma = width / 2.355
        # brightness varies slowly along a dendrite (varicosities, thickness)
        along = np.clip(1.0 + 0.2 * smooth_field(p.shape, 6.0, rng), 0.5, 1.6)
        profile = np.maximum(profile, along * np.exp(-(dist**2) / (2 * sigma**2)))
        near = dist <= max(width / 2, 1.0)
        mask |= near
        closer = near & (dist < best)
        owner[closer] = i + 1
        best[closer] = dist[closer]
        axis_pixels.append(px)
    background = p.background * np.clip(1.0 + 0.15 * smooth_field(p.shape, 20.0, rng), 0.5, None)
    structure = p.photons * profile
    if p.psf_sigma > 0:
        structure = ndimage.gaussian_filter(structure, p.psf_sigma)
        background = ndimage.gaussian_filter(background, p.psf_sigma)
    return background + structure, structure, mask, owner, axis_pixels


def _event_kinetics(rise: float, decay: float) -> NDArray[np.float64]:
    """Temporal profile (peak 1) of an event starting mid-frame at frame 0."""
    n = np.arange(int(np.ceil(8 * decay)) + 2) + 0.5
    h = (1.0 - np.exp(-n / rise)) * np.exp(-n / decay)
    return np.asarray(h / h.max())


def mscts(params: MsctParams | None = None, **overrides: Any) -> MsctResult:
    """Simulate dendrites with miniature synaptic calcium transients, with their ground truth.

    Dendrites are smooth random curves of 2–4 px width; events are centred on a dendrite's axis,
    with a fast rise and a decay of a few frames, Poisson in number and uniform in time. An
    event's ΔF/F is ``amplitude`` at its centre and peak, falls off as a Gaussian (to
    ``label_fraction`` at ``radius``) and follows the indicator-filled structure, so events are
    elongated along the dendrite as real mSCTs are.

    Parameters
    ----------
    params : MsctParams, optional
        Base parameters (defaults when omitted).
    **overrides
        Any :class:`~cascope.config.simulate.MsctParams` field, e.g. ``seed=2, n_frames=500``.

    Returns
    -------
    MsctResult
        Noisy and clean movies, event labels and table, dendrite mask, parameters.

    Examples
    --------
    >>> from cascope.simulate import mscts
    >>> sim = mscts(seed=1, n_frames=60, shape=(64, 64))
    >>> sim.labels.shape == sim.noisy.shape and set(sim.events.columns) >= {"t", "y", "x"}
    True
    """
    p = resolve_params(MsctParams, params, overrides)
    rng = np.random.default_rng(p.seed)
    rest, structure, mask, owner, axis_pixels = _render_dendrites(p, rng)
    # calcium spreads a little beyond the dendrite's bright core (spine heads, necks)
    local = ndimage.gaussian_filter(structure, 1.0)
    local_dff = local / rest
    n_t = p.n_frames
    photons = np.empty((n_t, *p.shape), dtype=np.float32)
    photons[:] = rest.astype(np.float32)
    labels = np.zeros((n_t, *p.shape), dtype=np.int32)
    all_axis = np.concatenate(axis_pixels) if axis_pixels else np.zeros((0, 2), np.int64)

    expected = p.event_rate * n_t * mask.sum() / 1e4
    n_events = int(rng.poisson(expected)) if len(all_axis) else 0
    placed: list[tuple[float, float, float]] = []
    rows: list[dict[str, Any]] = []
    k_label = float(np.sqrt(2 * np.log(1 / p.label_fraction)))
    for _ in range(n_events):
        for _attempt in range(30):
            cy, cx = all_axis[rng.integers(len(all_axis))].astype(np.float64)
            t0 = int(rng.integers(0, max(n_t - 2, 1)))
            if not placed:
                break
            prev = np.asarray(placed)
            close = (np.abs(prev[:, 0] - t0) < p.min_separation[0]) & (
                np.hypot(prev[:, 1] - cy, prev[:, 2] - cx) < p.min_separation[1]
            )
            if not close.any():
                break
        else:
            continue
        cy += rng.uniform(-0.5, 0.5)
        cx += rng.uniform(-0.5, 0.5)
        placed.append((t0, cy, cx))
        amp = rng.uniform(*p.amplitude)
        radius = rng.uniform(*p.radius)
        decay = rng.uniform(*p.decay_frames)
        h = _event_kinetics(p.rise_frames, decay)[: n_t - t0]
        s = radius / k_label
        half = int(np.ceil(3 * s)) + 1
        y0, y1 = max(int(cy) - half, 0), min(int(cy) + half + 2, p.shape[0])
        x0, x1 = max(int(cx) - half, 0), min(int(cx) + half + 2, p.shape[1])
        yy, xx = np.mgrid[y0:y1, x0:x1]
        iy, ix = int(round(min(cy, p.shape[0] - 1))), int(round(min(cx, p.shape[1] - 1)))
        # relative ΔF/F: 1 at the centre's peak, shaped by the indicator-filled structure
        g = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s**2))
        g = g * local_dff[y0:y1, x0:x1] / local_dff[iy, ix]
        rel = h[:, None, None] * g[None]
        ts = slice(t0, t0 + len(h))
        eid = len(rows) + 1
        sub = labels[ts, y0:y1, x0:x1]
        mine = (rel >= p.label_fraction) & (sub == 0)
        if not mine.any():
            continue
        sub[mine] = eid
        photons[ts, y0:y1, x0:x1] += (amp * rel * rest[None, y0:y1, x0:x1]).astype(np.float32)
        tt, yy_i, xx_i = np.nonzero(mine)
        w = rel[mine]
        rows.append(
            {
                "id": eid,
                "t": t0 + float(np.average(tt, weights=w)),
                "y": y0 + float(np.average(yy_i, weights=w)),
                "x": x0 + float(np.average(xx_i, weights=w)),
                "t_start": t0 + int(tt.min()),
                "t_end": t0 + int(tt.max()) + 1,
                "y_start": y0 + int(yy_i.min()),
                "y_end": y0 + int(yy_i.max()) + 1,
                "x_start": x0 + int(xx_i.min()),
                "x_end": x0 + int(xx_i.max()) + 1,
                "area": int(mine.sum()),
                "amplitude": float(amp),
                "radius": float(radius),
                "t_onset": t0,
                "t_peak": t0 + int(np.argmax(h)),
                "decay_frames": float(decay),
                "dendrite": int(owner[int(round(cy)) % p.shape[0], int(round(cx)) % p.shape[1]]),
            }
        )
    bleach = bleach_curve(n_t, p.bleaching)
    noisy = np.empty(photons.shape, dtype=np.uint16)
    for t0 in range(0, n_t, _FRAME_BLOCK):
        block = photons[t0 : t0 + _FRAME_BLOCK]
        block *= bleach[t0 : t0 + _FRAME_BLOCK, None, None].astype(np.float32)
        noisy[t0 : t0 + _FRAME_BLOCK] = acquire(block, p.camera, rng)
        block[:] = expected_adu(block, p.camera)
    events = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    logger.info("simulated %d mSCTs on %d dendrite pixels", len(events), int(mask.sum()))
    return MsctResult(
        noisy=noisy,
        clean=photons,
        labels=labels,
        events=events,
        dendrites=mask,
        baseline=expected_adu(rest, p.camera),
        bleach=bleach,
        params=p,
    )
