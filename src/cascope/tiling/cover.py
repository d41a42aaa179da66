"""Covering an array with overlapping tiles, and the weights that blend them without seams."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import numpy as np
from numpy.typing import NDArray

Blend = Literal["gaussian", "linear", "constant"]


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start positions of tiles of length ``tile`` covering ``[0, size)`` with at least ``overlap``.

    Tiles are spread evenly, the first starting at 0 and the last ending at ``size``; a tile
    longer than ``size`` is shortened to ``size`` (a single tile).

    Parameters
    ----------
    size : int
        Length of the axis.
    tile : int
        Tile length.
    overlap : int
        Minimum overlap of neighbouring tiles (less than ``tile``).

    Returns
    -------
    list of int

    Examples
    --------
    >>> tile_starts(10, 4, 1)
    [0, 3, 6]
    >>> tile_starts(3, 8, 2)
    [0]
    """
    if size < 1 or tile < 1:
        raise ValueError("size and tile must be positive")
    tile = min(tile, size)
    if tile == size:
        return [0]
    overlap = min(max(overlap, 0), tile - 1)
    step = tile - overlap
    n = -(-(size - tile) // step) + 1
    # evenly spaced so all overlaps are about equal (no thin last tile)
    return [round(i * (size - tile) / (n - 1)) for i in range(n)]


def cover(
    shape: Sequence[int], tile: Sequence[int], overlap: Sequence[int]
) -> list[tuple[slice, ...]]:
    """All tiles covering an array of ``shape``, as tuples of slices.

    Parameters
    ----------
    shape, tile, overlap : sequence of int
        Per axis: array size, tile size (clipped to the array) and minimum overlap.

    Returns
    -------
    list of tuple of slice
        Every tile has the same size, ``min(tile, shape)`` per axis.
    """
    if not len(shape) == len(tile) == len(overlap):
        raise ValueError("shape, tile and overlap need one entry per axis")
    per_axis = []
    for s, t, o in zip(shape, tile, overlap, strict=True):
        t = min(int(t), int(s))
        per_axis.append([slice(a, a + t) for a in tile_starts(int(s), t, int(o))])
    return [tuple(c) for c in itertools.product(*per_axis)]


def blend_weights(
    tile: Sequence[int], mode: Blend = "gaussian", *, sigma: float = 0.125
) -> NDArray[np.float32]:
    """Blending weights for one tile: high in the centre, low (never zero) at the border.

    Parameters
    ----------
    tile : sequence of int
        Tile shape.
    mode : {"gaussian", "linear", "constant"}
        Gaussian with standard deviation ``sigma * size`` per axis (as MONAI), a linear ramp
        (tent), or uniform averaging.
    sigma : float
        Relative width of the Gaussian.

    Returns
    -------
    ndarray of float32
        Shape ``tile``, maximum 1.
    """
    return _weights(tuple(int(t) for t in tile), mode, float(sigma)).copy()


@lru_cache(maxsize=16)
def _weights(tile: tuple[int, ...], mode: str, sigma: float) -> NDArray[np.float32]:
    w = np.ones(tile, np.float32)
    for ax, n in enumerate(tile):
        x = np.arange(n, dtype=np.float64) - (n - 1) / 2
        if mode == "gaussian":
            prof = np.exp(-0.5 * (x / max(sigma * n, 1e-6)) ** 2)
        elif mode == "linear":
            prof = 1.0 - np.abs(x) / (n / 2 + 0.5)
        elif mode == "constant":
            prof = np.ones(n)
        else:
            raise ValueError(f"unknown blending {mode!r}")
        prof = np.maximum(prof / prof.max(), 1e-3)
        shape = [1] * len(tile)
        shape[ax] = n
        w = w * prof.reshape(shape).astype(np.float32)
    return w
