"""Background removal: top-hat with anisotropic radii, offset-frame subtraction and add-back."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from cascope.errors import InputError
from cascope.io import validate_axes

_SPATIAL = "ZYX"


def ellipsoid_footprint(radii: Mapping[str, float], axes: str) -> NDArray[np.bool_]:
    """Boolean ellipsoid with the given semi-axes, one dimension per letter of ``axes``.

    Parameters
    ----------
    radii : mapping of axis letter to float
        Semi-axis in pixels per axis; a missing letter or 0 gives that axis a length of 1.
    axes : str
        Letters of the footprint's dimensions, e.g. ``"ZYX"``.

    Returns
    -------
    ndarray of bool
        Shape ``2 * floor(r) + 1`` per axis; true where ``sum((d / r) ** 2) <= 1``.

    Examples
    --------
    >>> ellipsoid_footprint({"Y": 1, "X": 2}, "YX").astype(int)
    array([[0, 0, 1, 0, 0],
           [1, 1, 1, 1, 1],
           [0, 0, 1, 0, 0]])
    """
    half = [int(math.floor(radii.get(a, 0.0))) for a in axes]
    grids = np.meshgrid(*[np.arange(-h, h + 1, dtype=np.float64) for h in half], indexing="ij")
    dist = np.zeros(grids[0].shape, dtype=np.float64)
    for g, a in zip(grids, axes, strict=True):
        r = radii.get(a, 0.0)
        if r > 0:
            dist += (g / r) ** 2
    return dist <= 1.0 + 1e-9


def _resolve_radii(radius: float | Mapping[str, float], axes: str) -> dict[str, float]:
    if isinstance(radius, Mapping):
        bad = sorted(set(k.upper() for k in radius) - set(_SPATIAL))
        if bad:
            raise InputError(f"top-hat radii are for Z, Y, X only; got {bad}")
        radii = {k.upper(): float(v) for k, v in radius.items()}
    else:
        radii = {"Y": float(radius), "X": float(radius)}
    missing = sorted(k for k, v in radii.items() if v > 0 and k not in axes)
    if missing:
        raise InputError(f"top-hat radius given for axis {missing} but the data axes are {axes!r}")
    if any(v < 0 for v in radii.values()):
        raise InputError("top-hat radii must be >= 0")
    if not any(v >= 1 for v in radii.values()):
        raise InputError("top-hat needs a radius of at least 1 pixel along some axis")
    return radii


def tophat_background(
    data: ArrayLike,
    *,
    axes: str,
    radius: float | Mapping[str, float],
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Split a recording into small bright structures and a smooth background (white top-hat).

    The background is the grey-scale opening with an ellipsoid footprint: everything narrower
    than the ellipsoid is removed from it, so ``foreground = data - background`` keeps objects
    smaller than the radii and drops slowly varying background. Non-spatial axes (T, C) are
    processed plane by plane; Z is included when it has a radius.

    Parameters
    ----------
    data : array-like
        The recording.
    axes : str
        Its axes, e.g. ``"TYX"`` or ``"ZYX"``.
    radius : float or mapping of axis letter to float
        Semi-axes of the ellipsoid in pixels. A number applies to Y and X (each plane alone);
        a mapping such as ``{"Z": 2, "Y": 8, "X": 8}`` gives anisotropic radii (voxels are often
        longer in Z). Choose it larger than the objects to keep.

    Returns
    -------
    foreground : ndarray of float32
        ``data - background``, in the input's units, never negative.
    background : ndarray of float32
        The estimated background, same shape.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((32, 32), 100.0)
    >>> img[10, 10] = 150.0
    >>> fg, bg = tophat_background(img, axes="YX", radius=3)
    >>> float(fg[10, 10]), float(bg.mean())
    (50.0, 100.0)
    """
    arr = np.asarray(data)
    axes = validate_axes(axes, arr.ndim)
    radii = _resolve_radii(radius, axes)
    filt_axes = "".join(a for a in axes if a in _SPATIAL and (a in "YX" or radii.get(a, 0) > 0))
    footprint = ellipsoid_footprint(radii, filt_axes)
    loop_axes = [i for i, a in enumerate(axes) if a not in filt_axes]
    src = arr.astype(np.float32, copy=False)
    background = np.empty(arr.shape, dtype=np.float32)
    loop_ranges = [range(arr.shape[i]) for i in loop_axes]
    for idx in itertools.product(*loop_ranges):
        index: list[Any] = [slice(None)] * arr.ndim
        for i, v in zip(loop_axes, idx, strict=True):
            index[i] = v
        background[tuple(index)] = ndimage.grey_opening(
            src[tuple(index)], footprint=footprint, mode="reflect"
        )
    foreground = src - background
    return foreground, background


def _offset_array(offset: float | ArrayLike, shape: tuple[int, ...], axes: str) -> NDArray[Any]:
    off = np.asarray(offset, dtype=np.float32)
    if off.ndim == 0:
        return off
    spatial = tuple(s for s, a in zip(shape, axes, strict=True) if a in _SPATIAL)
    if off.shape != spatial:
        raise InputError(
            f"offset frame has shape {off.shape} but the data's spatial shape is {spatial}"
        )
    view = [s if a in _SPATIAL else 1 for s, a in zip(shape, axes, strict=True)]
    return off.reshape(view)


def subtract_offset(
    data: ArrayLike, offset: float | ArrayLike, *, axes: str
) -> NDArray[np.float32]:
    """Subtract a camera offset (a number or a dark/offset frame) from every plane.

    Parameters
    ----------
    data : array-like
        The recording.
    offset : float or array-like
        A constant, or a frame with the spatial shape of ``data`` (its Z, Y, X axes).
    axes : str
        Axes of ``data``.

    Returns
    -------
    ndarray of float32
        ``data - offset``; values may be negative (nothing is clipped, so add-back is exact).
    """
    arr = np.asarray(data)
    axes = validate_axes(axes, arr.ndim)
    return arr.astype(np.float32) - _offset_array(offset, arr.shape, axes)


def add_offset(data: ArrayLike, offset: float | ArrayLike, *, axes: str) -> NDArray[np.float32]:
    """Add a camera offset (a number or an offset frame) back: the inverse of subtraction.

    Parameters
    ----------
    data : array-like
        The recording, offset removed.
    offset : float or array-like
        The same constant or frame that :func:`subtract_offset` removed.
    axes : str
        Axes of ``data``.

    Returns
    -------
    ndarray of float32
        ``data + offset``.
    """
    arr = np.asarray(data)
    axes = validate_axes(axes, arr.ndim)
    return arr.astype(np.float32) + _offset_array(offset, arr.shape, axes)
