"""npe2 writers: a labels layer to TIFF; an image with its labels to an OME-Zarr ``labels/`` group.

An existing output is copied to a backup (``name.bak-<time>``) before it is replaced.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cascope.errors import InputError
from cascope.io import write
from cascope.napari._files import back_up
from cascope.napari._layers import layer_axes, voxel_size_from

log = logging.getLogger(__name__)


def label_array(data: Any) -> NDArray[np.integer[Any]]:
    """Labels in the smallest unsigned type that holds them (uint16 or uint32)."""
    arr = np.asarray(data)
    if arr.dtype.kind not in "uib":
        raise InputError(f"labels must be integers, got {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise InputError("labels must not be negative")
    top = int(arr.max(initial=0))
    return arr.astype(np.uint16 if top < 2**16 else np.uint32, copy=False)


def write_labels(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write one labels layer to a TIFF with its axes and voxel size.

    Parameters
    ----------
    path : str
        The output (``.tif`` / ``.tiff``).
    data : array-like
        The labels.
    meta : dict
        The layer attributes napari passes (``scale``, ``metadata``, ``axis_labels``).

    Returns
    -------
    list of str
        The written path.
    """
    arr = label_array(data)
    axes = layer_axes(arr.ndim, meta.get("metadata"), meta.get("axis_labels")).replace("C", "")
    if len(axes) != arr.ndim:
        axes = layer_axes(arr.ndim, None)
    return _write_layer(path, arr, axes, meta)


def write_image_with_labels(
    path: str, layer_data: list[tuple[Any, dict[str, Any], str]]
) -> list[str]:
    """Write one image layer as OME-Zarr with every labels layer under its ``labels/`` group.

    Parameters
    ----------
    path : str
        The output store (``.zarr``).
    layer_data : list of (data, meta, layer_type)
        Exactly one image layer and any number of labels layers shaped like it.

    Returns
    -------
    list of str
        The written store.
    """
    images = [d for d in layer_data if d[2] == "image"]
    if len(images) != 1:
        raise InputError(f"select exactly one image layer to write with its labels ({len(images)})")
    data, meta, _ = images[0]
    img = np.asarray(data)
    axes = layer_axes(img.ndim, meta.get("metadata"), meta.get("axis_labels"))
    labels = {
        str(m.get("name") or f"labels{i}"): label_array(d)
        for i, (d, m, kind) in enumerate(layer_data)
        if kind == "labels"
    }
    return _write_layer(path, img, axes, meta, labels=labels)


def _write_layer(
    path: str, data: NDArray[Any], axes: str, meta: dict[str, Any], **fmt: Any
) -> list[str]:
    """Write a layer's data with its voxel size; an existing output is backed up, then replaced."""
    out = Path(path)
    replaced = back_up(out) is not None
    voxel_size = voxel_size_from(axes, meta.get("scale"), meta.get("metadata")) or None
    write(out, data, axes=axes, voxel_size=voxel_size, force=replaced, **fmt)
    return [str(out)]
