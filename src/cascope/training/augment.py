"""The 16-fold rotation/flip group: 8 in-plane dihedral transforms times a flip of the third axis.

Transforms act on the last two axes (Y, X) and, for stacks, on the axis before them (T or Z);
any leading axes (batch, channel) are left alone. The same transform is applied to every array of
a training sample so input, target and mask stay aligned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray


def n_transforms(*, stack: bool) -> int:
    """Size of the group: 16 for stacks (``stack=True``), 8 for images."""
    return 16 if stack else 8


def apply_transform(array: NDArray[Any], index: int, *, stack: bool) -> NDArray[Any]:
    """Apply transform ``index`` of the group to an array.

    Parameters
    ----------
    array : ndarray
        At least 2-D (3-D when ``stack``); the last axes are ``(T|Z,) Y, X``.
    index : int
        ``0 <= index < n_transforms(stack=stack)``; bits 0-1 rotate by 90° steps, bit 2 flips X,
        bit 3 flips the third axis.
    stack : bool
        Whether the array has a third (T or Z) axis to flip.

    Returns
    -------
    ndarray
        A view where possible (call :func:`numpy.ascontiguousarray` before handing it to torch).

    Examples
    --------
    >>> a = np.arange(4).reshape(2, 2)
    >>> apply_transform(a, 1, stack=False).tolist()
    [[1, 3], [0, 2]]
    """
    n = n_transforms(stack=stack)
    if not 0 <= index < n:
        raise ValueError(f"transform index must be in [0, {n}), got {index}")
    out = np.rot90(array, k=index & 3, axes=(-2, -1))
    if index & 4:
        out = out[..., ::-1]
    if stack and index & 8:
        out = np.flip(out, axis=-3)
    return out


def invert_transform(array: NDArray[Any], index: int, *, stack: bool) -> NDArray[Any]:
    """Undo :func:`apply_transform` (for test-time augmentation)."""
    out = array
    if stack and index & 8:
        out = np.flip(out, axis=-3)
    if index & 4:
        out = out[..., ::-1]
    return np.rot90(out, k=-(index & 3), axes=(-2, -1))


def random_transform(
    arrays: Sequence[NDArray[Any]], rng: np.random.Generator, *, stack: bool, square: bool = True
) -> list[NDArray[Any]]:
    """Apply one random group element to all arrays of a sample.

    Parameters
    ----------
    arrays : sequence of ndarray
        Aligned arrays (same trailing shape).
    rng : numpy.random.Generator
        Source of randomness (its state is part of the sampler's checkpoint).
    stack : bool
        Include the flip of the third axis.
    square : bool
        When False (non-square Y, X), only rotations by 0/180° are drawn so shapes are kept.

    Returns
    -------
    list of ndarray
        Contiguous transformed copies.
    """
    n = n_transforms(stack=stack)
    index = int(rng.integers(n))
    if not square:
        index &= ~1  # rotations by 0° or 180° only
    return [np.ascontiguousarray(apply_transform(a, index, stack=stack)) for a in arrays]
