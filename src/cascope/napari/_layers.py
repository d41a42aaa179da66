"""Conversions between cascope recordings (axes, voxel size) and napari layer attributes."""

from __future__ import annotations

from typing import Any

import numpy as np

from cascope.io import Movie

#: Data kept in memory as NumPy below this size; larger recordings stay lazy (dask).
IN_MEMORY_BYTES = 512 * 2**20
#: Key of cascope's facts in a layer's ``metadata``.
META_KEY = "cascope"
_DEFAULT_AXES = {2: "YX", 3: "ZYX", 4: "TZYX", 5: "TCZYX"}


def layer_array(movie: Movie) -> Any:
    """Pixels napari can index: NumPy for small recordings, a plane-chunked dask array otherwise."""
    if isinstance(movie.data, np.ndarray):
        return movie.data
    if movie.nbytes <= IN_MEMORY_BYTES:
        return movie.to_numpy()
    import dask.array as da

    chunks = tuple(1 if a in "TCZ" else n for a, n in zip(movie.axes, movie.shape, strict=True))
    return da.from_array(movie.data, chunks=chunks, asarray=True)


def physical_scale(axes: str, voxel_size: dict[str, float] | None) -> list[float]:
    """Scale per axis: micrometres for Z, Y, X; 1 (one frame, one channel) for T and C.

    Time stays in frames so that layers made by cascope (events, labels) line up with the movie.
    """
    vs = voxel_size or {}
    return [float(vs.get(a, 1.0)) if a in "ZYX" else 1.0 for a in axes]


def layer_meta(movie: Movie) -> dict[str, Any]:
    """Collect the facts a layer carries so widgets and writers know its axes and size."""
    return {
        "axes": movie.axes,
        "voxel_size": dict(movie.voxel_size) if movie.voxel_size else None,
        "frame_rate": movie.frame_rate,
        "source": str(movie.source) if movie.source is not None else None,
    }


def layer_axes(ndim: int, metadata: dict[str, Any] | None, axis_labels: Any = None) -> str:
    """Axes string of a layer: from cascope's metadata, else its axis labels, else by dimension.

    Parameters
    ----------
    ndim : int
        Dimensions of the layer data.
    metadata : dict, optional
        The layer's ``metadata`` (cascope stores ``{"cascope": {"axes": ...}}`` there).
    axis_labels : sequence of str, optional
        The layer's axis labels; used when they are the letters T, C, Z, Y, X.

    Returns
    -------
    str
        One letter per dimension (a guess from ``ndim`` when nothing says more: 2 ``YX``,
        3 ``ZYX``, 4 ``TZYX``).
    """
    axes = ((metadata or {}).get(META_KEY) or {}).get("axes")
    if isinstance(axes, str) and len(axes) == ndim:
        return axes.upper()
    if axis_labels is not None:
        letters = "".join(str(a).upper() for a in axis_labels)
        if len(letters) == ndim and set(letters) <= set("TCZYX") and len(set(letters)) == ndim:
            return letters
    return _DEFAULT_AXES.get(ndim, "YX")


def voxel_size_from(axes: str, scale: Any, metadata: dict[str, Any] | None) -> dict[str, float]:
    """Voxel size (µm per spatial axis) from cascope's metadata, else the layer scale."""
    stored = ((metadata or {}).get(META_KEY) or {}).get("voxel_size")
    if stored:
        return {a: float(v) for a, v in stored.items() if a in axes}
    if scale is None:
        return {}
    return {a: float(s) for a, s in zip(axes, scale, strict=False) if a in "ZYX"}
