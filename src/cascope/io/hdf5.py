"""HDF5 recordings: lazy reading of one dataset (kept open) and chunked block writing.

Axes come from an ``axes`` attribute, HDF5 dimension labels, or the caller; the voxel size from
``element_size_um`` (the convention of ImageJ's HDF5 plugin and SIMA), listed for the spatial
axes in ``Z, Y, X`` order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cascope.errors import InputError
from cascope.io._blocks import FormatWriter
from cascope.io._limits import check_decoded_size, expected_chunks, human, missing_hint
from cascope.io._movie import Movie, RecordingKind, unnamed_axes


def list_datasets(group: Any) -> list[str]:
    """List the paths of every dataset in an open HDF5 file or group."""
    import h5py

    names: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            names.append(name)

    group.visititems(visit)
    return names


def open_hdf5_input(path: Path) -> Any:
    """Open an HDF5 file for reading; a file h5py cannot open is an :class:`InputError`.

    Returns
    -------
    h5py.File
        Open read-only; the caller closes it.
    """
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise InputError(
            f"is not a readable HDF5 file ({' '.join(str(err).split())})", path
        ) from err


def _axes_from_attrs(ds: Any) -> str | None:
    for key in ("axes", "dimension_order", "DimensionOrder"):
        if key in ds.attrs:
            value = ds.attrs[key]
            value = value.decode() if isinstance(value, bytes) else str(value)
            return value.upper()
    if "DIMENSION_LABELS" in ds.attrs:
        labels = [
            v.decode() if isinstance(v, bytes) else str(v) for v in ds.attrs["DIMENSION_LABELS"]
        ]
        if all(len(v) == 1 for v in labels):
            return "".join(labels).upper()
    labels = [d.label for d in ds.dims]
    if all(len(v) == 1 for v in labels):
        return "".join(labels).upper()
    return None


def read_hdf5(
    path: str | Path,
    *,
    dataset: str | None = None,
    axes: str | None = None,
    missing_chunks: str = "error",
    kind: RecordingKind | None = None,
) -> Movie:
    """Open one dataset of an HDF5 file lazily.

    Parameters
    ----------
    path : str or Path
        The file.
    dataset : str, optional
        Dataset path inside the file; may be omitted when the file holds exactly one image
        dataset (two or more dimensions).
    axes, missing_chunks, kind
        As in :func:`cascope.io.read`; ``axes`` names the dimensions of a dataset without an
        ``axes`` attribute or dimension labels (or overrides them).

    Returns
    -------
    Movie
        Backed by the open ``h5py.Dataset``: indexing reads only that part from disk.
    """
    path = Path(path)
    f = open_hdf5_input(path)
    try:
        ds, final, file_axes = _pick(f, path, dataset, axes, kind)
        _check_storage(ds, path, missing_chunks)
    except BaseException:
        f.close()
        raise
    vs = None
    if "element_size_um" in ds.attrs:
        sizes = [float(v) for v in np.atleast_1d(ds.attrs["element_size_um"])]
        spatial = [a for a in final if a in "ZYX"]
        if len(sizes) == len(spatial):
            vs = dict(zip(spatial, sizes, strict=True))
    rate = None
    for key in ("frame_rate", "fps", "frame_rate_hz"):
        if key in ds.attrs:
            rate = float(ds.attrs[key])
            break
    meta: dict[str, Any] = {"format": "hdf5", "dataset": ds.name.lstrip("/")}
    if not axes and not file_axes:
        meta["axes_assumed"] = True
    if file_axes and axes and file_axes != final:
        meta["file_axes"] = file_axes
    for key, value in ds.attrs.items():
        if key not in ("DIMENSION_LIST", "REFERENCE_LIST"):
            meta.setdefault("attrs", {})[key] = _plain(value)
    return Movie(ds, axes=final, voxel_size=vs, frame_rate=rate, source=path, metadata=meta)


def _pick(
    f: Any, path: Path, dataset: str | None, axes: str | None, kind: RecordingKind | None = None
) -> tuple[Any, str, str | None]:
    import h5py

    names = list_datasets(f)
    if dataset is None:
        images = [n for n in names if f[n].ndim >= 2]
        if len(images) != 1:
            found = ", ".join(images) or "none"
            raise InputError(f"choose a dataset with --dataset; image datasets: {found}", path)
        dataset = images[0]
    if dataset not in f or not isinstance(f[dataset], h5py.Dataset):
        raise InputError(
            f"has no dataset {dataset!r}; datasets: {', '.join(names) or 'none'}", path
        )
    ds = f[dataset]
    file_axes = _axes_from_attrs(ds)
    final = (axes or file_axes or "").upper()
    if not final:
        if not 2 <= ds.ndim <= 5:
            raise InputError(
                f"dataset {dataset!r} (shape {ds.shape}) has no axes attribute; give --axes", path
            )
        final = unnamed_axes(ds.ndim - 2, kind) + "YX"
    if len(final) != ds.ndim:
        raise InputError(
            f"axes {final!r} name {len(final)} dimensions but dataset {dataset!r} has "
            f"{ds.ndim} (shape {ds.shape})",
            path,
        )
    return ds, final, file_axes


def _check_storage(ds: Any, path: Path, missing: str) -> None:
    """Refuse a dataset that declares more data than the file holds, or a chunk too big."""
    if missing not in ("error", "fill"):
        raise ValueError(f"missing_chunks must be 'error' or 'fill', not {missing!r}")
    name = ds.name.lstrip("/")
    itemsize = np.dtype(ds.dtype).itemsize
    if ds.chunks is not None:
        chunk_bytes = int(np.prod(ds.chunks, dtype=np.int64)) * itemsize
        check_decoded_size(f"dataset {name!r}: a chunk of {ds.chunks}", chunk_bytes, path)
    if missing == "fill" or ds.size == 0 or ds.external or ds.is_virtual:
        return
    hint = missing_hint()
    declared = int(ds.size) * itemsize
    if ds.chunks is not None:
        n = expected_chunks(ds.shape, ds.chunks)
        held = int(ds.id.get_num_chunks())
        if held >= n:
            return
        holds = f"in {n} chunk(s) but the file holds {held}"
    else:
        stored = int(ds.id.get_storage_size())
        if stored >= declared:
            return
        holds = f"but the file holds {human(stored)} of it"
    raise InputError(
        f"dataset {name!r} declares shape {ds.shape} ({human(declared)}) {holds}: "
        f"a damaged or incomplete file; {hint}",
        path,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _attrs(
    axes: str, voxel_size: dict[str, float] | None, frame_rate: float | None
) -> dict[str, Any]:
    attrs: dict[str, Any] = {"axes": axes}
    spatial = [a for a in axes if a in "ZYX"]
    if voxel_size and all(a in voxel_size for a in spatial):
        attrs["element_size_um"] = np.array([voxel_size[a] for a in spatial], dtype=np.float64)
    if frame_rate:
        attrs["frame_rate"] = float(frame_rate)
    return attrs


class GuardedFile:
    """The file an HDF5 output is written through (h5py's file-object driver).

    With HDF5's own driver a write that fails for want of space leaves the library holding a
    half-flushed file that it tries to flush again when the process exits, and the process dies
    of a segmentation fault. Written through this object instead, a failed write is kept in
    :attr:`error` and reported to the library as done, and every later write goes nowhere: the
    library's state stays whole and it closes the file cleanly. The caller checks :attr:`error`
    (:func:`close_hdf5_output` raises it) and deletes the file.

    Parameters
    ----------
    path : Path
        The file to create.
    """

    def __init__(self, path: Path) -> None:
        self._fh = open(path, "w+b", buffering=0)
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        """Write all of ``data`` (nothing once a write has failed); return its length."""
        view = memoryview(data).cast("B")
        done = 0
        while self.error is None and done < len(view):
            try:
                done += self._fh.write(view[done:]) or 0
            except OSError as err:
                self.error = err
        return len(view)

    def readinto(self, buffer: Any) -> int:
        """Read into ``buffer``; return the bytes read."""
        return int(self._fh.readinto(buffer) or 0)

    def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes."""
        return bytes(self._fh.read(size) or b"")

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move the position."""
        return int(self._fh.seek(offset, whence))

    def tell(self) -> int:
        """Return the position."""
        return int(self._fh.tell())

    def truncate(self, size: int | None = None) -> int:
        """Set the file's size (nothing once a write has failed)."""
        if self.error is None:
            try:
                return int(self._fh.truncate(size))
            except OSError as err:
                self.error = err
        return self.tell() if size is None else size

    def flush(self) -> None:
        """Nothing to flush: writes are unbuffered."""

    def check(self) -> None:
        """Raise the first write error, if any."""
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


def open_hdf5_output(path: Path) -> tuple[Any, GuardedFile]:
    """Create an HDF5 file for writing through a :class:`GuardedFile`.

    Returns
    -------
    h5py.File, GuardedFile
        Close both with :func:`close_hdf5_output`.
    """
    import h5py

    sink = GuardedFile(path)
    try:
        return h5py.File(sink, "w"), sink
    except BaseException:
        sink.close()
        raise


def close_hdf5_output(f: Any, sink: GuardedFile, failure: BaseException | None = None) -> None:
    """Close an output of :func:`open_hdf5_output`; raise the disk's write error if there was one.

    Parameters
    ----------
    f : h5py.File
        The open file.
    sink : GuardedFile
        Its file object.
    failure : BaseException, optional
        An error already raised while writing, chained to the write error.
    """
    try:
        f.close()
    finally:
        sink.close()
    if sink.error is not None:
        raise sink.error from failure


class Hdf5BlockWriter(FormatWriter):
    """Write one chunked dataset block by block along its first axis (any order).

    The recording is described as in :class:`~cascope.io._blocks.FormatWriter`; the format's
    options:

    Parameters
    ----------
    dataset : str
        Dataset path (default ``"data"``).
    compression : str, optional
        h5py compression filter, e.g. ``"gzip"`` or ``"lzf"``.
    chunks : tuple of int, optional
        Chunk shape (default one plane along the first axis).
    attrs : dict, optional
        Extra attributes stored on the dataset.
    """

    def _create(
        self,
        *,
        dataset: str = "data",
        compression: str | None = None,
        chunks: tuple[int, ...] | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        self._file, self._sink = open_hdf5_output(self.path)
        self._failure: BaseException | None = None
        try:
            chunk = chunks or (1, *self.shape[1:])
            self._ds = self._file.create_dataset(
                dataset, shape=self.shape, dtype=self.dtype, chunks=chunk, compression=compression
            )
            own = _attrs(self.axes, self.voxel_size, self.frame_rate)
            for key, value in {**own, **(attrs or {})}.items():
                self._ds.attrs[key] = value
        except Exception as err:
            close_hdf5_output(self._file, self._sink, err)
            raise

    def _store(self, block: NDArray[Any], start: int) -> None:
        try:
            self._ds[start : start + block.shape[0]] = block
        except Exception as err:
            self._failure = err
            raise
        self._sink.check()  # a full disk stops the writing at once

    def close(self) -> None:
        """Close the file; a write the disk refused raises its ``OSError`` here."""
        close_hdf5_output(self._file, self._sink, self._failure)
