"""Paired low-SNR / high-SNR images of the same scenes, for CARE, Noise2Noise and SI-PSNR."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cascope.config.simulate import MsctParams, PairParams, SomaticParams
from cascope.simulate._common import resolve_params, smooth_field
from cascope.simulate._noise import acquire, expected_adu
from cascope.simulate.mscts import _render_dendrites
from cascope.simulate.somatic import somata

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairResult:
    """Independent noisy acquisitions of the same scenes at two brightness levels.

    Attributes
    ----------
    noisy_a, noisy_b : ndarray of uint16, (N, Y, X)
        Two independent low-SNR acquisitions (``photons_low``) of each scene (ADU).
    high_snr : ndarray of uint16, (N, Y, X)
        One high-SNR acquisition (``photons_high``) of each scene (ADU).
    clean : ndarray of float32, (N, Y, X)
        Expected value of ``noisy_a`` and ``noisy_b`` in ADU.
    clean_high : ndarray of float32, (N, Y, X)
        Expected value of ``high_snr`` in ADU.
    scene : ndarray of float32, (N, Y, X)
        Relative brightness: expected photons are ``photons_low * scene`` (low) and
        ``photons_high * scene`` (high).
    params : PairParams
        Every parameter, seed included.
    axes : str
        ``"TYX"``: the first axis indexes independent scenes, not time.
    """

    noisy_a: NDArray[np.uint16]
    noisy_b: NDArray[np.uint16]
    high_snr: NDArray[np.uint16]
    clean: NDArray[np.float32]
    clean_high: NDArray[np.float32]
    scene: NDArray[np.float32]
    params: PairParams
    axes: str = field(default="TYX")


def _somatic_scene(shape: tuple[int, int], rng: np.random.Generator) -> NDArray[np.float64]:
    sp = SomaticParams(shape=shape)
    centers, fps, _ = somata(sp, rng)
    brightness = np.clip(rng.lognormal(0.0, 0.3, len(centers)), 0.4, 2.5)
    # a snapshot of activity: most cells at rest, some caught during a transient
    active = rng.random(len(centers)) < 0.3
    dff = np.where(active, rng.exponential(1.0, len(centers)), 0.0)
    neuropil = sp.neuropil * np.clip(
        1.0 + 0.3 * smooth_field(shape, max(shape) / 8, rng), 0.3, None
    )
    cells = np.tensordot(brightness * (1.0 + dff), fps, axes=1)
    return np.asarray(sp.background / sp.photons + neuropil + cells)


def _dendrite_scene(shape: tuple[int, int], rng: np.random.Generator) -> NDArray[np.float64]:
    mp = MsctParams(shape=shape, n_frames=1, photons=1.0, background=0.12)
    rest, _, _, _, _ = _render_dendrites(mp, rng)
    return rest


def pairs(params: PairParams | None = None, **overrides: Any) -> PairResult:
    """Simulate low-SNR / high-SNR image pairs of the same scenes.

    Each of the ``n_images`` scenes is a new random field (somata with neuropil, or dendrites).
    Two independent low-SNR acquisitions (for Noise2Noise) and one high-SNR acquisition (for
    CARE) are drawn with the Poisson–Gaussian camera model.

    Parameters
    ----------
    params : PairParams, optional
        Base parameters (defaults when omitted).
    **overrides
        Any :class:`~cascope.config.simulate.PairParams` field, e.g. ``n_images=8``.

    Returns
    -------
    PairResult
        The acquisitions, their expected values, the relative scene, parameters.

    Examples
    --------
    >>> from cascope.simulate import pairs
    >>> sim = pairs(seed=0, n_images=2, shape=(48, 48))
    >>> sim.noisy_a.shape == sim.high_snr.shape == sim.clean.shape
    True
    """
    p = resolve_params(PairParams, params, overrides)
    rng = np.random.default_rng(p.seed)
    make = _somatic_scene if p.scene == "somatic" else _dendrite_scene
    scene = np.stack([make(p.shape, rng) for _ in range(p.n_images)]).astype(np.float32)
    low = scene * np.float32(p.photons_low)
    high = scene * np.float32(p.photons_high)
    noisy_a = acquire(low, p.camera, rng)
    noisy_b = acquire(low, p.camera, rng)
    high_snr = acquire(high, p.camera, rng)
    logger.info("simulated %d %s scenes of %s", p.n_images, p.scene, p.shape)
    return PairResult(
        noisy_a=noisy_a,
        noisy_b=noisy_b,
        high_snr=high_snr,
        clean=expected_adu(low, p.camera),
        clean_high=expected_adu(high, p.camera),
        scene=scene,
        params=p,
    )
