"""Which format a path holds, from its suffix or, for a folder, its content."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Literal

from cascope.errors import InputError
from cascope.io._limits import check_input_path

Format = Literal["tiff", "tiff-sequence", "hdf5", "zarr", "lif"]

_SUFFIX_FORMAT: dict[str, Format] = {
    ".tif": "tiff",
    ".tiff": "tiff",
    ".btf": "tiff",
    ".tf8": "tiff",
    ".tf2": "tiff",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".hdf": "hdf5",
    ".he5": "hdf5",
    ".zarr": "zarr",
    ".lif": "lif",
}


def detect_format(path: str | Path, *, for_writing: bool = False) -> Format:
    """Name the format of a path from its suffix (or, for a folder, its content).

    Parameters
    ----------
    path : str or Path
        A file, a folder (zarr store or folder of one-frame TIFFs) or a glob of TIFFs.
    for_writing : bool
        Only consider the suffix (the output does not exist yet).

    Returns
    -------
    str
        One of ``"tiff"``, ``"tiff-sequence"``, ``"hdf5"``, ``"zarr"``, ``"lif"``.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if not for_writing:
        check_input_path(p)
        if glob.has_magic(str(path)) and not p.exists():
            return "tiff-sequence"
        if p.is_dir():
            if suffix == ".zarr" or any(
                (p / m).exists() for m in ("zarr.json", ".zgroup", ".zarray")
            ):
                return "zarr"
            return "tiff-sequence"
    fmt = _SUFFIX_FORMAT.get(suffix)
    if fmt is None or (for_writing and fmt == "lif"):
        known = ", ".join(sorted({s for s, f in _SUFFIX_FORMAT.items() if f != "lif"}))
        what = "write" if for_writing else "read"
        raise InputError(
            f"unknown file type {suffix or '(no suffix)'!r}; cascope can {what} {known}"
            + ("" if for_writing else ", .lif and folders of TIFF frames"),
            path,
        )
    return fmt


#: Suffixes of two parts that name a format (stripped whole from a recording's name).
_DOUBLE_SUFFIXES = (".ome.tiff", ".ome.tif", ".ome.zarr")


def recording_stem(path: str | Path) -> str:
    """Name a recording after its file: the name without its suffix (``.ome.tif`` as one).

    Examples
    --------
    >>> recording_stem("data/cell1.ome.tif"), recording_stem("cell2.h5")
    ('cell1', 'cell2')
    """
    p = Path(path)
    for suffix in _DOUBLE_SUFFIXES:
        if p.name.lower().endswith(suffix):
            return p.name[: -len(suffix)]
    return p.stem
