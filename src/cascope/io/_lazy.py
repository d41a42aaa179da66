"""Small lazy array views: each reads only the part that is indexed, returning NumPy arrays."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray


def normalize_key(key: Any, ndim: int) -> tuple[Any, ...]:
    """Expand an index into one entry per dimension (``Ellipsis`` and missing ones become ``:``).

    Parameters
    ----------
    key : index
        Anything NumPy accepts for basic indexing (ints, slices, ``...``), or a tuple of them.
    ndim : int
        Number of dimensions of the indexed array.

    Returns
    -------
    tuple
        Exactly ``ndim`` entries.
    """
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is None for k in key):
        raise IndexError("new axes (None) are not supported on lazy arrays")
    n_ell = sum(k is Ellipsis for k in key)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis")
    if n_ell:
        i = next(j for j, k in enumerate(key) if k is Ellipsis)
        fill = (slice(None),) * (ndim - len(key) + 1)
        key = key[:i] + fill + key[i + 1 :]
    if len(key) > ndim:
        raise IndexError(f"too many indices: {len(key)} for {ndim} dimension(s)")
    return key + (slice(None),) * (ndim - len(key))


class LazyArray:
    """Base of the lazy views: ``shape``, ``dtype``, slicing and ``__array__``."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> NDArray[Any]:
        raise NotImplementedError

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> NDArray[Any]:
        arr = self[...]
        return arr.astype(dtype) if dtype is not None else arr

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape}, dtype={self.dtype})"


class Calibrated(LazyArray):
    """Apply a linear calibration ``offset + scale * raw`` to each slice read from ``base``.

    Parameters
    ----------
    base : array-like
        The stored values (memmap, zarr, ...).
    offset, scale : float
        The calibration function's coefficients.
    dtype : dtype
        The type the calibrated values are returned in (wide enough to hold them).
    """

    def __init__(self, base: Any, *, offset: float, scale: float, dtype: Any) -> None:
        self.base = base
        self.offset = offset
        self.scale = scale
        self.shape = tuple(int(s) for s in base.shape)
        self.dtype = np.dtype(dtype)

    def __getitem__(self, key: Any) -> NDArray[Any]:
        raw = np.asarray(self.base[key])
        out = raw.astype(self.dtype)
        if self.scale != 1:
            out *= self.dtype.type(self.scale)
        out += self.dtype.type(self.offset)
        return out


class FrameSequence(LazyArray):
    """One file per frame, stacked along a new first axis and read only when indexed.

    Parameters
    ----------
    files : sequence of str or Path
        The frame files, in order.
    frame_shape : tuple of int
        Shape of every frame.
    dtype : dtype
        Type of every frame.
    read_frame : callable
        ``read_frame(file) -> ndarray`` reading one frame.
    """

    def __init__(
        self,
        files: Sequence[Any],
        frame_shape: tuple[int, ...],
        dtype: Any,
        read_frame: Callable[[Any], NDArray[Any]],
    ) -> None:
        self.files = list(files)
        self.shape = (len(self.files), *frame_shape)
        self.dtype = np.dtype(dtype)
        self._read = read_frame

    def __getitem__(self, key: Any) -> NDArray[Any]:
        key = normalize_key(key, self.ndim)
        first, rest = key[0], key[1:]
        picks = np.arange(self.shape[0])[first]
        frames = [self._frame(int(i))[rest] for i in np.atleast_1d(picks)]
        if np.ndim(picks) == 0:
            return frames[0]
        if not frames:
            probe = np.empty(self.shape[1:], self.dtype)[rest]
            return np.empty((0, *probe.shape), self.dtype)
        return np.stack(frames)

    def _frame(self, i: int) -> NDArray[Any]:
        frame = np.asarray(self._read(self.files[i]))
        if frame.shape != self.shape[1:] or frame.dtype != self.dtype:
            from cascope.errors import InputError

            raise InputError(
                f"frame has shape {frame.shape} {frame.dtype}, the first frame "
                f"{self.shape[1:]} {self.dtype}; all frames must match",
                self.files[i],
            )
        return frame


class Indexed(LazyArray):
    """A fixed basic index (ints and slices) applied lazily to ``base``, e.g. to drop singletons.

    Parameters
    ----------
    base : array-like
        The underlying array.
    index : tuple
        One int or slice per dimension of ``base``; int entries remove that dimension.
    """

    def __init__(self, base: Any, index: tuple[Any, ...]) -> None:
        self.base = base
        self.index = normalize_key(index, len(base.shape))
        self._ranges = [range(int(n))[k] for n, k in zip(base.shape, self.index, strict=True)]
        self.shape = tuple(len(r) for r in self._ranges if isinstance(r, range))
        self.dtype = np.dtype(base.dtype)

    def __getitem__(self, key: Any) -> NDArray[Any]:
        key = normalize_key(key, self.ndim)
        composed: list[Any] = []
        inner = iter(key)
        for r in self._ranges:
            if not isinstance(r, range):
                composed.append(r)
                continue
            k = next(inner)
            if isinstance(k, slice):
                sub = r[k]
                step = sub.step
                stop: int | None = sub.stop
                if step < 0 and stop is not None and stop < 0:
                    stop = None
                composed.append(slice(sub.start, stop, step) if len(sub) else slice(0, 0))
            else:
                composed.append(r[int(k)])
        return np.asarray(self.base[tuple(composed)])


class MappedFile(LazyArray):
    """Raw pixels at a fixed offset in a file, mapped only for the duration of each read.

    A plain ``np.memmap`` over a whole recording keeps every page it has touched mapped, so a
    pass over a 4 GB movie ends with 4 GB of resident memory. Here each read maps at most
    ``chunk_bytes`` of frames at a time, copies the requested part out and unmaps it, so memory
    stays at the size of what was asked for.

    Parameters
    ----------
    path : str or Path
        The file.
    offset : int
        Byte offset of the first pixel.
    shape : tuple of int
        Shape of the contiguous pixel block (C order).
    dtype : dtype
        Stored type, with its byte order.
    chunk_bytes : int
        Largest span mapped at once.
    """

    def __init__(
        self,
        path: Any,
        offset: int,
        shape: tuple[int, ...],
        dtype: Any,
        *,
        chunk_bytes: int = 64 * 2**20,
    ) -> None:
        self.path = path
        self.offset = int(offset)
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self._frame_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self._chunk = max(1, chunk_bytes // max(self._frame_bytes, 1))

    def memmap(self) -> np.memmap[Any, Any]:
        """Return a read-only memory map of the whole array (pages stay resident once read)."""
        return np.memmap(
            self.path, dtype=self.dtype, mode="r", offset=self.offset, shape=self.shape
        )

    def _map(self, lo: int, hi: int) -> np.memmap[Any, Any]:
        return np.memmap(
            self.path,
            dtype=self.dtype,
            mode="r",
            offset=self.offset + lo * self._frame_bytes,
            shape=(hi - lo, *self.shape[1:]),
        )

    def __getitem__(self, key: Any) -> NDArray[Any]:
        key = normalize_key(key, self.ndim)
        first, rest = key[0], key[1:]
        picks = np.arange(self.shape[0])[first]
        if np.ndim(picks) == 0:
            i = int(picks)
            return np.array(self._map(i, i + 1)[0][rest])
        parts: list[NDArray[Any]] = []
        for g in range(0, len(picks), self._chunk):
            sel = picks[g : g + self._chunk]
            lo, hi = int(sel.min()), int(sel.max()) + 1
            if hi - lo > 4 * self._chunk:  # scattered picks: map frame by frame
                parts.extend(np.array(self._map(int(i), int(i) + 1)[(0, *rest)])[None] for i in sel)
                continue
            parts.append(np.array(self._map(lo, hi)[(sel - lo, *rest)]))
        if not parts:
            return np.empty((0, *np.empty(self.shape[1:], self.dtype)[rest].shape), self.dtype)
        return np.concatenate(parts)
