"""Evenly spaced samples of a recording: statistics from a few planes, never the whole movie."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray


def evenly_spaced(n: int, count: int) -> NDArray[np.intp]:
    """Return up to ``count`` evenly spaced indices among ``n``, first and last included.

    Parameters
    ----------
    n : int
        Number of positions (planes, frames...).
    count : int
        How many to pick at the most.

    Returns
    -------
    ndarray of int
        Sorted, unique indices in ``[0, n)`` (empty when ``n`` is 0).

    Examples
    --------
    >>> evenly_spaced(10, 4).tolist()
    [0, 3, 6, 9]
    >>> evenly_spaced(3, 16).tolist()
    [0, 1, 2]
    """
    if n <= 0:
        return np.zeros(0, dtype=np.intp)
    return np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(np.intp))


def sample_planes(data: Any, count: int, *, dtype: DTypeLike | None = None) -> NDArray[Any]:
    """Up to ``count`` evenly spaced planes along the first axis, stacked.

    Parameters
    ----------
    data : Movie or array-like
        Anything indexable plane by plane along its first axis (a lazy ``Movie`` is read one
        plane at a time).
    count : int
        How many planes at the most.
    dtype : dtype, optional
        Type of the result (default: the data's).

    Returns
    -------
    ndarray
        ``(k, ...)`` with ``k = min(count, len(data))``.

    Examples
    --------
    >>> sample_planes(np.arange(20).reshape(10, 2), 3).tolist()
    [[0, 1], [8, 9], [18, 19]]
    """
    picks = evenly_spaced(int(data.shape[0]), count)
    return np.stack([np.asarray(data[int(i)], dtype) for i in picks])
