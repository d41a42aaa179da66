"""Study manifests: one row per recording, from a CSV or YAML file, a folder or a glob.

A manifest row has ``path`` (required) and optional ``id``, ``condition``, ``subject`` (the cell
or animal measured in several conditions, for paired tests), ``frame_rate``, ``axes`` and
``dataset``; every other column is carried into the study's tables. Relative paths in a manifest
file are taken relative to the file's folder. A folder or a glob is a manifest without conditions.
"""

from __future__ import annotations

import glob as globlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cascope.errors import InputError
from cascope.io import recording_stem

#: Columns with a meaning of their own; any other column is carried along as it is.
KNOWN_COLUMNS = ("path", "id", "condition", "subject", "frame_rate", "axes", "dataset")

#: File suffixes of recordings found in a folder or by a glob.
RECORDING_SUFFIXES = (".tif", ".tiff", ".zarr", ".h5", ".hdf5", ".lif")

_SAFE_ID = re.compile(r"[^A-Za-z0-9._+-]+")


@dataclass(frozen=True)
class Recording:
    """One row of a manifest.

    Attributes
    ----------
    id : str
        Unique name; the recording's folder is ``recordings/<id>``.
    path : Path
        The recording (absolute).
    condition, subject : str or None
        Experimental condition, and the cell/animal measured in several conditions.
    frame_rate : float or None
        Frames per second when the file does not record it.
    axes, dataset : str or None
        Axes when the file does not record them; dataset inside an HDF5 file.
    extra : dict
        Any other manifest column.
    """

    id: str
    path: Path
    condition: str | None = None
    subject: str | None = None
    frame_rate: float | None = None
    axes: str | None = None
    dataset: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def columns(self) -> dict[str, Any]:
        """Return the manifest columns that tag this recording's rows in the study tables."""
        return {
            "recording": self.id,
            "condition": self.condition,
            "subject": self.subject,
            **self.extra,
        }


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _text(value: Any) -> str | None:
    return None if _blank(value) else str(value).strip()


def _default_id(path: Path) -> str:
    """Name a recording from its path: a simulation folder's name, else the file stem."""
    name = path.name
    if name.lower() in ("noisy.tif", "noisy.tiff"):
        name = path.parent.name
    return recording_stem(name) or name


def _rows_from_table(path: Path) -> list[dict[str, Any]]:
    import pandas as pd
    import yaml

    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            doc = yaml.safe_load(path.read_text())
            if isinstance(doc, dict):
                doc = doc.get("recordings")
            if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
                raise InputError(
                    "a YAML manifest is a list of recordings (path: ..., condition: ...) or "
                    "a mapping with such a list under 'recordings'",
                    path,
                )
            return [dict(r) for r in doc]
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (yaml.YAMLError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputError(f"is not a readable manifest: {' '.join(str(err).split())}", path) from err
    except pd.errors.EmptyDataError:
        raise InputError("is an empty manifest", path) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.to_dict(orient="records")


def _row(raw: dict[str, Any], base: Path, source: Path, line: int) -> Recording:
    where = f"row {line}"
    text = _text(raw.get("path"))
    if text is None:
        raise InputError(f"{where} has no path (the 'path' column is required)", source)
    p = Path(text).expanduser()
    path = (p if p.is_absolute() else base / p).resolve()
    rate: float | None = None
    if not _blank(raw.get("frame_rate")):
        try:
            rate = float(raw["frame_rate"])
        except (TypeError, ValueError):
            rate = math.nan
        if not (math.isfinite(rate) and rate > 0):
            raise InputError(
                f"{where}: frame_rate must be a positive number of Hz, got {raw['frame_rate']!r}",
                source,
            )
    ident = _text(raw.get("id")) or _default_id(path)
    safe = _SAFE_ID.sub("_", ident).strip("._")
    if not safe:
        raise InputError(f"{where}: id {ident!r} cannot name a folder", source)
    extra = {str(k): v for k, v in raw.items() if k not in KNOWN_COLUMNS and not _blank(k)}
    return Recording(
        id=safe,
        path=path,
        condition=_text(raw.get("condition")),
        subject=_text(raw.get("subject")),
        frame_rate=rate,
        axes=_text(raw.get("axes")),
        dataset=_text(raw.get("dataset")),
        extra=extra,
    )


def _found(paths: list[Path]) -> list[dict[str, Any]]:
    rows = []
    for p in sorted(paths):
        if (p / "noisy.tif").is_file():  # a `cascope simulate` folder
            rows.append({"path": str(p / "noisy.tif"), "id": p.name})
        elif p.name.lower().endswith(RECORDING_SUFFIXES) and not p.name.startswith("."):
            rows.append({"path": str(p)})
    return rows


def read_manifest(source: str | Path) -> list[Recording]:
    """Read the recordings of a study.

    Parameters
    ----------
    source : str or Path
        A ``.csv`` or ``.yaml`` manifest, a folder of recordings (every ``.tif``, ``.zarr``,
        ``.h5``, ``.lif`` and simulation folder in it) or a glob pattern (``data/*.tif``).

    Returns
    -------
    list of Recording
        In manifest order; ids are unique.

    Raises
    ------
    InputError
        No recording, a row without a path, a bad frame rate or two rows with one id; the
        message names the manifest and the row. Whether each file can be read is checked when
        the recording is processed, so one bad file does not stop the others.
    """
    text = str(source)
    path = Path(text).expanduser()
    if any(ch in text for ch in "*?[") and not path.exists():
        rows = _found([Path(p).resolve() for p in globlib.glob(str(path))])
        base, origin = Path.cwd(), path
    elif path.is_dir() and not path.name.lower().endswith(".zarr"):
        rows = _found(list(path.resolve().iterdir()))
        base, origin = path.resolve(), path
    elif path.is_file() and path.suffix.lower() in (".csv", ".yaml", ".yml"):
        rows = _rows_from_table(path)
        base, origin = path.resolve().parent, path
    elif path.exists():
        raise InputError(
            "is not a manifest: give a .csv or .yaml file, a folder of recordings or a glob",
            path,
        )
    else:
        raise InputError("does not exist (the study manifest)", path)
    recordings = [_row(r, base, origin, i + 1) for i, r in enumerate(rows)]
    if not recordings:
        raise InputError("lists no recording", origin)
    seen: dict[str, int] = {}
    for i, rec in enumerate(recordings):
        if rec.id in seen:
            raise InputError(
                f"rows {seen[rec.id] + 1} and {i + 1} have the same id {rec.id!r}; give each "
                "recording its own id (the 'id' column)",
                origin,
            )
        seen[rec.id] = i
    return recordings
