"""``read``, ``write`` and ``open_writer``: one entry point for every format, chosen by the name."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from cascope.errors import CascopeError, InputError, OutputError
from cascope.io._atomic import atomic_output, check_output
from cascope.io._blocks import FormatWriter
from cascope.io._formats import Format, detect_format
from cascope.io._limits import check_present
from cascope.io._movie import Movie, RecordingKind, describe_assumed, validate_axes

log = logging.getLogger(__name__)

#: Bytes per block when a whole recording is copied into a writer.
_COPY_BLOCK_BYTES = 64 * 2**20


#: Missing chunks accepted by :func:`missing_chunks_default` (None: not set).
_MISSING_CHUNKS: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "missing_chunks", default=None
)


@contextlib.contextmanager
def missing_chunks_default(policy: str) -> Iterator[None]:
    """Within the block, :func:`read` treats missing chunks by ``policy`` unless told otherwise.

    Parameters
    ----------
    policy : {"error", "fill"}
        See ``missing_chunks`` of :func:`read` (the CLI's ``--missing-chunks``).
    """
    if policy not in ("error", "fill"):
        raise InputError(f"--missing-chunks must be 'error' or 'fill', not {policy!r}")
    token = _MISSING_CHUNKS.set(policy)
    try:
        yield
    finally:
        _MISSING_CHUNKS.reset(token)


def read(
    path: str | Path,
    *,
    axes: str | None = None,
    dataset: str | None = None,
    series: int | str | None = None,
    channel: int | None = None,
    missing_chunks: Literal["error", "fill"] | None = None,
    kind: RecordingKind | None = None,
) -> Movie:
    """Open a recording lazily, whatever its format.

    Parameters
    ----------
    path : str or Path
        TIFF/OME-TIFF/ImageJ file, HDF5 file, Zarr/OME-Zarr store, Leica LIF file, or a folder or
        glob of one-frame TIFFs.
    axes : str, optional
        Override (or supply, when the file does not say) the axes, e.g. ``"TYX"``.
    dataset : str, optional
        Dataset path inside an HDF5 file or array path inside a Zarr group.
    series : int or str, optional
        Image series of a multi-series TIFF (index) or LIF file (index or name).
    channel : int, optional
        Keep only this channel (the ``C`` axis is removed).
    missing_chunks : {"error", "fill"}, optional
        Zarr chunks or HDF5 data that a file declares but does not hold: an error (the
        default), or read as the fill value. The default comes from
        :func:`missing_chunks_default` (the CLI's ``--missing-chunks``), else from the
        environment variable ``CASCOPE_MISSING_CHUNKS`` when it is set.
    kind : {"movie", "volume"}, optional
        What the caller expects, used only when the file does not record its axes (a plain
        TIFF stack, an HDF5 dataset or Zarr array without axes, a folder of frames): a 3-D
        stack is then read as ``TYX`` for ``"movie"``, ``ZYX`` for ``"volume"``, and ``TYX``
        when ``None`` (a command that takes either). The assumption is logged as a warning and
        ``metadata["axes_assumed"]`` is True; ``axes`` always wins.

    Returns
    -------
    Movie
        Nothing is read into memory until indexed. The dtype is the stored one, except for
        ImageJ files with a linear calibration (e.g. ``c0=-32768`` for signed data stored as
        ``uint16``): their values come out calibrated, as ``int32`` for integer coefficients
        (``float32`` otherwise), and ``metadata["calibration"]`` records both types. NaN frames
        are not searched for here (that would read everything); check each block with
        :func:`~cascope.io.check_finite` while processing.

    Raises
    ------
    InputError
        The file is missing, empty, truncated, of an unknown type, has a zero-length axis, or
        ``axes`` does not fit it; it is a symlink loop or a FIFO; it declares more data than it
        holds (missing chunks) or a page or chunk too big to decode in the memory available.
        The message names the file and the problem.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "movie.tif"
    >>> _ = write(p, np.zeros((3, 8, 8), np.uint16), axes="TYX", frame_rate=10.0)
    >>> m = read(p)
    >>> m.axes, m.shape, m.frame_rate
    ('TYX', (3, 8, 8), 10.0)
    """
    p = Path(path)
    fmt = detect_format(p)
    if fmt != "tiff-sequence":
        check_present(p)
    if dataset is not None and fmt not in ("hdf5", "zarr"):
        raise InputError(f"--dataset {dataset} is for HDF5 and Zarr files only", p)
    if axes is not None:
        bad = sorted(set(axes.upper()) - set("TCZYX"))
        if bad or len(set(axes.upper())) != len(axes):
            raise InputError(f"axes {axes!r} is not a valid axes string (letters TCZYX, once)", p)
    missing = (
        missing_chunks
        or _MISSING_CHUNKS.get()
        or os.environ.get("CASCOPE_MISSING_CHUNKS")
        or "error"
    )
    if missing not in ("error", "fill"):
        raise InputError(f"--missing-chunks must be 'error' or 'fill', not {missing!r}", p)
    try:
        movie = _read(
            fmt, p, axes=axes, dataset=dataset, series=series, missing=missing, kind=kind
        )
    except CascopeError:
        raise
    except (OSError, ValueError, IndexError, KeyError, RuntimeError, EOFError, TypeError) as err:
        detail = " ".join(str(err).split()) or type(err).__name__
        raise InputError(f"cannot be read as {fmt}: {detail}", p) from err
    if channel is not None:
        movie = select_channel(movie, channel)
    empty = [a for a, n in zip(movie.axes, movie.shape, strict=True) if n == 0]
    if empty:
        raise InputError(f"the {empty[0]} axis has length 0 (shape {movie.shape})", p)
    if movie.metadata.get("axes_assumed") and movie.ndim > 2 and (str(p), movie.axes) not in _SAID:
        _SAID.add((str(p), movie.axes))  # a pipeline reads a file several times: say it once
        log.warning("%s: %s", p, describe_assumed(movie.axes, kind))
    return movie


#: The (file, assumed axes) pairs already reported in this process.
_SAID: set[tuple[str, str]] = set()


def _read(
    fmt: Format,
    p: Path,
    *,
    axes: str | None,
    dataset: str | None,
    series: int | str | None,
    missing: str = "error",
    kind: RecordingKind | None = None,
) -> Movie:
    if fmt == "tiff":
        from cascope.io.tiff import read_tiff

        if series is not None and not isinstance(series, int):
            raise InputError(f"series must be an index for a TIFF, got {series!r}", p)
        return read_tiff(p, axes=axes, series=series, kind=kind)
    if fmt == "tiff-sequence":
        from cascope.io.tiff import read_tiff_sequence

        return read_tiff_sequence(p, axes=axes, kind=kind)
    if fmt == "hdf5":
        from cascope.io.hdf5 import read_hdf5

        return read_hdf5(p, dataset=dataset, axes=axes, missing_chunks=missing, kind=kind)
    if fmt == "zarr":
        from cascope.io.zarr import read_zarr

        return read_zarr(p, dataset=dataset, axes=axes, missing_chunks=missing, kind=kind)
    from cascope.io.lif import read_lif

    return read_lif(p, series=series, axes=axes)


def select_channel(movie: Movie, channel: int) -> Movie:
    """Keep one channel of a recording, lazily (the ``C`` axis is removed)."""
    from cascope.io._lazy import Indexed

    c = movie.axis("C")
    n = movie.shape[c]
    if not -n <= channel < n:
        raise InputError(f"channel {channel} does not exist ({n} channel(s))", movie.source)
    index = tuple(channel if i == c else slice(None) for i in range(movie.ndim))
    data = movie.data[index] if isinstance(movie.data, np.ndarray) else Indexed(movie.data, index)
    out = movie.with_data(data, axes=movie.axes.replace("C", ""))
    out.metadata["channel"] = channel
    return out


class BlockWriter(FormatWriter):
    """Atomic streaming writer: blocks along the first axis go to a temporary file or store.

    Use it as a context manager. On a clean exit the output is complete and renamed into place;
    on an exception (or when some frames were never written) it is deleted and nothing is left.

    Parameters
    ----------
    path : str or Path
        The output (suffix picks the format: TIFF, HDF5 or Zarr).
    shape : tuple of int
        Shape of the whole result.
    dtype : dtype
        Stored type; blocks are converted to it (floats rounded and clipped for integer types).
    axes : str
        Axes of the result.
    voxel_size, frame_rate
        Physical metadata stored with the result.
    force : bool
        Replace an existing output.
    inputs : iterable of paths
        Files the output must never replace.
    **fmt
        Format options: ``ome`` (TIFF), ``dataset``/``compression``/``chunks`` (HDF5),
        ``chunks``/``ngff_version`` (Zarr).

    Notes
    -----
    Peak memory is one block: a result never has to fit in memory. :func:`open_writer` is
    this class; call ``.write(block, start)`` for every block along the first axis.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "out.tif"
    >>> with open_writer(p, (4, 8, 8), np.float32, axes="TYX") as w:
    ...     w.write(np.ones((2, 8, 8)), 0)
    ...     w.write(np.zeros((2, 8, 8)), 2)
    >>> float(read(p)[...].sum())
    128.0
    """

    def _create(
        self, *, force: bool = False, inputs: Iterable[str | Path] = (), **fmt: Any
    ) -> None:
        self.format = detect_format(self.path, for_writing=True)
        self.axes = validate_axes(self.axes, len(self.shape), path=self.path)
        self.voxel_size = dict(self.voxel_size) if self.voxel_size else None
        self._force = force
        self._inputs = list(inputs)
        self._fmt = fmt
        self._written = np.zeros(self.shape[0] if self.shape else 0, dtype=bool)
        self._stack: contextlib.ExitStack | None = None
        self._impl: FormatWriter | None = None
        check_output(self.path, inputs=self._inputs, force=force)

    def __enter__(self) -> BlockWriter:
        stack = contextlib.ExitStack()
        tmp = stack.enter_context(atomic_output(self.path, inputs=self._inputs, force=self._force))
        try:
            self._impl = self._open(tmp)
        except BaseException as err:
            stack.__exit__(type(err), err, err.__traceback__)
            raise
        self._stack = stack
        return self

    def _open(self, tmp: Path) -> FormatWriter:
        fmt = dict(self._fmt)
        writer: type[FormatWriter]
        if self.format == "tiff":
            from cascope.io.tiff import TiffBlockWriter as writer

            if self.path.name.lower().endswith((".ome.tif", ".ome.tiff")):
                fmt["ome"] = True
        elif self.format == "hdf5":
            from cascope.io.hdf5 import Hdf5BlockWriter as writer
        else:
            from cascope.io.zarr import ZarrBlockWriter as writer
        return writer(
            tmp,
            self.shape,
            self.dtype,
            axes=self.axes,
            voxel_size=self.voxel_size,
            frame_rate=self.frame_rate,
            **fmt,
        )

    def write(self, block: NDArray[Any] | Any, start: int) -> None:
        """Store ``block`` at index ``start`` of the first axis.

        Parameters
        ----------
        block : array-like
            Planes ``start .. start + len(block)``; the other dimensions match ``shape[1:]``.
        start : int
            Index of the block's first plane in the whole result.
        """
        if self._impl is None:
            raise OutputError(f"{self.path}: use the writer inside a `with` block")
        block = np.asarray(block)
        if block.shape[1:] != self.shape[1:] or block.ndim != len(self.shape):
            raise ValueError(
                f"block of shape {block.shape} does not fit a result of shape {self.shape}"
            )
        stop = start + block.shape[0]
        if start < 0 or stop > self.shape[0]:
            raise ValueError(f"block {start}:{stop} lies outside 0:{self.shape[0]}")
        super().write(block, start)
        self._written[start:stop] = True

    def _store(self, block: NDArray[Any], start: int) -> None:
        if self._impl is not None:  # always so: checked in write
            self._impl.write(block, start)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        impl, self._impl = self._impl, None
        if stack is None or impl is None:
            return
        try:
            impl.close()
            if exc is None and not self._written.all():
                missing = int((~self._written).sum())
                raise OutputError(
                    f"{self.path}: {missing} of {self.shape[0]} planes were never written; "
                    "the incomplete output was removed"
                )
        except BaseException as err:
            if exc is None:
                stack.__exit__(type(err), err, err.__traceback__)
                raise
        stack.__exit__(exc_type, exc, tb)


#: Open an atomic streaming writer (TIFF, HDF5 or Zarr by suffix): :class:`BlockWriter` itself.
open_writer = BlockWriter


def open_writer_like(
    path: str | Path,
    movie: Movie,
    dtype: Any = None,
    *,
    force: bool = False,
    inputs: Iterable[str | Path] = (),
    **fmt: Any,
) -> BlockWriter:
    """Open a streaming writer for a result shaped like ``movie``, with its axes and metadata.

    The movie's own file is never replaced, whatever ``force`` says.

    Parameters
    ----------
    path : str or Path
        The output; the format follows the suffix.
    movie : Movie
        Gives the shape, axes, voxel size and frame rate (and its source is protected).
    dtype : optional
        Output type (default: the movie's).
    force, inputs, **fmt
        As in :class:`BlockWriter`.

    Returns
    -------
    BlockWriter

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> m = Movie(np.zeros((4, 8, 8), np.uint16), axes="TYX", frame_rate=10.0)
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "out.tif"
    >>> with open_writer_like(p, m, np.float32) as w:
    ...     w.write(np.ones((4, 8, 8)), 0)
    >>> read(p).frame_rate, str(read(p).dtype)
    (10.0, 'float32')
    """
    protected = list(inputs)
    if movie.source is not None:
        protected.append(movie.source)
    return BlockWriter(
        path,
        movie.shape,
        movie.dtype if dtype is None else dtype,
        axes=movie.axes,
        voxel_size=movie.voxel_size,
        frame_rate=movie.frame_rate,
        force=force,
        inputs=protected,
        **fmt,
    )


def write(
    path: str | Path,
    data: Movie | Any,
    *,
    axes: str | None = None,
    voxel_size: dict[str, float] | None = None,
    frame_rate: float | None = None,
    force: bool = False,
    inputs: Iterable[str | Path] = (),
    **fmt: Any,
) -> Path:
    """Write a recording atomically; the format follows the suffix (.tif, .h5, .zarr, ...).

    A lazy :class:`Movie` is copied block by block, so it is never read whole.

    Parameters
    ----------
    path : str or Path
        The output. ``.ome.tif`` forces OME-TIFF; ``.tif`` gives an ImageJ hyperstack when ImageJ
        can read it (else OME, BigTIFF above 4 GB); ``.zarr`` gives OME-Zarr.
    data : Movie or array-like
        The pixels. A ``Movie`` brings its own axes and metadata (explicit arguments win).
    axes : str
        Axes of ``data``; required for a bare array.
    voxel_size : dict, optional
        Micrometres per spatial axis, e.g. ``{"Y": 0.3, "X": 0.3}``.
    frame_rate : float, optional
        Frames per second.
    force : bool
        Replace an existing output (never an input).
    inputs : iterable of paths
        Files this output must never replace (in addition to a ``Movie``'s own source).
    **fmt
        Format options, see :class:`BlockWriter`.

    Returns
    -------
    Path
        The written output.
    """
    if isinstance(data, Movie):
        if axes is not None and validate_axes(axes, data.ndim) != data.axes:
            raise InputError(f"axes {axes!r} differ from the recording's axes {data.axes!r}")
        movie = data
    else:
        if axes is None:
            raise InputError("writing a bare array needs an explicit axes string, e.g. 'TYX'")
        movie = Movie(data if hasattr(data, "shape") else np.asarray(data), axes=axes)
    if voxel_size is not None:  # explicit arguments win over the movie's own metadata
        movie = dataclasses.replace(movie, voxel_size=voxel_size)
    if frame_rate is not None:
        movie = dataclasses.replace(movie, frame_rate=frame_rate)
    if movie.ndim == 0 or movie.shape[0] == 0:
        raise InputError(f"nothing to write: shape {movie.shape}", path)
    frame_bytes = max(1, movie.nbytes // movie.shape[0])
    step = max(1, _COPY_BLOCK_BYTES // frame_bytes)
    with open_writer_like(path, movie, force=force, inputs=inputs, **fmt) as writer:
        for start in range(0, movie.shape[0], step):
            writer.write(movie[start : start + step], start)
    return Path(path)
