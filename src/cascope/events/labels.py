"""Streamed labelling: score movie -> events by threshold, 3D components, size filter, table.

Long movies are processed in time blocks with a halo. Components are found in the block plus its
halo, and a component is reported by the block that owns its first frame (the start of its
bounding box), as StarDist's ``big.py`` does for tiles: an event crossing a block border is
therefore reported exactly once, with the same voxels as in whole-movie detection, as long as
no event is longer than the halo.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from cascope.io.event_table import DETECTION_COLUMNS

log = logging.getLogger(__name__)

#: Smallest event kept: bounding-box extent in (frames, pixels, pixels).
MIN_SIZE = (2, 3, 3)

#: Columns of a detected event table (:data:`cascope.io.event_table.DETECTION_COLUMNS`).
TABLE_COLUMNS = DETECTION_COLUMNS


def _components(mask: NDArray[np.bool_], connectivity: int) -> NDArray[np.uint32]:
    import cc3d

    if connectivity not in (6, 18, 26):
        raise ValueError("connectivity must be 6, 18 or 26")
    out = cc3d.connected_components(  # type: ignore[call-overload]
        np.ascontiguousarray(mask), connectivity=connectivity
    )
    return np.asarray(out, dtype=np.uint32)


@dataclass
class _Component:
    box: tuple[slice, slice, slice]
    voxels: NDArray[np.bool_]
    weights: NDArray[np.float32]


def _iter_components(
    labels: NDArray[np.uint32], scores: NDArray[np.float32], min_size: Sequence[int]
) -> list[_Component]:
    from scipy import ndimage

    out = []
    for i, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        ext = [sl.stop - sl.start for sl in box]
        if any(e < m for e, m in zip(ext, min_size, strict=True)):
            continue
        vox = labels[box] == i
        out.append(_Component(box, vox, scores[box]))  # type: ignore[arg-type]
    return out


def _row(comp: _Component, eid: int, t0: int) -> dict[str, Any]:
    tt, yy, xx = np.nonzero(comp.voxels)
    w = comp.weights[comp.voxels].astype(np.float64)
    w = np.clip(w, 0.0, None)
    if w.sum() <= 0:
        w = np.ones_like(w)
    bt, by, bx = comp.box
    return {
        "id": eid,
        "t": t0 + bt.start + float(np.average(tt, weights=w)),
        "y": by.start + float(np.average(yy, weights=w)),
        "x": bx.start + float(np.average(xx, weights=w)),
        "t_start": t0 + bt.start,
        "t_end": t0 + bt.stop,
        "y_start": by.start,
        "y_end": by.stop,
        "x_start": bx.start,
        "x_end": bx.stop,
        "area": int(comp.voxels.sum()),
        "score_mean": float(comp.weights[comp.voxels].mean()),
        "score_max": float(comp.weights[comp.voxels].max()),
    }


def label_events(
    scores: ArrayLike,
    *,
    threshold: float,
    min_size: Sequence[int] = MIN_SIZE,
    connectivity: int = 26,
) -> tuple[NDArray[np.uint32], pd.DataFrame]:
    """Threshold a (T, Y, X) score movie and return event labels and the event table.

    Parameters
    ----------
    scores : array-like, (T, Y, X)
        Event probability (or any score where larger means more event-like).
    threshold : float
        Voxels with ``score > threshold`` are event voxels.
    min_size : sequence of int
        Components whose bounding box is shorter than this in any axis are dropped.
    connectivity : {6, 18, 26}
        3D connectivity of the components.

    Returns
    -------
    labels : ndarray of uint32, (T, Y, X)
        Event ids 1..N in order of their first frame (0: no event).
    table : pandas.DataFrame
        One row per event: ``id``, weighted centroid ``t, y, x`` (weights = scores), bounding box
        (end exclusive), ``area`` (voxels), ``score_mean``, ``score_max``.

    Examples
    --------
    >>> s = np.zeros((10, 8, 8), np.float32)
    >>> s[2:5, 2:5, 3:6] = 0.9
    >>> lab, tab = label_events(s, threshold=0.5)
    >>> tab[["t", "y", "x", "area"]].values.tolist()
    [[3.0, 3.0, 4.0, 27.0]]
    """
    sc = np.asarray(scores, dtype=np.float32)
    if sc.ndim != 3:
        raise ValueError(f"scores must be (T, Y, X), got shape {sc.shape}")
    det = StreamingDetector(
        sc.shape,
        threshold=threshold,
        block=sc.shape[0],
        halo=0,
        min_size=min_size,
        connectivity=connectivity,
        labels_out=np.zeros(sc.shape, np.uint32),
    )
    det.write(sc, 0)
    table = det.finish()
    assert det.labels_out is not None
    return det.labels_out, table


class StreamingDetector:
    """Detect events in score blocks that arrive in time order (a ``BlockWriter``).

    Blocks of any size may be written; detection runs on its own blocks of ``block`` frames
    with ``halo`` frames of context on each side and keeps only the frames it still needs, so
    memory is bounded by ``block + 2 * halo`` frames.

    Parameters
    ----------
    shape : tuple of int
        Shape ``(T, Y, X)`` of the whole score movie.
    threshold : float
        Event voxels have ``score > threshold``.
    block : int
        Frames owned by each detection block.
    halo : int
        Context frames on each side; events longer than this may be cut (a warning is logged).
    min_size, connectivity
        As in :func:`label_events`.
    labels_out : array-like, optional
        ``(T, Y, X)`` integer array (ndarray, memmap, zarr) receiving the event ids.
    """

    def __init__(
        self,
        shape: Sequence[int],
        *,
        threshold: float,
        block: int = 256,
        halo: int = 32,
        min_size: Sequence[int] = MIN_SIZE,
        connectivity: int = 26,
        labels_out: Any = None,
    ) -> None:
        if block < 1 or halo < 0:
            raise ValueError("block must be >= 1 and halo >= 0")
        self.shape = tuple(int(s) for s in shape)
        self.threshold = float(threshold)
        self.block, self.halo = int(block), int(halo)
        self.min_size = tuple(int(m) for m in min_size)
        self.connectivity = connectivity
        self.labels_out = labels_out
        self._buf: list[NDArray[np.float32]] = []
        self._buf_start = 0
        self._buf_end = 0
        self._cur = 0
        self._rows: list[dict[str, Any]] = []
        self.truncated = 0

    def write(self, block: NDArray[Any], start: int) -> None:
        """Receive frames ``start .. start + len(block)`` (in order) and detect what is ready."""
        if start != self._buf_end:
            raise ValueError(f"blocks must arrive in order: expected {self._buf_end}, got {start}")
        arr = np.asarray(block, dtype=np.float32)
        if arr.shape[1:] != self.shape[1:]:
            raise ValueError(f"block frames {arr.shape[1:]} differ from {self.shape[1:]}")
        self._buf.append(arr)
        self._buf_end += arr.shape[0]
        self._drain()

    def finish(self) -> pd.DataFrame:
        """Detect the remaining blocks and return the whole event table."""
        if self._buf_end != self.shape[0]:
            raise ValueError(f"received {self._buf_end} of {self.shape[0]} frames")
        self._drain()
        if self.truncated:
            log.warning(
                "%d events were longer than the %d-frame halo and may be cut at block borders",
                self.truncated,
                self.halo,
            )
        return pd.DataFrame(self._rows, columns=TABLE_COLUMNS)

    def _drain(self) -> None:
        n = self.shape[0]
        while self._cur < n and self._buf_end >= min(n, self._cur + self.block + self.halo):
            own = (self._cur, min(self._cur + self.block, n))
            lo, hi = max(0, own[0] - self.halo), min(n, own[1] + self.halo)
            self._detect(self._window(lo, hi), lo, hi, own)
            self._cur = own[1]
            self._drop_before(self._cur - self.halo)

    def _window(self, lo: int, hi: int) -> NDArray[np.float32]:
        data = np.concatenate(self._buf, axis=0) if len(self._buf) > 1 else self._buf[0]
        self._buf = [data]
        return data[lo - self._buf_start : hi - self._buf_start]

    def _drop_before(self, t: int) -> None:
        if t <= self._buf_start or not self._buf:
            return
        data = np.concatenate(self._buf, axis=0) if len(self._buf) > 1 else self._buf[0]
        cut = min(t - self._buf_start, data.shape[0])
        self._buf = [data[cut:]]
        self._buf_start += cut

    def _detect(self, window: NDArray[np.float32], lo: int, hi: int, own: tuple[int, int]) -> None:
        rows, comps, truncated = owned_events(
            window,
            lo=lo,
            own=own,
            n_frames=self.shape[0],
            threshold=self.threshold,
            min_size=self.min_size,
            connectivity=self.connectivity,
            first_id=len(self._rows) + 1,
        )
        self.truncated += truncated
        self._rows.extend(rows)
        if self.labels_out is not None:
            for row, comp in zip(rows, comps, strict=True):
                bt, by, bx = comp.box
                target = (slice(lo + bt.start, lo + bt.stop), by, bx)
                cur = np.asarray(self.labels_out[target])
                self.labels_out[target] = np.where(comp.voxels, row["id"], cur).astype(cur.dtype)


def owned_events(
    window: NDArray[np.float32],
    *,
    lo: int,
    own: tuple[int, int],
    n_frames: int,
    threshold: float,
    min_size: Sequence[int] = MIN_SIZE,
    connectivity: int = 26,
    first_id: int = 1,
) -> tuple[list[dict[str, Any]], list[_Component], int]:
    """Events of one detection block: components of its window that the block owns.

    A component belongs to the block that owns its first frame, so blocks computed anywhere
    (in order here, or on Dask workers) report every event once. This is the one ownership
    rule of block-wise detection.

    Parameters
    ----------
    window : ndarray of float32, (T, Y, X)
        Scores of frames ``lo .. lo + len(window)``: the block with its halo.
    lo : int
        First frame of ``window`` in the movie.
    own : tuple of int
        Frames ``(start, stop)`` the block owns.
    n_frames : int
        Length of the movie (an event reaching the window's end before it may be cut).
    threshold, min_size, connectivity
        As in :func:`label_events`.
    first_id : int
        Id of the block's first event; the others follow in order of their first frame.

    Returns
    -------
    rows : list of dict
        One table row per owned event (columns of :data:`TABLE_COLUMNS`).
    components : list
        Each event's bounding box ``box`` (in the window) and ``voxels`` mask, for labels.
    truncated : int
        Owned events reaching the end of the window (possibly longer than the halo).
    """
    hi = lo + int(window.shape[0])
    labels = _components(window > threshold, connectivity)
    rows: list[dict[str, Any]] = []
    comps: list[_Component] = []
    truncated = 0
    for comp in _iter_components(labels, window, min_size):
        first = lo + comp.box[0].start
        if not own[0] <= first < own[1]:
            continue  # another block owns it
        if comp.box[0].stop + lo == hi and hi < n_frames:
            truncated += 1
        rows.append(_row(comp, first_id + len(rows), lo))
        comps.append(comp)
    return rows, comps, truncated


def detect_in_blocks(
    scores: Any,
    *,
    threshold: float,
    block: int,
    halo: int,
    min_size: Sequence[int] = MIN_SIZE,
    connectivity: int = 26,
    labels_out: Any = None,
) -> pd.DataFrame:
    """Run :func:`label_events` block-wise over a (T, Y, X) array-like."""
    n = int(scores.shape[0])
    det = StreamingDetector(
        scores.shape,
        threshold=threshold,
        block=block,
        halo=halo,
        min_size=min_size,
        connectivity=connectivity,
        labels_out=labels_out,
    )
    for s in range(0, n, block):
        det.write(np.asarray(scores[s : s + block], dtype=np.float32), s)
    return det.finish()
