"""Input checks of the denoisers: the recording's axes, and no NaN or infinite value in it."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from cascope.errors import InputError
from cascope.io import Movie, as_movie, check_finite


def check_planes(movie: Movie) -> None:
    """Refuse recordings whose last two axes are not Y and X (InputError).

    The filters work on (Y, X) planes streamed along the first axis; a colour image (``YXC``)
    or axes given in another order (``YXT``) would be cut into the wrong planes.
    """
    if not movie.axes.endswith("YX"):
        hint = "; a colour image needs one channel picked first" if "C" in movie.axes else ""
        raise InputError(
            f"axes {movie.axes!r}: the last two axes must be Y and X (e.g. TYX, ZYX, TZYX){hint}",
            movie.source,
        )


def as_stack(data: Any, axes: str) -> tuple[Movie, bool]:
    """Wrap data as a ``(N, Y, X)`` movie; a 2D image becomes a stack of one."""
    if isinstance(data, Movie):
        movie = data
    else:
        arr = data if hasattr(data, "shape") else np.asarray(data)
        if len(arr.shape) == 2:
            return Movie(np.asarray(arr)[None], axes="TYX"), True
        movie = as_movie(arr, axes)
    if movie.ndim == 2:
        return Movie(movie[...][None], axes="T" + movie.axes), True
    if movie.ndim != 3 or movie.axes[1:] != "YX" or movie.axes[0] not in "TZ":
        raise InputError(
            f"deep denoising needs a (T|Z, Y, X) recording, got axes {movie.axes!r}", movie.source
        )
    return movie, False


class Finite:
    """A recording read along its first axis, refusing NaN or infinite values (InputError).

    Blocks are checked as they are read (in the reader thread when streaming), so a bad plane
    stops the prediction before its block is written, and the file is never read twice.
    """

    def __init__(self, movie: Movie) -> None:
        self.movie, self.shape, self.dtype = movie, movie.shape, movie.dtype

    def __getitem__(self, key: Any) -> NDArray[Any]:
        block = np.asarray(self.movie[key])
        if isinstance(key, slice):  # planes along the first axis: name the bad ones
            start = key.indices(self.shape[0])[0]
            check_finite(block, path=self.movie.source, axis=self.movie.axes[0], start=start)
        else:
            check_finite(block, path=self.movie.source)
        return block


def check_all_finite(movie: Movie, block: int = 64) -> None:
    """Read a floating-point recording once, refusing NaN or infinite values (InputError)."""
    if not np.issubdtype(movie.dtype, np.floating):
        return
    data = Finite(movie)
    for start in range(0, movie.shape[0], block):
        data[start : start + block]
