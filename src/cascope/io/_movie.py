"""The lazy recording object every reader returns and every stage accepts."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from cascope.errors import InputError

#: Axis letters cascope knows: time, channel, depth, rows, columns.
KNOWN_AXES = "TCZYX"

#: What a command expects, used only for a file that does not record its axes.
RecordingKind = Literal["movie", "volume"]

#: Letters of the dimensions before Y and X that a file does not name, by kind and count.
_UNNAMED: dict[str, tuple[str, ...]] = {"movie": ("T", "TZ", "TZC"), "volume": ("Z", "CZ", "TCZ")}


def unnamed_axes(count: int, kind: RecordingKind | None) -> str:
    """Letters for ``count`` leading dimensions that a file does not name.

    A movie command reads a plain 3-D stack as ``TYX``, a volume command as ``ZYX``; a command
    that takes either (``kind=None``) reads it as a movie.

    Parameters
    ----------
    count : int
        Unnamed dimensions besides Y and X (0 to 3).
    kind : {"movie", "volume"} or None
        What the command expects.

    Returns
    -------
    str
        ``count`` letters, e.g. ``"Z"`` for one dimension of a volume.

    Examples
    --------
    >>> unnamed_axes(1, "volume"), unnamed_axes(2, "movie")
    ('Z', 'TZ')
    """
    if count == 0:
        return ""
    if not 0 < count <= 3:
        raise InputError(f"{count + 2} dimensions without axes cannot be named; give --axes")
    return _UNNAMED[kind or "movie"][count - 1]


def describe_assumed(axes: str, kind: RecordingKind | None) -> str:
    """Say in one sentence which axes were assumed for a file that does not record them."""
    spelled = ", ".join(axes)
    if kind == "volume":
        why = "this command takes a volume"
    elif kind == "movie":
        why = "this command takes a movie"
    elif axes == "TYX":
        why = "a guess: give --axes ZYX if it is a volume"
    else:
        why = "a guess"
    return f"the file does not record its axes; read as {spelled} ({why}; --axes overrides)"


def validate_axes(axes: str, ndim: int, *, path: str | Path | None = None) -> str:
    """Check an axes string against an array's dimensionality and return it upper-cased.

    Parameters
    ----------
    axes : str
        One letter per dimension out of ``"TCZYX"``, e.g. ``"TYX"`` or ``"TZYXC"``.
    ndim : int
        Number of dimensions of the array the axes describe.
    path : str or Path, optional
        The file the array came from, named in the error.

    Returns
    -------
    str
        The axes, upper-case.

    Raises
    ------
    InputError
        When a letter is unknown or repeated, or the length does not match ``ndim``.

    Examples
    --------
    >>> validate_axes("tyx", 3)
    'TYX'
    """
    up = axes.upper()
    unknown = sorted(set(up) - set(KNOWN_AXES))
    if unknown:
        raise InputError(f"axes {axes!r} has unknown letter(s) {unknown}; use {KNOWN_AXES!r}", path)
    if len(set(up)) != len(up):
        raise InputError(f"axes {axes!r} repeats a letter", path)
    if len(up) != ndim:
        raise InputError(f"axes {axes!r} name {len(up)} dimensions but the data has {ndim}", path)
    if "Y" not in up or "X" not in up:
        raise InputError(f"axes {axes!r} must contain Y and X", path)
    return up


@dataclass
class Movie:
    """A recording with named axes and physical metadata, read lazily.

    ``data`` is anything array-like that supports ``shape``, ``dtype`` and slicing: a NumPy
    memmap, a zarr array, a dask array or an in-memory array. Indexing a ``Movie`` reads only the
    requested part and returns a NumPy array.

    Parameters
    ----------
    data : array-like
        The pixels, in the order given by ``axes``.
    axes : str
        One letter per dimension out of ``"TCZYX"``.
    voxel_size : dict of str to float, optional
        Physical pixel size per spatial axis in micrometres,
        e.g. ``{"Z": 1.0, "Y": 0.3, "X": 0.3}``.
    frame_rate : float, optional
        Frames per second along ``T``.
    source : Path, optional
        The file (or folder) the data was read from.
    metadata : dict
        Anything else the reader found (channel names, original bit depth, ...).

    Examples
    --------
    >>> import numpy as np
    >>> m = Movie(np.zeros((4, 8, 8), np.uint16), axes="TYX", frame_rate=30.0)
    >>> m.shape, m.n_frames
    ((4, 8, 8), 4)
    """

    data: Any
    axes: str
    voxel_size: dict[str, float] | None = None
    frame_rate: float | None = None
    source: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.axes = validate_axes(self.axes, len(self.data.shape), path=self.source)
        kind = np.dtype(getattr(self.data, "dtype", np.float64)).kind
        if kind not in "biuf":  # complex, text, objects: no intensities to work on
            raise InputError(
                f"holds {np.dtype(self.data.dtype)} values, not intensities (integers or "
                "floats); convert it first, e.g. to the magnitude of complex values",
                self.source,
            )

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the data, in ``axes`` order."""
        return tuple(int(s) for s in self.data.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        """Data type of the stored pixels."""
        return np.dtype(self.data.dtype)

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        """Size of the whole recording in bytes, were it read into memory."""
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def n_frames(self) -> int:
        """Length of the time axis (1 when there is none)."""
        return self.shape[self.axes.index("T")] if "T" in self.axes else 1

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> NDArray[Any]:
        return np.asarray(self.data[key])

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> NDArray[Any]:
        arr = np.asarray(self.data[...])
        return arr.astype(dtype) if dtype is not None else arr

    def to_numpy(self, dtype: Any = None) -> NDArray[Any]:
        """Read the whole recording into memory.

        Parameters
        ----------
        dtype : dtype, optional
            Convert to this type.

        Returns
        -------
        ndarray
            The pixels.
        """
        return self.__array__(dtype)

    def axis(self, letter: str) -> int:
        """Index of an axis letter, raising a clear error when it is missing."""
        if letter.upper() not in self.axes:
            raise InputError(f"the data has no {letter!r} axis (axes {self.axes!r})", self.source)
        return self.axes.index(letter.upper())

    def iter_blocks(
        self, size: int, *, axis: str = "T", halo: int = 0
    ) -> Iterator[tuple[slice, slice, NDArray[Any]]]:
        """Read the recording in blocks along one axis, each with a halo of context.

        Parameters
        ----------
        size : int
            Number of planes each block owns.
        axis : str
            The axis to block along (default time).
        halo : int
            Extra planes read on each side (clipped at the ends) so filters see context.

        Yields
        ------
        owned : slice
            The planes of the full recording this block is responsible for.
        inner : slice
            Where those planes sit inside ``block`` (to cut the halo off again).
        block : ndarray
            The planes ``owned`` extended by the halo, read from disk.
        """
        if size < 1:
            raise ValueError("block size must be at least 1")
        ax = self.axis(axis)
        n = self.shape[ax]
        for start in range(0, n, size):
            stop = min(start + size, n)
            lo, hi = max(0, start - halo), min(n, stop + halo)
            index: list[Any] = [slice(None)] * self.ndim
            index[ax] = slice(lo, hi)
            inner = slice(start - lo, stop - lo)
            yield slice(start, stop), inner, self[tuple(index)]

    def with_data(self, data: Any, axes: str | None = None) -> Movie:
        """Return a new ``Movie`` with other pixels but the same metadata."""
        return Movie(
            data,
            axes=axes or self.axes,
            voxel_size=self.voxel_size,
            frame_rate=self.frame_rate,
            source=self.source,
            metadata=dict(self.metadata),
        )

    def __repr__(self) -> str:
        extra = f", frame_rate={self.frame_rate}" if self.frame_rate else ""
        vs = f", voxel_size={self.voxel_size}" if self.voxel_size else ""
        return f"Movie(shape={self.shape}, dtype={self.dtype}, axes={self.axes!r}{vs}{extra})"


#: A volume is a recording whose axes are ``ZYX`` (or ``CZYX``); the same object serves both.
Volume = Movie


def as_movie(data: Any, axes: str | None = None) -> Movie:
    """Wrap an array in a :class:`Movie`, or return a ``Movie`` unchanged.

    Parameters
    ----------
    data : Movie or array-like
        The recording.
    axes : str, optional
        Required when ``data`` is a bare array.

    Returns
    -------
    Movie
    """
    if isinstance(data, Movie):
        if axes is not None and validate_axes(axes, data.ndim) != data.axes:
            raise InputError(f"expected axes {axes!r} but the recording has {data.axes!r}")
        return data
    if axes is None:
        raise InputError("a bare array needs an explicit axes string, e.g. 'TYX'")
    return Movie(data, axes=axes)


def check_finite(
    block: NDArray[Any],
    *,
    path: str | Path | None = None,
    where: str = "",
    axis: str | None = None,
    start: int = 0,
) -> None:
    """Raise :class:`InputError` when a block holds NaN or infinite values.

    Parameters
    ----------
    block : ndarray
        Planes read from a recording (integer blocks always pass).
    path : str or Path, optional
        The recording, for the message.
    where : str
        Text appended to the message, e.g. ``" in T 0..63"``.
    axis : str, optional
        Letter of the block's first axis: the message then names the planes that hold the
        values (``start`` is the index of the block's first plane in the recording).
    start : int
        See ``axis``.
    """
    if not np.issubdtype(block.dtype, np.floating):
        return
    finite = np.isfinite(block)
    if finite.all():
        return
    n = int(finite.size - np.count_nonzero(finite))
    if axis is not None and block.ndim > 0:
        bad = np.flatnonzero(~finite.reshape(block.shape[0], -1).all(axis=1)) + start
        where = f" in {axis} {_plane_ranges(bad)}"
    raise InputError(f"contains {n} NaN/infinite value(s){where}", path)


def _plane_ranges(planes: NDArray[Any], most: int = 4) -> str:
    """``[3, 4, 5, 9]`` -> ``"3..5, 9"`` (at most ``most`` ranges, then how many more)."""
    runs: list[list[int]] = []
    for i in planes.tolist():
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    text = ", ".join(f"{a}" if a == b else f"{a}..{b}" for a, b in runs[:most])
    return text + (f" and {len(runs) - most} more ranges" if len(runs) > most else "")
