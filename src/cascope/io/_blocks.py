"""What every format writer shares: the recording it writes, and the conversion of each block.

A format writer (TIFF, HDF5, Zarr) creates its file or store at once, then stores blocks of
planes along the first axis in any order. The description of the recording and the conversion
of a block to the stored type live here, once; each format only creates its file
(``_create``) and puts converted blocks in it (``_store``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray


def cast_block(block: Any, dtype: np.dtype[Any]) -> NDArray[Any]:
    """Convert a block to the output type, rounding and clipping floats written as integers."""
    arr = np.asarray(block)
    if arr.dtype == dtype:
        return arr
    if dtype.kind in "ui" and arr.dtype.kind not in "b":
        info = np.iinfo(dtype)
        if arr.dtype.kind == "f":
            arr = np.rint(arr)
        lo = max(info.min, np.finfo(np.float64).min) if arr.dtype.kind == "f" else info.min
        return np.clip(arr, lo, info.max).astype(dtype)
    return arr.astype(dtype)


class FormatWriter:
    """Write one recording block by block along its first axis, in any order.

    Parameters
    ----------
    path : Path
        The file or store to create (a temporary name; renaming is the caller's job).
    shape : tuple of int
        Shape of the whole recording.
    dtype : dtype
        Stored type; blocks are converted to it (floats rounded and clipped for integer types).
    axes : str
        Axes of the recording.
    voxel_size, frame_rate
        Physical metadata stored with it.
    **options
        The format's own options (see each format's writer).
    """

    #: Create the file or store from the attributes and the format's options.
    _create: Callable[..., None]

    def __init__(
        self,
        path: str | Path,
        shape: tuple[int, ...],
        dtype: Any,
        *,
        axes: str,
        voxel_size: dict[str, float] | None = None,
        frame_rate: float | None = None,
        **options: Any,
    ) -> None:
        self.path = Path(path)
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.axes = axes
        self.voxel_size = voxel_size
        self.frame_rate = frame_rate
        #: The type blocks are converted to (the format may fix its byte order).
        self.stored = self.dtype
        self._create(**options)

    def write(self, block: NDArray[Any], start: int) -> None:
        """Store ``block`` at index ``start`` of the first axis."""
        self._store(cast_block(block, self.stored), start)

    def _store(self, block: NDArray[Any], start: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the output (nothing to do for formats whose writes are already stored)."""
