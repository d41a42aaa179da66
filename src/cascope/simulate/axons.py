"""Confocal-like volumes of tubular axons with instance, semantic and centreline ground truth."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import cKDTree

from cascope.config.simulate import AxonParams
from cascope.errors import InputError
from cascope.simulate._common import resolve_params, smooth_field
from cascope.simulate._noise import acquire, expected_adu

logger = logging.getLogger(__name__)

_STEP = 0.5


@dataclass(frozen=True)
class Centreline:
    """One unbranched piece of an axon's centreline.

    Attributes
    ----------
    label : int
        Instance label of the axon it belongs to.
    points : ndarray of float64, (P, 3)
        Points (z, y, x) in voxels, 0.5 voxel apart, all inside the volume.
    length : float
        True length in voxels (sum of the distances between consecutive points).
    """

    label: int
    points: NDArray[np.float64]
    length: float


@dataclass(frozen=True)
class AxonResult:
    """A simulated axon volume and its ground truth.

    Attributes
    ----------
    noisy : ndarray of uint16, (Z, Y, X) or (2, Z, Y, X)
        The acquisition (ADU); with ``fret`` the channels are donor, acceptor (axes ``"CZYX"``).
    clean : ndarray of float32, same shape as ``noisy``
        Expected value of ``noisy`` in ADU (``offset + gain * photons``).
    labels : ndarray of int32, (Z, Y, X)
        Instance labels 1..N of the axons (voxels within the tube radius of the centreline), 0
        background. Where tubes overlap the voxel goes to the axon whose surface is farther.
    semantic : ndarray of uint8, (Z, Y, X)
        0 background, 1 axon, 2 border: instance voxels with a 6-neighbour of another label
        (background or another axon), i.e. a one-voxel inner ring plus touching voxels.
    centrelines : list of Centreline
        Unbranched pieces of every axon (a branching axon has several).
    radii : ndarray of float64, (N,)
        Tube radius of axon ``i + 1`` in voxels.
    ratios : ndarray of float64, (N,)
        Planted acceptor/donor ratio of axon ``i + 1`` (all 1 without ``fret``).
    background : ndarray of float64, (C,)
        Flat background per channel in ADU (expected value, offset included).
    params : AxonParams
        Every parameter, seed included.
    axes : str
        ``"ZYX"``, or ``"CZYX"`` with ``fret``.
    """

    noisy: NDArray[np.uint16]
    clean: NDArray[np.float32]
    labels: NDArray[np.int32]
    semantic: NDArray[np.uint8]
    centrelines: list[Centreline]
    radii: NDArray[np.float64]
    ratios: NDArray[np.float64]
    background: NDArray[np.float64]
    params: AxonParams
    axes: str

    def lengths(self) -> dict[int, float]:
        """Total centreline length of each axon in voxels, by instance label."""
        out: dict[int, float] = {}
        for c in self.centrelines:
            out[c.label] = out.get(c.label, 0.0) + c.length
        return out


def _semantic(labels: NDArray[np.integer]) -> NDArray[np.uint8]:
    """0 background, 1 instance interior, 2 instance voxels with a 6-neighbour of another label."""
    sem = (labels > 0).astype(np.uint8)
    border = np.zeros(labels.shape, dtype=bool)
    for axis in range(labels.ndim):
        lo = [slice(None)] * labels.ndim
        hi = [slice(None)] * labels.ndim
        lo[axis] = slice(None, -1)
        hi[axis] = slice(1, None)
        diff = labels[tuple(lo)] != labels[tuple(hi)]
        border[tuple(lo)] |= diff
        border[tuple(hi)] |= diff
    sem[border & (labels > 0)] = 2
    return sem


def _inside(pos: NDArray[np.float64], shape: tuple[int, int, int]) -> bool:
    return bool(np.all(pos >= 0) and np.all(pos <= np.asarray(shape) - 1))


def _walk3d(
    start: NDArray[np.float64],
    direction: NDArray[np.float64],
    shape: tuple[int, int, int],
    max_len: float,
    tortuosity: float,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """Smooth 3D random path from ``start`` until it leaves the volume or reaches ``max_len``."""
    pts = [start]
    pos = start.copy()
    d = direction / np.linalg.norm(direction)
    turn = np.zeros(3)
    for _ in range(int(max_len / _STEP)):
        # turning has momentum, and z turning is damped: axons run in the imaging plane
        turn = 0.9 * turn + rng.normal(0, tortuosity * np.sqrt(_STEP), 3) * np.array([0.3, 1, 1])
        d = d + turn * _STEP
        d[0] *= 0.98
        d /= np.linalg.norm(d)
        pos = pos + _STEP * d
        if not _inside(pos, shape):
            break
        pts.append(pos)
    return np.asarray(pts)


def _random_axons(
    p: AxonParams, rng: np.random.Generator
) -> tuple[list[Centreline], NDArray[np.float64]]:
    shape = p.shape
    area = shape[1] * shape[2]
    n = p.n_axons or max(1, round(area / (2500 if p.density == "sparse" else 700)))
    span = float(np.linalg.norm(shape))
    lines: list[Centreline] = []
    radii = rng.uniform(*p.radius, n)
    # dense fields are bundles: axons share a main direction, so they touch along their length
    bundle = rng.uniform(0, np.pi)
    for i in range(n):
        label = i + 1
        start = np.array([rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9)])
        start *= np.asarray(shape) - 1
        phi = bundle + rng.normal(0, 0.35) if p.density == "dense" else rng.uniform(0, np.pi)
        d = np.array([rng.normal(0, 0.05), np.sin(phi), np.cos(phi)])
        fwd = _walk3d(start, d, shape, span, p.tortuosity, rng)
        back = _walk3d(start, -d, shape, span, p.tortuosity, rng)
        main = np.concatenate([back[::-1], fwd[1:]])
        lines.append(_centreline(label, main))
        if rng.random() < p.branch_probability and len(main) > 40:
            k = int(rng.integers(len(main) // 4, 3 * len(main) // 4))
            tangent = main[k + 1] - main[k - 1]
            angle = rng.choice([-1, 1]) * rng.uniform(np.pi / 6, np.pi / 2.5)
            c, s = np.cos(angle), np.sin(angle)
            bd = np.array(
                [tangent[0], c * tangent[1] - s * tangent[2], s * tangent[1] + c * tangent[2]]
            )
            branch = _walk3d(main[k], bd, shape, rng.uniform(0.2, 0.5) * span, p.tortuosity, rng)
            if len(branch) > 4:
                lines.append(_centreline(label, branch))
    return lines, radii


def _centreline(label: int, points: NDArray[np.float64]) -> Centreline:
    length = (
        float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum()) if len(points) > 1 else 0.0
    )
    return Centreline(label=label, points=points, length=length)


def _straight_tube(p: AxonParams) -> tuple[list[Centreline], NDArray[np.float64]]:
    u = np.asarray(p.tube_direction, dtype=np.float64)
    if not np.any(u):
        raise InputError("tube_direction must not be the zero vector")
    u /= np.linalg.norm(u)
    centre = (np.asarray(p.shape) - 1) / 2
    n_steps = int(np.ceil(p.tube_length / _STEP))
    s = np.linspace(-p.tube_length / 2, p.tube_length / 2, n_steps + 1)
    points = centre + s[:, None] * u
    radius = float(np.mean(p.radius))
    margin = radius + 1
    if np.any(points < margin) or np.any(points > np.asarray(p.shape) - 1 - margin):
        raise InputError(
            f"a straight tube of length {p.tube_length} and radius {radius} does not fit in a "
            f"volume of shape {p.shape}"
        )
    return [_centreline(1, points)], np.array([radius])


def _near_voxels(
    pts: NDArray[np.float64], reach: float, shape: tuple[int, int, int]
) -> NDArray[np.int64]:
    """Integer voxels (K, 3) inside the volume within about ``reach`` of the points."""
    k = int(np.ceil(reach + 1))
    offsets = np.mgrid[-k : k + 1, -k : k + 1, -k : k + 1].reshape(3, -1).T
    offsets = offsets[(offsets**2).sum(axis=1) <= (reach + 0.9) ** 2]
    seeds = np.unique(np.rint(pts).astype(np.int64), axis=0)
    cand = (seeds[:, None, :] + offsets[None]).reshape(-1, 3)
    cand = cand[np.all((cand >= 0) & (cand < np.asarray(shape)), axis=1)]
    flat = np.unique(np.ravel_multi_index(tuple(cand.T), shape))
    return np.stack(np.unravel_index(flat, shape), axis=1)


def _render(
    shape: tuple[int, int, int], lines: list[Centreline], radii: NDArray[np.float64]
) -> tuple[NDArray[np.int32], list[tuple[tuple[NDArray[np.int64], ...], NDArray[np.float64]]]]:
    """Instance labels and each axon's antialiased occupancy (voxel indices, values)."""
    labels = np.zeros(shape, dtype=np.int32)
    depth = np.full(shape, np.inf, dtype=np.float32)
    occupancy = []
    for i, r in enumerate(radii):
        pts = np.concatenate([c.points for c in lines if c.label == i + 1])
        # only voxels near the centreline need an exact distance: keeps dense volumes fast
        vox = _near_voxels(pts, r + 1, shape)
        dist, _ = cKDTree(pts).query(vox, distance_upper_bound=r + 2)
        occ = np.clip(r + 0.5 - dist, 0.0, 1.0)
        keep = occ > 0
        idx = tuple(vox[keep].T)
        occupancy.append((idx, occ[keep]))
        # depth inside the tube, negative: the most interior axon keeps an overlap voxel
        rel = (dist[keep] - r).astype(np.float32)
        take = (rel <= 0) & (rel < depth[idx])
        labels[tuple(a[take] for a in idx)] = i + 1
        depth[tuple(a[take] for a in idx)] = rel[take]
    return labels, occupancy


def axons(params: AxonParams | None = None, **overrides: Any) -> AxonResult:
    """Simulate a confocal-like volume of tubular axons, with its ground truth.

    Axons are smooth 3D random curves (mostly in the imaging plane) rendered as tubes of radius
    1.5–3 voxels, some with a collateral branch; ``density="dense"`` gives bundles that touch
    and cross. The structure is blurred by an anisotropic Gaussian PSF (larger in z), a flat
    background is added and the camera adds Poisson–Gaussian noise. With ``fret=True`` a second
    (acceptor) channel carries a planted per-axon acceptor/donor ratio.

    Parameters
    ----------
    params : AxonParams, optional
        Base parameters (defaults when omitted).
    **overrides
        Any :class:`~cascope.config.simulate.AxonParams` field, e.g. ``density="dense"``,
        ``mode="straight", tube_length=50``.

    Returns
    -------
    AxonResult
        Noisy and clean volumes, instance and semantic labels, centrelines, planted ratios.

    Examples
    --------
    >>> from cascope.simulate import axons
    >>> sim = axons(seed=0, shape=(16, 48, 48))
    >>> sim.noisy.shape, sim.axes, int(sim.semantic.max())
    ((16, 48, 48), 'ZYX', 2)
    """
    p = resolve_params(AxonParams, params, overrides)
    rng = np.random.default_rng(p.seed)
    if p.mode == "straight":
        lines, radii = _straight_tube(p)
    else:
        lines, radii = _random_axons(p, rng)
    n = len(radii)
    labels, occupancy = _render(p.shape, lines, radii)
    brightness = np.clip(rng.lognormal(0.0, 0.25, n), 0.5, 2.0)
    ratios = rng.uniform(*p.fret_ratio, n) if p.fret else np.ones(n)
    # slow brightness changes along the axons (varicosities, expression level)
    texture = np.clip(1.0 + 0.15 * smooth_field(p.shape, 4.0, rng), 0.5, 1.5)
    n_channels = 2 if p.fret else 1
    structure = np.zeros((n_channels, *p.shape), dtype=np.float64)
    for i, (idx, occ) in enumerate(occupancy):
        structure[0][idx] += brightness[i] * occ
        if p.fret:
            structure[1][idx] += brightness[i] * ratios[i] * occ
    structure *= texture
    backgrounds = np.array([p.background, 0.8 * p.background])[:n_channels]
    photons = np.empty((n_channels, *p.shape), dtype=np.float32)
    for c in range(n_channels):
        photons[c] = backgrounds[c] + p.photons * ndimage.gaussian_filter(structure[c], p.psf_sigma)
    noisy = acquire(photons, p.camera, rng)
    clean = expected_adu(photons, p.camera)
    if not p.fret:
        noisy, clean = noisy[0], clean[0]
    logger.info("simulated %d axons in a %s volume", n, p.shape)
    return AxonResult(
        noisy=noisy,
        clean=clean,
        labels=labels,
        semantic=_semantic(labels),
        centrelines=lines,
        radii=radii,
        ratios=ratios,
        background=p.camera.offset + p.camera.gain * backgrounds,
        params=p,
        axes="CZYX" if p.fret else "ZYX",
    )
