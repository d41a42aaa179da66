"""Poisson–Gaussian camera model shared by every simulation."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from cascope.config.simulate import CameraParams

# Frames are drawn in blocks of about this many voxels so a long movie never needs float64 copies
# of the whole array.
_BLOCK_VOXELS = 1 << 22


def expected_adu(photons: NDArray[np.floating], camera: CameraParams) -> NDArray[np.float32]:
    """Return the expected camera value (ADU) of pixels receiving ``photons`` photo-electrons.

    Parameters
    ----------
    photons : ndarray
        Expected photo-electrons per pixel (any shape, non-negative).
    camera : CameraParams
        Detector model.

    Returns
    -------
    ndarray of float32
        ``offset + gain * photons``: the expected value of :func:`acquire`'s output (before its
        rounding and clipping), same shape as ``photons``.
    """
    out = np.asarray(photons, dtype=np.float32) * np.float32(camera.gain)
    out += np.float32(camera.offset)
    return out


def acquire(
    photons: NDArray[np.floating], camera: CameraParams, rng: np.random.Generator
) -> NDArray[np.uint16]:
    """Draw one noisy acquisition: shot noise, read noise, gain, offset, rounding and clipping.

    Parameters
    ----------
    photons : ndarray
        Expected photo-electrons per pixel (any shape, non-negative). Not modified.
    camera : CameraParams
        Detector model.
    rng : numpy.random.Generator
        Random source; consumed in a fixed order so results are reproducible.

    Returns
    -------
    ndarray of uint16
        ``clip(round(gain * (Poisson(photons) + Normal(0, read_noise)) + offset), 0, 2**bits - 1)``.
    """
    lam = np.asarray(photons)
    out = np.empty(lam.shape, dtype=np.uint16)
    flat_in = lam.reshape(-1)
    flat_out = out.reshape(-1)
    top = float(2**camera.bit_depth - 1)
    for start in range(0, flat_in.size, _BLOCK_VOXELS):
        sl = slice(start, start + _BLOCK_VOXELS)
        block = rng.poisson(np.maximum(flat_in[sl], 0.0)).astype(np.float32)
        if camera.read_noise > 0:
            block += rng.standard_normal(block.size, dtype=np.float32) * np.float32(
                camera.read_noise
            )
        block *= np.float32(camera.gain)
        block += np.float32(camera.offset)
        np.rint(block, out=block)
        np.clip(block, 0.0, top, out=block)
        flat_out[sl] = block
    return out
