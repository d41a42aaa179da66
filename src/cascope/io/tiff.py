"""TIFF, OME-TIFF and ImageJ hyperstacks: lazy reading (memory map or chunked) and block writing.

Uncompressed contiguous files are memory-mapped; other layouts (compressed, scattered pages) are
read through tifffile's zarr view, so only the indexed pages are decoded. An ImageJ linear
calibration (e.g. ``c0=-32768``, used to store signed 16-bit data as unsigned) is applied lazily.
"""

from __future__ import annotations

import glob
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cascope.errors import InputError, OutputError
from cascope.io._blocks import FormatWriter
from cascope.io._lazy import Calibrated, FrameSequence, MappedFile
from cascope.io._movie import KNOWN_AXES, Movie, RecordingKind, unnamed_axes

log = logging.getLogger(__name__)

TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8", ".tf2")

#: Length units ImageJ/OME write, in micrometres.
_UNITS_UM = {
    "micron": 1.0,
    "microns": 1.0,
    "um": 1.0,
    "µm": 1.0,
    "\u03bcm": 1.0,
    "\\u00b5m": 1.0,
    "nm": 1e-3,
    "nanometer": 1e-3,
    "mm": 1e3,
    "cm": 1e4,
    "m": 1e6,
}
_TIME_S = {"s": 1.0, "sec": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "min": 60.0, "h": 3600.0}
#: ImageJ hyperstacks hold at most this many bytes in a classic (32-bit offset) TIFF.
_IMAGEJ_MAX_BYTES = 2**32 - 2**25


def map_axes(
    letters: str,
    shape: tuple[int, ...],
    *,
    reserved: str = "",
    kind: RecordingKind | None = None,
) -> list[str | None]:
    """Translate tifffile axis letters to cascope's ``TCZYX`` letters.

    Generic sequence letters (``I``, ``Q`` and other non-spatial ones: the file does not say what
    they are) are named after what the command expects (:func:`~cascope.io._movie.unnamed_axes`:
    one such axis is ``T`` for a movie, ``Z`` for a volume); samples (``S``, e.g. RGB) become
    ``C``. Singleton axes keep their letter when it is a cascope letter still free, otherwise they
    get ``None`` (they can only be dropped).

    Parameters
    ----------
    letters : str
        tifffile's series axes, e.g. ``"IYX"`` or ``"TZCYXS"``.
    shape : tuple of int
        The series shape.
    reserved : str
        Letters already used elsewhere.
    kind : {"movie", "volume"}, optional
        What the command expects (``None``: read as a movie).

    Returns
    -------
    list of str or None
        One cascope letter (or ``None``) per dimension.
    """
    letters = letters.upper()
    pairs = list(zip(letters, shape, strict=True))
    used = set(reserved) | {a for a, n in pairs if a in KNOWN_AXES and (n > 1 or a in "YX")}
    generic = sum(1 for a, n in pairs if n > 1 and a not in KNOWN_AXES and a != "S")
    preferred = unnamed_axes(generic, kind) if generic <= 3 else ""
    names: list[str | None] = []
    for a, n in pairs:
        if a in KNOWN_AXES and (n > 1 or a in "YX"):
            names.append(a)
        elif n == 1:
            names.append(a if a in KNOWN_AXES and a not in used else None)
        else:
            order = "CTZ" if a == "S" else preferred + "TZC"
            free = [b for b in order if b not in used]
            if not free:
                raise InputError(
                    f"cannot name the file's axis {a!r} (axes {letters!r}); give --axes"
                )
            names.append(free[0])
            used.add(free[0])
    return names


def names_unrecorded(letters: str, shape: tuple[int, ...]) -> bool:
    """Whether tifffile's axes leave a dimension unnamed (a plain stack without metadata)."""
    pairs = zip(letters.upper(), shape, strict=True)
    return any(n > 1 and a not in KNOWN_AXES and a != "S" for a, n in pairs)


def select_axes(
    names: list[str | None], shape: tuple[int, ...], axes: str | None, path: Path
) -> tuple[tuple[Any, ...], str]:
    """Choose which dimensions to keep: all non-singleton ones, plus singletons ``axes`` names.

    Returns
    -------
    index : tuple
        Basic index selecting the kept dimensions (``0`` drops one).
    axes : str
        Axes of the kept dimensions.
    """
    core = [
        i for i, (a, n) in enumerate(zip(names, shape, strict=True)) if n > 1 or a in ("Y", "X")
    ]
    if axes is None or len(axes) == len(core):
        keep = core
    else:
        want = set(axes.upper())
        keep = [i for i, a in enumerate(names) if i in core or (a is not None and a in want)]
    if axes is not None and len(axes) != len(keep):
        kept = tuple(shape[i] for i in core)
        raise InputError(
            f"axes {axes!r} name {len(axes)} dimensions but the data has {len(core)} "
            f"(shape {kept})",
            path,
        )
    final = axes.upper() if axes else "".join(str(names[i]) for i in keep)
    index = tuple(slice(None) if i in keep else 0 for i in range(len(shape)))
    return index, final


def _drop(data: Any, index: tuple[Any, ...]) -> Any:
    if all(isinstance(k, slice) for k in index):
        return data
    if isinstance(data, np.ndarray):
        return data[index]
    from cascope.io._lazy import Indexed

    return Indexed(data, index)


def _resolution_um(page: Any, unit_um: float) -> tuple[float, float] | None:
    sizes = []
    for tag in ("YResolution", "XResolution"):
        t = page.tags.get(tag)
        if t is None:
            return None
        num, den = t.value if isinstance(t.value, tuple) else (t.value, 1)
        if not num:
            return None
        sizes.append(den / num * unit_um)
    return sizes[0], sizes[1]


def _imagej_physical(
    tf: Any, page: Any, axes: str
) -> tuple[dict[str, float] | None, float | None, dict[str, Any]]:
    ij = tf.imagej_metadata or {}
    vs: dict[str, float] = {}
    unit = str(ij.get("unit", "")).strip().lower()
    scale = _UNITS_UM.get(unit)
    if scale is not None:
        yx = _resolution_um(page, scale)
        if yx is not None:
            vs["Y"], vs["X"] = yx
        if "spacing" in ij and "Z" in axes:
            vs["Z"] = float(ij["spacing"]) * scale
    rate = None
    if ij.get("finterval"):
        rate = 1.0 / float(ij["finterval"])
    elif ij.get("fps"):
        rate = float(ij["fps"])
    keep = {k: v for k, v in ij.items() if k not in ("Labels", "Ranges", "LUTs", "Info")}
    return vs or None, rate, keep


def _ome_physical(tf: Any, index: int) -> tuple[dict[str, float] | None, float | None]:
    import tifffile

    try:
        images = tifffile.xml2dict(tf.ome_metadata)["OME"]["Image"]
    except Exception:  # malformed OME-XML: fall back to no physical metadata
        return None, None
    image = images[index] if isinstance(images, list) else images
    px = image.get("Pixels", {})
    vs: dict[str, float] = {}
    for a in "ZYX":
        value = px.get(f"PhysicalSize{a}")
        if value:
            unit = str(px.get(f"PhysicalSize{a}Unit", "µm")).lower()
            vs[a] = float(value) * _UNITS_UM.get(unit, 1.0)
    rate = None
    dt = px.get("TimeIncrement")
    if dt:
        rate = 1.0 / (float(dt) * _TIME_S.get(str(px.get("TimeIncrementUnit", "s")), 1.0))
    return vs or None, rate


class _Problems(logging.Handler):
    """Collect the errors tifffile logs (instead of raising) for damaged files."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(" ".join(record.getMessage().split()))


def _check_complete(tf: Any, series: Any, path: Path) -> None:
    """Raise when the pixel data of a series extends past the end of the file (truncated)."""
    size = path.stat().st_size
    if series.dataoffset is not None:
        end = series.dataoffset + series.nbytes
    else:
        pages = series.pages
        last = pages[len(pages) - 1] if len(pages) else None
        if last is None or not getattr(last, "dataoffsets", None):
            return
        end = max(o + c for o, c in zip(last.dataoffsets, last.databytecounts, strict=True))
    if end > size:
        raise InputError(f"is truncated: pixel data needs {end} bytes, the file has {size}", path)


def _check_pages(series: Any, path: Path) -> None:
    """Refuse a compressed page that cannot be decoded (bomb, or bigger than free memory)."""
    from cascope.io._limits import check_decoded_size

    if series.dataoffset is not None:
        return  # uncompressed and contiguous: memory-mapped, never decoded whole
    page = series.keyframe
    if page is None:
        return
    decoded = int(np.prod(page.shape, dtype=np.int64)) * np.dtype(page.dtype).itemsize
    counts = [int(c) for c in getattr(page, "databytecounts", ()) or ()]
    tiled = bool(getattr(page, "is_tiled", False))
    # zarr views of a tiled page decode one tile at a time; strips are decoded whole
    piece = decoded
    if tiled and counts:
        piece = decoded // len(counts)
    check_decoded_size(
        f"page {page.index} ({'x'.join(str(n) for n in page.shape)} {page.dtype})",
        piece,
        path,
        stored=sum(counts) if counts else None,
    )


def read_tiff(
    path: str | Path,
    *,
    axes: str | None = None,
    series: int | None = None,
    kind: RecordingKind | None = None,
) -> Movie:
    """Read a TIFF, OME-TIFF or ImageJ hyperstack lazily.

    Parameters
    ----------
    path : str or Path
        The file.
    axes, series, kind
        As in :func:`cascope.io.read` (``series`` defaults to the first; ``kind`` names the
        file's unnamed axes as :func:`map_axes` does).

    Returns
    -------
    Movie
        Memory-mapped when uncompressed and contiguous, otherwise a zarr view. With an ImageJ
        linear calibration the values are calibrated on the fly and ``metadata["calibration"]``
        gives the stored and returned types.
    """
    import tifffile

    path = Path(path)
    problems = _Problems()
    tlog = logging.getLogger("tifffile")
    tlog.addHandler(problems)
    propagate, tlog.propagate = tlog.propagate, False  # reported as one InputError instead
    level = tlog.level
    if not tlog.isEnabledFor(logging.ERROR):  # a caller may have silenced tifffile
        tlog.setLevel(logging.ERROR)
    try:
        tf = tifffile.TiffFile(path)
        n_series = len(tf.series)
    except Exception as err:
        raise InputError(f"is not a readable TIFF ({_short(err)})", path) from err
    finally:
        tlog.removeHandler(problems)
        tlog.propagate = propagate
        tlog.setLevel(level)
    if problems.messages:
        tf.close()
        raise InputError(f"is truncated or corrupt ({problems.messages[0]})", path)
    index = series or 0
    if n_series == 0:
        tf.close()
        raise InputError("is not a readable TIFF: it holds no image", path)
    if not 0 <= index < n_series:
        tf.close()
        raise InputError(f"has {n_series} series; --series {series} does not exist", path)
    s = tf.series[index]
    try:
        _check_complete(tf, s, path)
    except InputError:
        tf.close()
        raise
    try:
        _check_pages(s, path)
    except InputError:
        tf.close()
        raise
    shape = tuple(int(n) for n in s.get_shape(False))
    names = map_axes(s.get_axes(False), shape, kind=kind)
    keep, final_axes = select_axes(names, shape, axes, path)
    data: Any
    dtype = np.dtype(s.dtype).newbyteorder(tf.byteorder)
    if s.dataoffset is not None:
        data = MappedFile(path, s.dataoffset, shape, dtype)
        layout = "memmap"
    else:
        import zarr

        data = zarr.open(s.aszarr(squeeze=False), mode="r")
        layout = "chunked"
    meta: dict[str, Any] = {"format": "tiff", "layout": layout, "tiff_axes": s.axes}
    if axes is None and names_unrecorded(s.get_axes(False), shape):
        meta["axes_assumed"] = True
    file_axes = "".join(a or "" for a in names)
    if tf.is_ome:
        vs, rate = _ome_physical(tf, index)
        meta["ome"] = True
    elif tf.is_imagej:
        vs, rate, ij = _imagej_physical(tf, s.keyframe, file_axes)
        meta["imagej"] = ij
        data = _calibrate(data, ij, meta)
    else:
        vs, rate = None, None
    if layout == "memmap":
        tf.close()  # the memmap does not need the parser; zarr views keep it open
    data = _drop(data, keep)
    if vs:
        vs = {a: vs[a] for a in "ZYX" if a in vs and a in final_axes}
    return Movie(
        data, axes=final_axes, voxel_size=vs or None, frame_rate=rate, source=path, metadata=meta
    )


def _calibrate(data: Any, ij: dict[str, Any], meta: dict[str, Any]) -> Any:
    """Wrap ``data`` so it returns ImageJ-calibrated values (straight-line function only)."""
    if int(ij.get("cf", -1)) != 0 or "c0" not in ij:
        return data
    c0, c1 = float(ij["c0"]), float(ij.get("c1", 1.0))
    if c0 == 0 and c1 == 1:
        return data
    stored = np.dtype(data.dtype)
    if stored.kind in "ui" and c0.is_integer() and c1.is_integer():
        info = np.iinfo(stored)
        bounds = [c0 + c1 * info.min, c0 + c1 * info.max]
        out = np.result_type(*(np.min_scalar_type(int(b)) for b in bounds))
    else:
        out = np.dtype(np.float32)
    meta["calibration"] = {
        "function": "straight line",
        "offset": c0,
        "scale": c1,
        "stored_dtype": str(stored),
        "dtype": str(out),
    }
    return Calibrated(data, offset=c0, scale=c1, dtype=out)


def natural_key(name: str) -> list[Any]:
    """Sort key that orders ``frame2`` before ``frame10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def list_frames(pattern: str | Path) -> list[Path]:
    """List the one-frame TIFFs of a folder or glob pattern in natural sort order."""
    p = Path(pattern)
    if p.is_dir():
        files = [f for f in p.iterdir() if f.suffix.lower() in TIFF_SUFFIXES and f.is_file()]
    else:
        files = [Path(f) for f in glob.glob(str(pattern))]
    return sorted(files, key=lambda f: natural_key(f.name))


def read_tiff_sequence(
    pattern: str | Path, *, axes: str | None = None, kind: RecordingKind | None = None
) -> Movie:
    """Read a folder (or glob) of one-frame TIFFs as one movie, lazily, in natural sort order.

    Parameters
    ----------
    pattern : str or Path
        A folder holding the frames, or a glob such as ``"run1/frame_*.tif"``.
    axes : str, optional
        Axes of the stacked movie (default ``"T"`` plus the frame's own axes, or ``"Z"`` plus
        them for ``kind="volume"``: the file names say nothing of what the files are).
    kind : {"movie", "volume"}, optional
        What the caller expects; ``metadata["axes_assumed"]`` is True when ``axes`` is not given.

    Returns
    -------
    Movie
        Backed by a per-frame reader; a frame is read only when indexed.
    """
    files = list_frames(pattern)
    if not files:
        raise InputError("holds no TIFF frames", pattern)
    first = read_tiff(files[0])
    frame_axes = first.axes
    lead = unnamed_axes(1, kind)
    if lead in frame_axes:
        frame_axes = frame_axes.replace(lead, next(a for a in "TZC" if a not in first.axes))

    def read_frame(f: Path) -> NDArray[Any]:
        try:
            frame = read_tiff(f)
        except InputError:
            raise
        except Exception as err:
            raise InputError(f"cannot be read ({_short(err)})", f) from err
        return np.asarray(frame[...])

    data = FrameSequence(files, first.shape, first.dtype, read_frame)
    final = axes.upper() if axes else lead + frame_axes
    meta: dict[str, Any] = {"format": "tiff-sequence", "files": len(files), "first": str(files[0])}
    if axes is None:
        meta["axes_assumed"] = True
    return Movie(
        data,
        axes=final,
        voxel_size=first.voxel_size,
        frame_rate=first.frame_rate,
        source=Path(pattern),
        metadata=meta,
    )


def tiff_layout(
    shape: tuple[int, ...],
    dtype: Any,
    axes: str,
    *,
    voxel_size: dict[str, float] | None = None,
    frame_rate: float | None = None,
    ome: bool | None = None,
) -> dict[str, Any]:
    """Choose ImageJ or OME metadata and classic or BigTIFF for an output.

    ImageJ hyperstacks are written when ImageJ can open them (uint8/uint16/float32, axes in
    ``TZCYX`` order, under 4 GB); otherwise OME-TIFF, as BigTIFF when it needs 64-bit offsets.

    Returns
    -------
    dict
        Keyword arguments for :func:`tifffile.imwrite`.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    ij_order = "".join(a for a in "TZCYX" if a in axes) == axes
    imagej_ok = dtype.name in ("uint8", "uint16", "float32") and ij_order
    use_imagej = imagej_ok and nbytes < _IMAGEJ_MAX_BYTES and not ome
    vs = voxel_size or {}
    # cascope axes never hold RGB samples; without this a last axis of 3 or 4 would be taken as RGB
    kw: dict[str, Any] = {"photometric": "minisblack"}
    if "X" in vs and "Y" in vs:
        kw["resolution"] = (1.0 / vs["X"], 1.0 / vs["Y"])
    if use_imagej:
        md: dict[str, Any] = {"axes": axes}
        if vs:
            md["unit"] = "um"
        if "Z" in vs:
            md["spacing"] = vs["Z"]
        if frame_rate:
            md["finterval"] = 1.0 / frame_rate
        return {"imagej": True, "metadata": md, **kw}
    md = {"axes": axes}
    for a in "ZYX":
        if a in vs:
            md[f"PhysicalSize{a}"] = vs[a]
            md[f"PhysicalSize{a}Unit"] = "µm"
    if frame_rate:
        md["TimeIncrement"] = 1.0 / frame_rate
        md["TimeIncrementUnit"] = "s"
    kw.pop("resolution", None)
    return {"ome": True, "bigtiff": nbytes >= _IMAGEJ_MAX_BYTES, "metadata": md, **kw}


class TiffBlockWriter(FormatWriter):
    """Write an uncompressed TIFF block by block along the first axis, in any order.

    The file is laid out in full first (headers and a sparse, contiguous pixel area), then each
    block is written at its offset, so memory use is one block. The recording is described as
    in :class:`~cascope.io._blocks.FormatWriter`; the format's option:

    Parameters
    ----------
    ome : bool, optional
        Force OME metadata (default: ImageJ when ImageJ can read the result).
    """

    def _create(self, *, ome: bool | None = None) -> None:
        import tifffile

        kw = tiff_layout(
            self.shape,
            self.dtype,
            self.axes,
            voxel_size=self.voxel_size,
            frame_rate=self.frame_rate,
            ome=ome,
        )
        tifffile.imwrite(self.path, shape=self.shape, dtype=self.dtype, **kw)
        with tifffile.TiffFile(self.path) as tf:
            offset = tf.series[0].dataoffset
            self.stored = self.dtype.newbyteorder(tf.byteorder)
        if offset is None:
            raise OutputError(f"{self.path}: tifffile did not lay out contiguous pixel data")
        self._offset = int(offset)
        self._frame_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self._fh = open(self.path, "r+b")  # closed in close()

    def _store(self, block: NDArray[Any], start: int) -> None:
        arr = np.ascontiguousarray(block)
        self._fh.seek(self._offset + start * self._frame_bytes)
        self._fh.write(arr.data.cast("B"))

    def close(self) -> None:
        """Flush and close the file."""
        self._fh.close()


def _short(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__
