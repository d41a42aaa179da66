"""The mSCT training layout in HDF5: ``train|valid/<stream-id>/{input, label, events}``.

Each stream is one recording: ``input`` [N, H, W] float32 frames, ``label`` [N, H, W] uint16 event
instance labels (0 background), ``events`` [M, 7] rows ``(id, t1, t2, y1, y2, x1, x2)``: the
instance id and its bounding box in frames and pixels (end exclusive).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from cascope.errors import InputError
from cascope.io._atomic import atomic_output
from cascope.io._limits import check_present
from cascope.io.event_table import MSCT_H5_COLUMNS as EVENT_COLUMNS

Split = Literal["train", "valid"]
SPLITS: tuple[Split, ...] = ("train", "valid")


@dataclass(frozen=True)
class MsctStream:
    """One training recording with its event labels.

    Parameters
    ----------
    input : ndarray
        Frames, shape (N, H, W), float32.
    label : ndarray
        Event instance labels, shape (N, H, W), uint16 (0 is background).
    events : ndarray
        Event table, shape (M, 7): ``id, t1, t2, y1, y2, x1, x2``.
    """

    input: NDArray[np.float32]
    label: NDArray[np.uint16]
    events: NDArray[np.int64]

    def validate(self, name: str = "stream", path: str | Path | None = None) -> None:
        """Raise :class:`InputError` when shapes or types break the layout."""
        if self.input.ndim != 3:
            raise InputError(f"{name}: input must be (N, H, W), got shape {self.input.shape}", path)
        if self.label.shape != self.input.shape:
            raise InputError(
                f"{name}: label shape {self.label.shape} differs from input {self.input.shape}",
                path,
            )
        if self.events.ndim != 2 or self.events.shape[1] != 7:
            raise InputError(f"{name}: events must be (M, 7), got {self.events.shape}", path)
        if self.label.dtype.kind not in "ui":
            raise InputError(f"{name}: label must be integer, got {self.label.dtype}", path)
        if len(self.events):
            n, h, w = self.input.shape
            ev = self.events
            bad = (
                (ev[:, 1] < 0)
                | (ev[:, 2] > n)
                | (ev[:, 3] < 0)
                | (ev[:, 4] > h)
                | (ev[:, 5] < 0)
                | (ev[:, 6] > w)
                | (ev[:, 1] >= ev[:, 2])
                | (ev[:, 3] >= ev[:, 4])
                | (ev[:, 5] >= ev[:, 6])
            )
            if bad.any():
                row = ev[np.argmax(bad)].tolist()
                raise InputError(f"{name}: event box {row} lies outside the frames {n, h, w}", path)

    @classmethod
    def from_arrays(cls, input: Any, label: Any, events: Any) -> MsctStream:
        """Build a stream converting to the layout's types (float32, uint16, int64)."""
        return cls(
            np.asarray(input, dtype=np.float32),
            np.asarray(label, dtype=np.uint16),
            np.asarray(events, dtype=np.int64).reshape(-1, 7),
        )


def events_from_labels(label: NDArray[Any]) -> NDArray[np.int64]:
    """Compute the event table (id and bounding box) from an instance label movie."""
    from scipy import ndimage

    rows = []
    for i, box in enumerate(ndimage.find_objects(np.asarray(label)), start=1):
        if box is not None:
            t, y, x = box
            rows.append([i, t.start, t.stop, y.start, y.stop, x.start, x.stop])
    return np.asarray(rows, dtype=np.int64).reshape(-1, 7)


def write_msct_h5(
    path: str | Path,
    streams: Mapping[str, Mapping[str, MsctStream]],
    *,
    force: bool = False,
    inputs: Iterable[str | Path] = (),
) -> Path:
    """Write streams in the mSCT training layout, atomically.

    Parameters
    ----------
    path : str or Path
        The ``.h5`` file.
    streams : mapping
        ``{"train": {id: MsctStream}, "valid": {...}}``; either split may be missing.
    force : bool
        Replace an existing file.
    inputs : iterable of paths
        Files the output must never replace.

    Returns
    -------
    Path
        The written file.
    """
    from cascope.io.hdf5 import close_hdf5_output, open_hdf5_output

    unknown = sorted(set(streams) - set(SPLITS))
    if unknown:
        raise InputError(f"unknown split(s) {unknown}; use 'train' and 'valid'", path)
    for split, group in streams.items():
        for sid, stream in group.items():
            stream.validate(f"{split}/{sid}", path)
    with atomic_output(path, inputs=inputs, force=force) as tmp:
        f, sink = open_hdf5_output(tmp)
        try:
            f.attrs["layout"] = "cascope-msct"
            f.attrs["event_columns"] = ",".join(EVENT_COLUMNS)
            for split, group in streams.items():
                g = f.require_group(split)
                for sid, stream in group.items():
                    s = g.create_group(str(sid))
                    chunk = (1, *stream.input.shape[1:])
                    s.create_dataset("input", data=stream.input.astype(np.float32), chunks=chunk)
                    s.create_dataset("label", data=stream.label.astype(np.uint16), chunks=chunk)
                    s.create_dataset("events", data=stream.events.astype(np.int64))
        except Exception as err:
            close_hdf5_output(f, sink, err)
            raise
        close_hdf5_output(f, sink)
    return Path(path)


def read_msct_h5(path: str | Path) -> dict[str, dict[str, MsctStream]]:
    """Read a file in the mSCT training layout into memory, validating every stream.

    Parameters
    ----------
    path : str or Path
        The ``.h5`` file.

    Returns
    -------
    dict
        ``{split: {stream id: MsctStream}}`` for the splits present.
    """
    from cascope.io.hdf5 import open_hdf5_input

    path = Path(path)
    check_present(path)
    f = open_hdf5_input(path)
    out: dict[str, dict[str, MsctStream]] = {}
    with f:
        splits = [s for s in SPLITS if s in f]
        if not splits:
            raise InputError(f"has no 'train' or 'valid' group (groups: {list(f)})", path)
        for split in splits:
            out[split] = {}
            for sid, g in f[split].items():
                missing = [k for k in ("input", "label", "events") if k not in g]
                if missing:
                    raise InputError(f"{split}/{sid} lacks dataset(s) {missing}", path)
                stream = MsctStream(g["input"][...], g["label"][...], g["events"][...])
                stream.validate(f"{split}/{sid}", path)
                out[split][sid] = stream
    return out
