"""Zarr and OME-Zarr (NGFF 0.4 on zarr v2, NGFF 0.5 on zarr v3): lazy reading, chunked writing.

Reading takes the axes, the scale of the chosen resolution level (micrometres for space, seconds
for time, converted from the units the file gives) and the ``labels/`` group. Writing produces a
single-resolution OME-Zarr image, optionally with label images, block by block.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from cascope.errors import InputError
from cascope.io._blocks import FormatWriter
from cascope.io._lazy import LazyArray, normalize_key
from cascope.io._limits import (
    check_decoded_size,
    expected_chunks,
    first_axis_span,
    human,
    missing_hint,
)
from cascope.io._movie import Movie, RecordingKind, unnamed_axes

log = logging.getLogger(__name__)

NgffVersion = Literal["0.4", "0.5"]

_SPACE_UM = {
    "micrometer": 1.0,
    "micron": 1.0,
    "um": 1.0,
    "nanometer": 1e-3,
    "nm": 1e-3,
    "millimeter": 1e3,
    "mm": 1e3,
    "centimeter": 1e4,
    "meter": 1e6,
    "angstrom": 1e-4,
}
_TIME_S = {
    "second": 1.0,
    "s": 1.0,
    "millisecond": 1e-3,
    "ms": 1e-3,
    "microsecond": 1e-6,
    "minute": 60.0,
    "hour": 3600.0,
}
#: Target size of one chunk written by cascope.
_CHUNK_BYTES = 8 * 2**20


def _open_group(path: Path) -> Any:
    import zarr

    try:
        return zarr.open(str(path), mode="r")
    except Exception as err:
        raise InputError(
            f"is not a readable Zarr store ({' '.join(str(err).split())})", path
        ) from err


def _ngff(attrs: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """Return the NGFF attribute block and its version, or None for plain zarr."""
    if isinstance(attrs.get("ome"), dict):
        ome = attrs["ome"]
        return ome, str(ome.get("version", "0.5"))
    if "multiscales" in attrs or "image-label" in attrs or "labels" in attrs:
        ms = attrs.get("multiscales") or [{}]
        return attrs, str(ms[0].get("version", "0.4"))
    return None


def _scale(transforms: list[dict[str, Any]] | None, ndim: int) -> list[float]:
    scale = [1.0] * ndim
    for t in transforms or []:
        if t.get("type") == "scale" and "scale" in t:
            scale = [a * float(b) for a, b in zip(scale, t["scale"], strict=True)]
    return scale


def _letters(names: list[str], path: Path) -> str:
    letters = "".join(n[:1].upper() for n in names)
    if not set(letters) <= set("TCZYX") or len(set(letters)) != len(letters):
        raise InputError(f"has axes {names}; cascope needs t, c, z, y, x (give --axes)", path)
    return letters


def _read_multiscale(
    group: Any, block: dict[str, Any], version: str, path: Path, level: str | None
) -> tuple[Any, list[str], dict[str, float] | None, float | None, dict[str, Any]]:
    ms = block["multiscales"][0]
    datasets = ms["datasets"]
    paths = [d["path"] for d in datasets]
    if level is None:
        chosen = datasets[0]
    elif level in paths:
        chosen = datasets[paths.index(level)]
    else:
        raise InputError(f"has no resolution level {level!r}; levels: {', '.join(paths)}", path)
    arr = group[chosen["path"]]
    axes_meta = ms.get("axes") or [{"name": n} for n in "tczyx"[-arr.ndim :]]
    axes_meta = [{"name": a} if isinstance(a, str) else a for a in axes_meta]
    names = [a["name"] for a in axes_meta]
    scale = _scale(chosen.get("coordinateTransformations"), arr.ndim)
    overall = _scale(ms.get("coordinateTransformations"), arr.ndim)
    scale = [a * b for a, b in zip(scale, overall, strict=True)]
    vs: dict[str, float] = {}
    rate = None
    for a, s in zip(axes_meta, scale, strict=True):
        letter = a["name"][:1].upper()
        unit = str(a.get("unit", "")).lower()
        if letter in "ZYX" and a.get("type", "space") == "space":
            vs[letter] = s * _SPACE_UM.get(unit, 1.0)
        elif letter == "T" and s > 0:
            rate = 1.0 / (s * _TIME_S.get(unit, 1.0))
    meta = {"ngff_version": version, "level": chosen["path"], "levels": paths}
    if "name" in ms:
        meta["name"] = ms["name"]
    return arr, names, vs or None, rate, meta


def read_zarr(
    path: str | Path,
    *,
    dataset: str | None = None,
    axes: str | None = None,
    missing_chunks: str = "error",
    kind: RecordingKind | None = None,
) -> Movie:
    """Open a Zarr array or an OME-Zarr image lazily.

    Parameters
    ----------
    path : str or Path
        The store (a folder).
    dataset : str, optional
        Resolution level of an OME-Zarr image (default the full resolution, ``"0"``), or the array
        path inside a plain Zarr group.
    axes, missing_chunks, kind
        As in :func:`cascope.io.read`; ``axes`` names the dimensions when the store does not
        (or overrides them).

    Returns
    -------
    Movie
        Backed by the zarr array; ``metadata["ngff_version"]`` says which NGFF version was read.
        A chunk that cannot be decoded raises :class:`InputError` naming it when it is read.
    """
    import zarr

    path = Path(path)
    node = _open_group(path)
    meta: dict[str, Any] = {"format": "zarr"}
    names: list[str] | None = None
    vs, rate = None, None
    if isinstance(node, zarr.Group):
        attrs = dict(node.attrs)
        ngff = _ngff(attrs)
        if ngff is not None and "multiscales" in ngff[0]:
            arr, names, vs, rate, extra = _read_multiscale(node, ngff[0], ngff[1], path, dataset)
            meta.update(extra)
        else:
            arrays = [k for k, _ in node.arrays()]
            if dataset is None and len(arrays) != 1:
                raise InputError(f"choose an array with --dataset; arrays: {arrays}", path)
            key = dataset or arrays[0]
            if key not in node or not isinstance(node[key], zarr.Array):
                raise InputError(f"has no array {key!r}; arrays: {arrays}", path)
            arr = node[key]
            meta["dataset"] = key
    else:
        arr = node
    if names is None:
        names = _plain_axes(arr)
    file_axes = _letters(names, path) if names else None
    final = (axes or file_axes or "").upper()
    if not final:
        if not 2 <= arr.ndim <= 5:
            raise InputError(f"has no axes metadata (shape {arr.shape}); give --axes", path)
        final = unnamed_axes(arr.ndim - 2, kind) + "YX"
        meta["axes_assumed"] = True
    if len(final) != arr.ndim:
        raise InputError(
            f"axes {final!r} name {len(final)} dimensions but the array has {arr.ndim} "
            f"(shape {arr.shape})",
            path,
        )
    if vs:
        vs = {a: v for a, v in vs.items() if a in final}
    name = str(meta.get("level", meta.get("dataset", "")))
    _check_chunks(arr, path, name, missing_chunks)
    return Movie(
        CheckedZarr(arr, path, name),
        axes=final,
        voxel_size=vs or None,
        frame_rate=rate,
        source=path,
        metadata=meta,
    )


def _stored_keys(arr: Any) -> set[str]:
    from zarr.core.sync import sync

    prefix = arr.store_path.path
    prefix = f"{prefix}/" if prefix else ""

    async def listing() -> list[str]:
        return [k async for k in arr.store_path.store.list_prefix(prefix)]

    return {k[len(prefix) :] for k in sync(listing())}


def _check_chunks(arr: Any, path: Path, name: str, missing: str) -> None:
    """Refuse a chunk too big to decode, and (unless ``missing="fill"``) missing chunks."""
    if missing not in ("error", "fill"):
        raise ValueError(f"missing_chunks must be 'error' or 'fill', not {missing!r}")
    chunk_bytes = int(np.prod(arr.chunks, dtype=np.int64)) * np.dtype(arr.dtype).itemsize
    array = f"array {name!r}" if name else "the array"
    check_decoded_size(f"{array}: a chunk of {arr.chunks}", chunk_bytes, path)
    if missing == "fill" or arr.size == 0:
        return
    grid = tuple(arr.shards or arr.chunks)
    n = expected_chunks(arr.shape, grid)
    meta_names = {"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"}
    stored = {k for k in _stored_keys(arr) if k.rsplit("/", 1)[-1] not in meta_names}
    if len(stored) >= n:
        return
    hint = missing_hint()
    where = ""
    if n <= 2_000_000:
        counts = [-(-int(s) // max(int(c), 1)) for s, c in zip(arr.shape, grid, strict=True)]
        for coords in np.ndindex(*counts):
            if arr.metadata.encode_chunk_key(coords) not in stored:
                frames = first_axis_span(coords[0], grid, arr.shape)
                where = f"; first missing: chunk {coords} (index {frames} of axis 0)"
                break
    raise InputError(
        f"{array} declares shape {arr.shape} in {n} chunk(s) of {grid} "
        f"({human(arr.nbytes)}) but the store holds {len(stored)}{where}: a damaged or "
        f"incomplete store; {hint}",
        path,
    )


class CheckedZarr(LazyArray):
    """A zarr array whose read errors (a damaged chunk) become one :class:`InputError`."""

    def __init__(self, base: Any, path: Path, name: str) -> None:
        self.base = base
        self.path = path
        self.name = name
        self.shape = tuple(int(n) for n in base.shape)
        self.dtype = np.dtype(base.dtype)
        self.chunks = tuple(base.chunks)

    def __getitem__(self, key: Any) -> NDArray[Any]:
        try:
            return np.asarray(self.base[key])
        except (IndexError, TypeError):
            raise
        except Exception as err:
            raise InputError(self._describe(key, err), self.path) from err

    def _describe(self, key: Any, err: BaseException) -> str:
        array = f"array {self.name!r}" if self.name else "the array"
        detail = " ".join(str(err).split())[:200] or type(err).__name__
        try:
            k = normalize_key(key, self.ndim)
            ranges = [
                range(n)[i] if isinstance(i, slice) else range(int(i) % n, int(i) % n + 1)
                for n, i in zip(self.shape, k, strict=True)
            ]
            spans = [
                range(r[0] // c, r[-1] // c + 1) if len(r) else range(0)
                for r, c in zip(ranges, self.chunks, strict=True)
            ]
            for coords in np.ndindex(*[len(s) for s in spans]):
                c = tuple(s[i] for s, i in zip(spans, coords, strict=True))
                index = tuple(
                    slice(j * n, (j + 1) * n) for j, n in zip(c, self.chunks, strict=True)
                )
                try:
                    self.base[index]
                except Exception:
                    frames = first_axis_span(c[0], self.chunks, self.shape)
                    return (
                        f"{array}: chunk {c} (index {frames} of axis 0) cannot be decoded "
                        f"({detail}); the store is damaged"
                    )
        except Exception:  # fall back to the general message
            pass
        return f"{array}: a chunk cannot be decoded ({detail}); the store is damaged"


def _plain_axes(arr: Any) -> list[str] | None:
    dims = getattr(arr.metadata, "dimension_names", None)
    if dims and all(d for d in dims):
        return [str(d) for d in dims]
    attrs = dict(arr.attrs)
    if "_ARRAY_DIMENSIONS" in attrs:
        return [str(d) for d in attrs["_ARRAY_DIMENSIONS"]]
    if isinstance(attrs.get("axes"), str):
        return list(attrs["axes"])
    return None


def read_labels(path: str | Path, name: str | None = None) -> Movie:
    """Read a label image from the ``labels/`` group of an OME-Zarr image.

    Parameters
    ----------
    path : str or Path
        The OME-Zarr image.
    name : str, optional
        Which label image; may be omitted when there is exactly one.

    Returns
    -------
    Movie
        The labels (integer), lazily.
    """
    path = Path(path)
    labels_dir = path / "labels"
    if not labels_dir.is_dir():
        raise InputError("has no labels/ group", path)
    group = _open_group(labels_dir)
    ngff = _ngff(dict(group.attrs))
    listed = list((ngff[0] if ngff else {}).get("labels", [])) or [k for k, _ in group.groups()]
    if name is None:
        if len(listed) != 1:
            raise InputError(f"holds several label images, choose one by name: {listed}", path)
        name = listed[0]
    if name not in listed:
        raise InputError(f"has no label image {name!r}; labels: {listed}", path)
    movie = read_zarr(labels_dir / name)
    movie.metadata["label_name"] = name
    return movie


def default_chunks(shape: tuple[int, ...], dtype: Any, axes: str) -> tuple[int, ...]:
    """Chunks of about 8 MB: whole Z/C, at most 512 pixels along Y and X, frames grouped."""
    inner = [min(n, 512) if a in "YX" else n for a, n in zip(axes[1:], shape[1:], strict=True)]
    plane = int(np.prod(inner, dtype=np.int64)) * np.dtype(dtype).itemsize
    first = max(1, min(shape[0], _CHUNK_BYTES // max(plane, 1)))
    return (first, *inner)


def _ngff_axes(axes: str) -> list[dict[str, str]]:
    out = []
    for a in axes:
        if a == "T":
            out.append({"name": "t", "type": "time", "unit": "second"})
        elif a == "C":
            out.append({"name": "c", "type": "channel"})
        else:
            out.append({"name": a.lower(), "type": "space", "unit": "micrometer"})
    return out


def _multiscales(
    axes: str, voxel_size: dict[str, float] | None, frame_rate: float | None, version: str
) -> list[dict[str, Any]]:
    vs = voxel_size or {}
    scale = [
        (1.0 / frame_rate if (a == "T" and frame_rate) else float(vs.get(a, 1.0))) for a in axes
    ]
    ms: dict[str, Any] = {
        "axes": _ngff_axes(axes),
        "datasets": [
            {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}
        ],
        "name": "image",
    }
    if version == "0.4":
        ms = {"version": "0.4", **ms}
    return [ms]


def _create_array(
    group: Any,
    name: str,
    shape: tuple[int, ...],
    dtype: Any,
    axes: str,
    chunks: tuple[int, ...],
    version: str,
) -> Any:
    if version == "0.4":
        kw: dict[str, Any] = {"chunk_key_encoding": {"name": "v2", "separator": "/"}}
    else:
        kw = {"dimension_names": [a.lower() for a in axes]}
    kw["config"] = {"write_empty_chunks": True}  # every chunk stored: a missing one is damage
    return group.create_array(name, shape=shape, dtype=dtype, chunks=chunks, fill_value=0, **kw)


def _set_ngff(group: Any, block: dict[str, Any], version: str) -> None:
    if version == "0.4":
        group.attrs.update(block)
    else:
        group.attrs.update({"ome": {"version": "0.5", **block}})


class ZarrBlockWriter(FormatWriter):
    """Write a single-resolution OME-Zarr image block by block along its first axis.

    The recording is described as in :class:`~cascope.io._blocks.FormatWriter`; the format's
    options:

    Parameters
    ----------
    chunks : tuple of int, optional
        Chunk shape (default about 8 MB, see :func:`default_chunks`).
    ngff_version : {"0.4", "0.5"}
        NGFF 0.4 (zarr v2 layout) or 0.5 (zarr v3 layout).
    labels : dict of str to array-like, optional
        Label images (integer arrays shaped like the image without ``C``) stored under
        ``labels/<name>``.
    """

    def _create(
        self,
        *,
        chunks: tuple[int, ...] | None = None,
        ngff_version: NgffVersion = "0.4",
        labels: dict[str, Any] | None = None,
    ) -> None:
        import zarr

        axes, shape = self.axes, self.shape
        if ngff_version not in ("0.4", "0.5"):
            raise ValueError(f"ngff_version must be '0.4' or '0.5', not {ngff_version!r}")
        if "".join(a for a in "TCZYX" if a in axes) != axes:
            log.warning(
                "axes %r are not in NGFF order (t, c, z, y, x); some viewers refuse it", axes
            )
        fmt: Literal[2, 3] = 2 if ngff_version == "0.4" else 3
        root = zarr.open_group(str(self.path), mode="w", zarr_format=fmt)
        chunk = tuple(chunks) if chunks else default_chunks(shape, self.dtype, axes)
        self._arr = _create_array(root, "0", shape, self.dtype, axes, chunk, ngff_version)
        _set_ngff(
            root,
            {"multiscales": _multiscales(axes, self.voxel_size, self.frame_rate, ngff_version)},
            ngff_version,
        )
        if labels:
            self._write_labels(
                root, labels, shape, axes, self.voxel_size, self.frame_rate, ngff_version
            )

    @staticmethod
    def _write_labels(
        root: Any,
        labels: dict[str, Any],
        shape: tuple[int, ...],
        axes: str,
        voxel_size: dict[str, float] | None,
        frame_rate: float | None,
        version: str,
    ) -> None:
        lab_axes = axes.replace("C", "")
        lab_shape = tuple(n for a, n in zip(axes, shape, strict=True) if a != "C")
        group = root.create_group("labels")
        _set_ngff(group, {"labels": list(labels)}, version)
        for name, lab in labels.items():
            if tuple(lab.shape) != lab_shape:
                raise InputError(
                    f"label image {name!r} has shape {tuple(lab.shape)}; "
                    f"expected {lab_shape} (the image without C)"
                )
            dtype = np.dtype(lab.dtype)
            if dtype.kind not in "ui":
                raise InputError(f"label image {name!r} must be integer, not {dtype}")
            g = group.create_group(name)
            arr = _create_array(
                g,
                "0",
                lab_shape,
                dtype,
                lab_axes,
                default_chunks(lab_shape, dtype, lab_axes),
                version,
            )
            step = max(1, arr.chunks[0])
            for start in range(0, lab_shape[0], step):
                arr[start : start + step] = np.asarray(lab[start : start + step])
            block: dict[str, Any] = {
                "multiscales": _multiscales(lab_axes, voxel_size, frame_rate, version),
                "image-label": {"source": {"image": "../../"}},
            }
            if version == "0.4":
                block["image-label"]["version"] = "0.4"
            _set_ngff(g, block, version)

    def _store(self, block: NDArray[Any], start: int) -> None:
        self._arr[start : start + block.shape[0]] = block
