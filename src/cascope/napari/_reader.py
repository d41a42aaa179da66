"""npe2 reader: TIFF, OME-Zarr (with its ``labels/`` group), HDF5 and LIF through ``cascope.io``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cascope.errors import CascopeError
from cascope.io import Movie, read, read_labels, recording_stem
from cascope.napari._layers import META_KEY, layer_array, layer_meta, physical_scale

log = logging.getLogger(__name__)

LayerData = tuple[Any, dict[str, Any], str]
_SUFFIXES = (".tif", ".tiff", ".btf", ".h5", ".hdf5", ".zarr", ".lif")


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """Return a reader for a recording cascope can open, or None for anything else.

    Parameters
    ----------
    path : str or list of str
        What napari was asked to open (one path; lists of several are left to other readers).

    Returns
    -------
    callable or None
        A function returning napari layer data, or None when cascope does not handle ``path``.
    """
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(path)
    if not p.name.lower().endswith(_SUFFIXES) and not _is_zarr_folder(p):
        return None
    try:
        movie = read(p)
    except CascopeError as err:
        log.info("cascope does not read %s: %s", p, err)
        return None

    def reader(_: str | list[str]) -> list[LayerData]:
        return movie_layers(movie, name=recording_stem(p)) + _zarr_labels(p)

    return reader


def _is_zarr_folder(p: Path) -> bool:
    return p.is_dir() and any((p / m).exists() for m in ("zarr.json", ".zgroup", ".zattrs"))


def movie_layers(movie: Movie, *, name: str, kind: str = "image") -> list[LayerData]:
    """Layer data for a recording: axes as axis labels, voxel size as scale, C split in layers.

    Parameters
    ----------
    movie : Movie
        The (lazy) recording.
    name : str
        Layer name.
    kind : {"image", "labels"}
        Layer type.

    Returns
    -------
    list of (data, kwargs, layer_type)
        One tuple; with a ``C`` axis an image becomes one layer per channel (``channel_axis``).
    """
    data = layer_array(movie)
    meta = layer_meta(movie)
    axes = movie.axes
    kwargs: dict[str, Any] = {"name": name, "metadata": {META_KEY: meta}}
    shown = axes
    if "C" in axes and kind == "image":
        kwargs["channel_axis"] = axes.index("C")
        shown = axes.replace("C", "")
        meta["axes"] = shown
        n = movie.shape[axes.index("C")]
        kwargs["name"] = [f"{name} [C{i}]" for i in range(n)]
        kwargs["blending"] = "additive"
    kwargs["scale"] = physical_scale(shown, movie.voxel_size)
    kwargs["axis_labels"] = list(shown.lower())
    if kind == "image":
        kwargs["contrast_limits"] = _contrast(movie)
    return [(data, kwargs, kind)]


def _contrast(movie: Movie) -> list[float]:
    from cascope.preprocess.normalization import percentile_normalization

    norm = percentile_normalization(
        movie, low=0.1, high=99.9, axes=movie.axes, max_values=2_000_000
    )
    return [norm.offset, norm.offset + norm.scale]


def _zarr_labels(p: Path) -> list[LayerData]:
    labels_dir = p / "labels"
    if not labels_dir.is_dir():
        return []
    out: list[LayerData] = []
    for sub in sorted(q for q in labels_dir.iterdir() if q.is_dir()):
        try:
            lab = read_labels(p, sub.name)
        except CascopeError as err:
            log.warning("skipping label image %s: %s", sub, err)
            continue
        out += movie_layers(lab, name=sub.name, kind="labels")
    return out
