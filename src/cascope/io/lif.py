"""Leica LIF files: every series, channel, z and t, memory-mapped at the original bit depth.

readlif parses the XML header and finds each image's memory block; the pixels are then mapped
straight from the file with the byte strides the header gives (``BytesInc`` of every dimension and
channel), so nothing is read until indexed and 12-bit data stay 16-bit integers (readlif's
Pillow path, and many pipelines after it, cast to 8 bits and lose the low bits).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cascope.errors import InputError
from cascope.io._movie import Movie

#: LIF dimension ids (DimID) and the cascope axis each becomes.
_DIM_AXES = {1: "X", 2: "Y", 3: "Z", 4: "T"}
_MOSAIC = 10


def _lif(path: Path) -> Any:
    from readlif.reader import LifFile

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lif = LifFile(str(path))
    except Exception as err:
        raise InputError(
            f"is not a readable LIF file ({' '.join(str(err).split())})", path
        ) from err
    if any("truncated" in str(w.message) for w in caught):
        raise InputError("is truncated: some image blocks are missing", path)
    return lif


def list_series(path: str | Path) -> list[str]:
    """Return the names of the image series of a LIF file, in file order."""
    return [info["name"] for info in _lif(Path(path)).image_list]


def _image_element(lif: Any, index: int) -> Any:
    """Find the XML element of the ``index``-th image, in readlif's (depth-first) order."""
    found: list[Any] = []

    def walk(tree: Any) -> None:
        children = tree.findall("./Children/Element") or tree.findall("./Element")
        for item in children:
            if item.findall("./Data/Image"):
                found.append(item)
            if item.findall("./Children/Element/Data"):
                walk(item)

    walk(lif.xml_root)
    return found[index]


def read_lif(
    path: str | Path, *, series: int | str | None = None, axes: str | None = None
) -> Movie:
    """Open one image series of a Leica LIF file lazily, keeping its bit depth.

    Parameters
    ----------
    path : str or Path
        The ``.lif`` file.
    series : int or str, optional
        Series index or name (default the first); see :func:`list_series`.
    axes : str, optional
        Override the axes (rarely needed: LIF names its dimensions).

    Returns
    -------
    Movie
        Axes in ``TCZYX`` order (dimensions of length one dropped, except Y and X); dtype
        ``uint8`` for 8-bit data and ``uint16`` for 9- to 16-bit data; ``metadata["bit_depth"]``
        gives the bits per channel the microscope recorded.
    """
    path = Path(path)
    lif = _lif(path)
    names = [info["name"] for info in lif.image_list]
    if not names:
        raise InputError("holds no image series", path)
    if series is None:
        index = 0
    elif isinstance(series, str):
        if series not in names:
            raise InputError(f"has no series {series!r}; series: {names}", path)
        index = names.index(series)
    else:
        if not 0 <= series < len(names):
            raise InputError(f"has {len(names)} series; --series {series} does not exist", path)
        index = series
    info = lif.image_list[index]
    offset, block_len = lif.offsets[index]
    element = _image_element(lif, index)
    desc = element.find("./Data/Image/ImageDescription")
    dims = desc.findall("./Dimensions/DimensionDescription")
    channels = desc.findall("./Channels/ChannelDescription")
    sizes = {int(d.attrib["DimID"]): int(d.attrib["NumberOfElements"]) for d in dims}
    incs = {int(d.attrib["DimID"]): int(d.attrib["BytesInc"]) for d in dims}
    if sizes.get(_MOSAIC, 1) > 1:
        raise InputError("is a mosaic (tiled) series; cascope reads single fields only", path)
    unknown = [k for k, n in sizes.items() if k not in _DIM_AXES and n > 1]
    if unknown:
        raise InputError(f"series {names[index]!r} has unsupported LIF dimensions {unknown}", path)
    itemsize = incs.get(1, 1)
    if itemsize not in (1, 2):
        raise InputError(f"stores {itemsize} bytes per pixel; cascope reads 8- and 16-bit", path)
    dtype = np.dtype("u1" if itemsize == 1 else "<u2")
    c_incs = [int(c.attrib["BytesInc"]) for c in channels] or [0]
    c_step = c_incs[1] - c_incs[0] if len(c_incs) > 1 else 0
    if any(b - a != c_step for a, b in zip(c_incs, c_incs[1:], strict=False)):
        raise InputError("has channels at irregular byte offsets", path)
    layout: list[tuple[str, int, int]] = []  # (axis, size, byte stride) in TCZYX order
    for axis in "TCZYX":
        if axis == "C":
            layout.append(("C", len(c_incs), c_step))
            continue
        dim = next(k for k, a in _DIM_AXES.items() if a == axis)
        layout.append((axis, sizes.get(dim, 1), incs.get(dim, 0)))
    kept = [(a, n, s) for a, n, s in layout if n > 1 or a in "YX"]
    extent = c_incs[0] + sum((n - 1) * s for _, n, s in layout) + itemsize
    if path.stat().st_size < offset + extent or (block_len and block_len < extent):
        raise InputError(
            f"is truncated: series {names[index]!r} needs {extent} bytes at offset {offset}", path
        )
    raw = np.memmap(path, dtype=np.uint8, mode="r", offset=offset + c_incs[0], shape=(extent,))
    data = np.lib.stride_tricks.as_strided(
        raw[: extent - extent % itemsize].view(dtype),
        shape=tuple(n for _, n, _ in kept),
        strides=tuple(s for _, _, s in kept),
        writeable=False,
    )
    file_axes = "".join(a for a, _, _ in kept)
    if axes is not None and len(axes) != len(file_axes):
        raise InputError(
            f"axes {axes!r} name {len(axes)} dimensions but the series has {len(file_axes)} "
            f"({file_axes!r}, shape {data.shape})",
            path,
        )
    scale_x, scale_y, scale_z, scale_t = info["scale"]
    vs = {
        a: 1.0 / s
        for a, s in (("Z", scale_z), ("Y", scale_y), ("X", scale_x))
        if s and a in file_axes
    }
    rate = float(scale_t) if scale_t and "T" in file_axes else None
    meta: dict[str, Any] = {
        "format": "lif",
        "series": names[index],
        "series_index": index,
        "series_names": names,
        "bit_depth": list(info["bit_depth"]),
        "channel_luts": [c.attrib.get("LUTName", "") for c in channels],
    }
    return Movie(
        data,
        axes=(axes or file_axes).upper(),
        voxel_size=vs or None,
        frame_rate=rate,
        source=path,
        metadata=meta,
    )
