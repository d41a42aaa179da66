"""Previews of a recording for the report: projections, traces, an animated crop, an event map.

Everything is computed in one pass over the movie in blocks of frames (a movie is never loaded
whole), and the animated crop is small: at most :data:`CROP_SIDE` pixels a side and
:data:`CROP_FRAMES` frames, so a report stays light however large the recording.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

#: Largest side (pixels) of the animated crop.
CROP_SIDE = 96
#: Most frames of the animated crop.
CROP_FRAMES = 48

Box = tuple[int, int, int, int]


@dataclass
class Crop:
    """A window of the movie: frames ``t0:t1``, rows ``y0:y1``, columns ``x0:x1``."""

    t0: int
    t1: int
    y0: int
    y1: int
    x0: int
    x1: int


@dataclass
class Scan:
    """What one pass over a movie gathers."""

    mean: NDArray[np.float64]
    max: NDArray[np.float64]
    traces: NDArray[np.float64]
    crop: NDArray[np.float32]
    extra: dict[str, Any] = field(default_factory=dict)


def choose_crop(
    shape: tuple[int, ...],
    events: pd.DataFrame,
    *,
    side: int = CROP_SIDE,
    frames: int = CROP_FRAMES,
) -> Crop:
    """Pick the window of the movie with the most events.

    The busiest square of ``side`` pixels, then the busiest run of ``frames`` frames in it
    (the middle of the movie when there are no events).

    Parameters
    ----------
    shape : tuple of int
        ``(T, Y, X)`` of the movie.
    events : pandas.DataFrame
        Event table with centroid columns ``t``, ``y``, ``x``.
    side, frames : int
        Size of the window.

    Returns
    -------
    Crop
    """
    n_t, n_y, n_x = (int(s) for s in shape[:3])
    h, w, d = min(side, n_y), min(side, n_x), min(frames, n_t)
    if len(events):
        ys = np.clip(events["y"].to_numpy(np.float64), 0, n_y - 1)
        xs = np.clip(events["x"].to_numpy(np.float64), 0, n_x - 1)
        ts = np.clip(events["t"].to_numpy(np.float64), 0, n_t - 1)
        # the centre (on a coarse grid) whose window holds the most events
        best, y0, x0 = -1, 0, 0
        for cy in range(0, n_y - h + 1, max(1, h // 4)):
            for cx in range(0, n_x - w + 1, max(1, w // 4)):
                inside = int(((ys >= cy) & (ys < cy + h) & (xs >= cx) & (xs < cx + w)).sum())
                if inside > best:
                    best, y0, x0 = inside, cy, cx
        sel = ts[(ys >= y0) & (ys < y0 + h) & (xs >= x0) & (xs < x0 + w)]
        starts = np.arange(0, n_t - d + 1, max(1, d // 4))
        counts = [int(((sel >= s) & (sel < s + d)).sum()) for s in starts]
        t0 = int(starts[int(np.argmax(counts))])
    else:
        y0, x0, t0 = (n_y - h) // 2, (n_x - w) // 2, (n_t - d) // 2
    return Crop(t0, t0 + d, y0, y0 + h, x0, x0 + w)


def scan_movie(
    movie: Any, *, boxes: Sequence[Box] = (), crop: Crop | None = None, block: int = 128
) -> Scan:
    """Temporal mean and max, the mean trace inside each box, and the pixels of a crop.

    Parameters
    ----------
    movie : Movie or array-like, (T, Y, X)
        Read in blocks of ``block`` frames.
    boxes : sequence of (y0, y1, x0, x1)
        Regions whose mean intensity per frame is traced.
    crop : Crop, optional
        Window kept in memory (float32).

    Returns
    -------
    Scan
    """
    n_t = int(movie.shape[0])
    total = np.zeros(movie.shape[1:3], np.float64)
    peak = np.full(movie.shape[1:3], -np.inf)
    traces = np.zeros((len(boxes), n_t), np.float64)
    kept: list[NDArray[np.float32]] = []
    for start in range(0, n_t, block):
        frames = np.asarray(movie[start : start + block], dtype=np.float64)
        total += frames.sum(axis=0)
        np.maximum(peak, frames.max(axis=0), out=peak)
        for i, (y0, y1, x0, x1) in enumerate(boxes):
            traces[i, start : start + len(frames)] = frames[:, y0:y1, x0:x1].mean(axis=(1, 2))
        if crop is not None:
            lo, hi = max(crop.t0, start), min(crop.t1, start + len(frames))
            if lo < hi:
                kept.append(
                    frames[lo - start : hi - start, crop.y0 : crop.y1, crop.x0 : crop.x1].astype(
                        np.float32
                    )
                )
    crop_px = np.concatenate(kept) if kept else np.zeros((0, 0, 0), np.float32)
    return Scan(total / max(n_t, 1), peak, traces, crop_px)


def contrast(*images: NDArray[Any], low: float = 1.0, high: float = 99.7) -> tuple[float, float]:
    """Display limits shared by several images: percentiles of all their finite pixels."""
    values = np.concatenate([np.asarray(im, np.float64).ravel() for im in images])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values, [low, high])
    return float(lo), float(hi if hi > lo else lo + 1.0)


def _to_uint8(frames: NDArray[Any], lo: float, hi: float) -> NDArray[np.uint8]:
    scaled = (np.asarray(frames, np.float64) - lo) / (hi - lo)
    return np.asarray(np.clip(np.nan_to_num(scaled) * 255.0 + 0.5, 0, 255), np.uint8)


def write_animation(
    panels: list[NDArray[Any]], path: str | Path, *, fps: float = 10.0, gap: int = 3
) -> Path:
    """Write crops side by side as one looping animated WebP, all with the same contrast.

    Parameters
    ----------
    panels : list of ndarray, (T, H, W)
        Crops of equal shape (e.g. raw and denoised).
    path : str or Path
        The ``.webp`` (or ``.gif``) file to write.
    fps : float
        Playback speed.
    gap : int
        White pixels between panels.

    Returns
    -------
    Path
        The written file.
    """
    import imageio.v3 as iio

    lo, hi = contrast(*panels)
    frames = [_to_uint8(p, lo, hi) for p in panels]
    n_t, h, _ = frames[0].shape
    white = np.full((n_t, h, gap), 255, np.uint8)
    pieces: list[NDArray[np.uint8]] = []
    for i, f in enumerate(frames):
        if i:
            pieces.append(white)
        pieces.append(f)
    movie = np.concatenate(pieces, axis=2)
    out = Path(path)
    options: dict[str, Any] = {"duration": int(round(1000.0 / fps)), "loop": 0}
    if out.suffix.lower() == ".webp":
        options["quality"] = 80
    iio.imwrite(out, movie, extension=out.suffix, **options)
    return out


def event_id_map(labels: Any, *, block: int = 128) -> NDArray[np.int64]:
    """Return the id of the last event at each pixel of a (T, Y, X) event label movie (0: none)."""
    n_t = int(labels.shape[0])
    ids = np.zeros(labels.shape[1:3], np.int64)
    for start in range(0, n_t, block):
        lab = np.asarray(labels[start : start + block])
        hit = lab > 0
        any_hit = hit.any(axis=0)
        if not any_hit.any():
            continue
        last = lab.shape[0] - 1 - np.argmax(hit[::-1], axis=0)
        value = np.take_along_axis(lab, last[None], axis=0)[0]
        ids[any_hit] = value[any_hit]
    return ids
