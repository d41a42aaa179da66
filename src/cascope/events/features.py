"""Per-event features: kinetics, size, shape, intensity profile, neighbourhood and ROI.

Every feature is computed from the recording and the event label movie. ``ΔF`` uses a per-pixel
resting image ``F0`` (default: the temporal median of the movie, given or computed in one pass);
ΔF/F divides by the event footprint's resting level ``F0_fp`` (the mean of ``F0`` over the pixels
the event ever covers), never by a single pixel's, so one dark pixel cannot make it explode. The
intensity profile of an event is the footprint's ΔF/F in every frame from a few frames before its
start to a few after its end.

ΔF/F is only as good as its baseline. An event's baseline is *reliable* when ``F0_fp`` stands
clearly above the dark level, ``F0_fp > min_snr * sigma_fp`` (``sigma_fp``: per-frame noise of the
footprint's mean trace, from each pixel's noise), and its peak ΔF/F is below a physiological
bound (``max_dff``). Otherwise every ΔF/F feature of the event is NaN, ``baseline_reliable`` is
False and ``dff_note`` says why; kinetics (rise, decay), size, shape and intensities do not depend
on the baseline's scale and are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from cascope.errors import InputError
from cascope.io.event_table import EVENT_COLUMNS

log = logging.getLogger(__name__)

#: Frames of context before and after an event in its intensity profile.
PROFILE_PAD = (2, 10)


#: Largest plausible ΔF/F of a calcium event: bright genetically encoded indicators (GCaMP6-8)
#: reach a few tens at saturation; a larger value comes from a baseline near the dark level.
MAX_DFF = 20.0

#: Smallest ratio of an event's resting level to its noise for a reliable ΔF/F.
MIN_BASELINE_SNR = 3.0

#: Columns of a feature table, in order (``roi`` follows ``dff_note`` when ROIs are given).
ROW_COLUMNS: tuple[str, ...] = (
    *EVENT_COLUMNS, "footprint_area", "duration_frames", "duration_s", "dff_peak", "dff_mean",
    "rise_time_frames", "rise_time_s", "decay_tau_frames", "decay_tau_s", "intensity_mean",
    "intensity_max", "major_axis_length", "minor_axis_length", "solidity", "aspect",
    "spatial_aspect", "profile", "profile_integral", "profile_max", "profile_std",
    "baseline_f0", "baseline_reliable", "dff_note",
)  # fmt: skip
#: Columns that are NaN when an event's baseline is not reliable.
DFF_COLUMNS: tuple[str, ...] = (
    "dff_peak", "dff_mean", "profile", "profile_integral", "profile_max", "profile_std"
)  # fmt: skip
NEIGHBOUR_COLUMNS: tuple[str, ...] = (
    "nn_distance_3d", "nn_distance_2d", "local_count", "local_frequency_hz"
)  # fmt: skip


def _peak(profile: ArrayLike) -> tuple[NDArray[np.float64], int, float]:
    """Return a trace as float64, the index of its maximum and the maximum."""
    y = np.asarray(profile, dtype=np.float64)
    k = int(np.argmax(y))
    return y, k, float(y[k])


def rise_time(profile: ArrayLike, *, low: float = 0.1, high: float = 0.9) -> float:
    """Time (frames) from ``low`` to ``high`` of the peak on the rising edge, interpolated.

    Parameters
    ----------
    profile : array-like, (N,)
        Trace with a baseline of 0 (e.g. ΔF/F).
    low, high : float
        Fractions of the peak.

    Returns
    -------
    float
        NaN when the trace has no positive peak.

    Examples
    --------
    >>> rise_time([0, 0, 1, 2, 3, 4, 5, 4, 3])
    4.0
    """
    y, k, peak = _peak(profile)
    if not peak > 0:
        return float("nan")

    def crossing(level: float) -> float:
        # last sample before the peak that is still below the level, then interpolate
        below = np.flatnonzero(y[: k + 1] < level)
        if below.size == 0:
            return 0.0
        i = int(below[-1])
        if i >= k:
            return float(k)
        return i + (level - y[i]) / (y[i + 1] - y[i])

    return float(crossing(high * peak) - crossing(low * peak))


def decay_tau(profile: ArrayLike, *, floor: float = 0.1) -> float:
    """Decay time constant (frames) of a trace after its peak, by a least-squares exponential fit.

    Samples from the peak until the trace first falls below ``floor`` × peak are fitted with
    ``A exp(-t / tau)``.

    Parameters
    ----------
    profile : array-like, (N,)
        Trace with a baseline of 0.
    floor : float
        Fraction of the peak where the fit stops.

    Returns
    -------
    float
        NaN when fewer than 3 samples decay.

    Examples
    --------
    >>> round(decay_tau(np.exp(-np.arange(20) / 4.0)), 3)
    4.0
    """
    from scipy.optimize import curve_fit

    y, k, peak = _peak(profile)
    if not peak > 0:
        return float("nan")
    tail = y[k:]
    stop = np.flatnonzero(tail < floor * peak)
    seg = tail[: int(stop[0])] if stop.size else tail
    if seg.size < 3:
        return float("nan")
    t = np.arange(seg.size, dtype=np.float64)
    pos = seg > 0
    slope = np.polyfit(t[pos], np.log(seg[pos]), 1)[0] if pos.sum() >= 2 else -1.0
    tau0 = float(np.clip(-1.0 / slope if slope < 0 else seg.size, 1e-2, 1e3))
    try:
        (_, tau), _ = curve_fit(
            lambda x, a, tau: a * np.exp(-x / tau),
            t,
            seg,
            p0=(peak, tau0),
            bounds=([0, 1e-3], [np.inf, 1e4]),
            maxfev=2000,
        )
    except (RuntimeError, ValueError):
        return tau0
    return float(tau)


def _shape_2d(footprint: NDArray[np.bool_]) -> tuple[float, float, float]:
    from skimage.measure import regionprops

    props = regionprops(footprint.astype(np.uint8))[0]
    return (
        float(props.axis_major_length),
        float(props.axis_minor_length),
        float(props.solidity),
    )


def _aspect_3d(voxels: NDArray[np.bool_]) -> float:
    pts = np.argwhere(voxels).astype(np.float64)
    if len(pts) < 2:
        return float("nan")
    ev = np.linalg.eigvalsh(np.cov(pts.T) + 1e-12 * np.eye(3))
    ev = np.clip(ev, 1e-12, None)
    return float(np.sqrt(ev[-1] / ev[0]))


def _resting_images(data: Any, block: int = 64) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Temporal median and per-frame noise (:func:`~cascope.events.noise_sigma`) of each pixel.

    Long movies: the median and noise of each block of ``block`` frames, then the median over
    blocks, which bounds memory.
    """
    from cascope.preprocess.dff import noise_sigma

    n = int(data.shape[0])
    if n * int(np.prod(data.shape[1:])) <= 50_000_000:
        arr = np.asarray(data, dtype=np.float32)
        rows = max(1, 4_000_000 // max(1, n * int(arr.shape[2])))  # float64 work in row bands
        sigma = np.concatenate(
            [noise_sigma(arr[:, y : y + rows], axis=0) for y in range(0, arr.shape[1], rows)]
        )
        return np.median(arr, axis=0).astype(np.float64), sigma
    meds, sigmas = [], []
    for s in range(0, n, block):
        part = np.asarray(data[s : s + block + 1], np.float32)
        meds.append(np.median(part, axis=0))
        sigmas.append(noise_sigma(part, axis=0))
    return (
        np.median(np.stack(meds), axis=0).astype(np.float64),
        np.median(np.stack(sigmas), axis=0).astype(np.float64),
    )


def _baseline_check(
    f0_fp: float, sigma_fp: float, dff_peak: float, *, min_snr: float, max_dff: float
) -> str:
    """Why an event's ΔF/F cannot be trusted ("" when it can)."""
    if not f0_fp > 0:
        return f"resting level {f0_fp:.3g} is not above the dark level"
    if not f0_fp > min_snr * sigma_fp:
        return f"resting level {f0_fp:.3g} is within {min_snr:g} noise sd ({sigma_fp:.3g}) of dark"
    if not dff_peak <= max_dff:
        return f"peak ΔF/F {dff_peak:.3g} exceeds the physiological bound {max_dff:g}"
    return ""


def _event_boxes(labels: Any, block: int = 256) -> list[tuple[slice, slice, slice] | None]:
    """``scipy.ndimage.find_objects`` of a (T, Y, X) label array, read in time blocks.

    An in-memory array is searched whole; any other array-like (zarr, memmap, lazy movie) is
    read ``block`` frames at a time and the per-block boxes are merged, so the labels never
    have to fit in memory.
    """
    from scipy import ndimage

    if isinstance(labels, np.ndarray):
        return list(ndimage.find_objects(labels))
    boxes: list[list[int] | None] = []
    for s in range(0, int(labels.shape[0]), block):
        part = np.asarray(labels[s : s + block])
        for i, box in enumerate(ndimage.find_objects(part)):
            if box is None:
                continue
            if i >= len(boxes):
                boxes.extend([None] * (i + 1 - len(boxes)))
            lo = [s + box[0].start, box[1].start, box[2].start]
            hi = [s + box[0].stop, box[1].stop, box[2].stop]
            cur = boxes[i]
            if cur is None:
                boxes[i] = lo + hi
            else:
                boxes[i] = [min(a, b) for a, b in zip(cur[:3], lo, strict=True)] + [
                    max(a, b) for a, b in zip(cur[3:], hi, strict=True)
                ]
    return [
        None if b is None else (slice(b[0], b[3]), slice(b[1], b[4]), slice(b[2], b[5]))
        for b in boxes
    ]


def event_features(
    data: Any,
    labels: Any,
    *,
    frame_rate: float | None = None,
    f0: ArrayLike | None = None,
    offset: float = 0.0,
    rois: ArrayLike | None = None,
    local_radius: float = 6.0,
    min_snr: float = MIN_BASELINE_SNR,
    max_dff: float = MAX_DFF,
) -> pd.DataFrame:
    """Measure every event: kinetics, size, shape, intensity and neighbourhood.

    Parameters
    ----------
    data : array-like, (T, Y, X)
        The recording (raw intensities).
    labels : array-like of int, (T, Y, X)
        Event ids (0: none), e.g. from :func:`~cascope.events.labels.label_events`. Anything
        but an in-memory array (a zarr array, a memmap, a lazy movie) is read in time blocks
        and then event by event (its bounding box), so it never has to fit in memory.
    frame_rate : float, optional
        Frames per second; durations and kinetics in seconds need it (NaN without).
    f0 : array-like, (Y, X), optional
        Resting intensity per pixel (default: temporal median of ``data``).
    offset : float
        Dark level subtracted from both ``data`` and ``f0`` before ΔF/F (camera offset).
    rois : array-like of int, (Y, X), optional
        ROI/dendrite labels; each event gets the ROI under its centroid (0: none).
    local_radius : float
        In-plane radius (pixels) of the local-frequency count.
    min_snr : float
        Smallest ratio of an event's resting level to its noise for a reliable ΔF/F.
    max_dff : float
        Largest plausible peak ΔF/F; above it the baseline is taken to be unreliable.

    Returns
    -------
    pandas.DataFrame
        One row per event; columns are listed in the module documentation of
        :mod:`cascope.events` (``profile`` holds the per-frame ΔF/F as a list).
        ``baseline_f0`` is the footprint's resting level above ``offset``; where
        ``baseline_reliable`` is False the ΔF/F columns (:data:`DFF_COLUMNS`) are NaN and
        ``dff_note`` gives the reason.
    """
    from scipy.spatial import cKDTree

    shape = tuple(int(s) for s in data.shape)
    if len(shape) != 3 or tuple(labels.shape) != shape:
        raise InputError(
            f"data {shape} and labels {tuple(labels.shape)} must be the same (T, Y, X)"
        )
    median, sigma = _resting_images(data)
    base = (median if f0 is None else np.asarray(f0, np.float64)) - offset
    if base.shape != shape[1:]:
        raise InputError(f"f0 has shape {base.shape}, frames are {shape[1:]}")
    roi_img = None if rois is None else np.asarray(rois)
    dt = 1.0 / frame_rate if frame_rate else float("nan")
    rows: list[dict[str, Any]] = []
    for eid, box in enumerate(_event_boxes(labels), start=1):
        if box is None:
            continue
        vox = np.asarray(labels[box]) == eid
        bt, by, bx = box
        raw = np.asarray(data[box], dtype=np.float64) - offset
        footprint = vox.any(axis=0)
        f0_fp = float(base[by, bx][footprint].mean())
        sigma_fp = float(np.sqrt(np.sum(sigma[by, bx][footprint] ** 2)) / footprint.sum())
        d_f = raw - base[by, bx][None]  # ΔF; ΔF/F divides it by the footprint's F0
        w = np.clip(d_f[vox], 0, None)
        w = w if w.sum() > 0 else np.ones_like(w)
        tt, yy, xx = np.nonzero(vox)
        t0 = max(0, bt.start - PROFILE_PAD[0])
        t1 = min(shape[0], bt.stop + PROFILE_PAD[1])
        ctx = np.asarray(data[t0:t1, by, bx], np.float64) - offset
        full_delta = (ctx - base[by, bx][None])[:, footprint].mean(axis=1)
        scale = f0_fp if f0_fp > 0 else float("nan")
        peak = max(float(d_f[vox].max()), float(full_delta.max())) / scale
        note = _baseline_check(f0_fp, sigma_fp, peak, min_snr=min_snr, max_dff=max_dff)
        if note:
            scale = float("nan")
        profile = full_delta[bt.start - t0 : bt.stop - t0] / scale
        major, minor, solidity = _shape_2d(footprint)
        rise = rise_time(full_delta)  # kinetics do not depend on the baseline's scale
        tau = decay_tau(full_delta)
        row: dict[str, Any] = {
            "id": eid,
            "t": bt.start + float(np.average(tt, weights=w)),
            "y": by.start + float(np.average(yy, weights=w)),
            "x": bx.start + float(np.average(xx, weights=w)),
            "t_start": bt.start,
            "t_end": bt.stop,
            "y_start": by.start,
            "y_end": by.stop,
            "x_start": bx.start,
            "x_end": bx.stop,
            "area": int(vox.sum()),
            "footprint_area": int(footprint.sum()),
            "duration_frames": int(bt.stop - bt.start),
            "duration_s": (bt.stop - bt.start) * dt,
            "dff_peak": float(d_f[vox].max()) / scale,
            "dff_mean": float(d_f[vox].mean()) / scale,
            "rise_time_frames": rise,
            "rise_time_s": rise * dt,
            "decay_tau_frames": tau,
            "decay_tau_s": tau * dt,
            "intensity_mean": float(raw[vox].mean() + offset),
            "intensity_max": float(raw[vox].max() + offset),
            "major_axis_length": major,
            "minor_axis_length": minor,
            "solidity": solidity,
            "aspect": _aspect_3d(vox),
            "spatial_aspect": major / minor if minor > 0 else float("inf"),
            "profile": [float(v) for v in profile],
            "profile_integral": float(profile.sum()),
            "profile_max": float(profile.max()),
            "profile_std": float(profile.std()),
            "baseline_f0": f0_fp,
            "baseline_reliable": not note,
            "dff_note": note,
        }
        rows.append(row)
    if not rows:  # no events: the table still has its columns (a CSV with its header)
        roi = ("roi",) if roi_img is not None else ()
        return pd.DataFrame(columns=[*ROW_COLUMNS, *roi, *NEIGHBOUR_COLUMNS])
    table = pd.DataFrame(rows)
    if roi_img is not None:
        table["roi"] = roi_of_events(table, roi_img)
    pts3 = table[["t", "y", "x"]].to_numpy()
    pts2 = table[["y", "x"]].to_numpy()
    if len(table) > 1:
        d3, _ = cKDTree(pts3).query(pts3, k=2)
        d2, _ = cKDTree(pts2).query(pts2, k=2)
        table["nn_distance_3d"] = d3[:, 1]
        table["nn_distance_2d"] = d2[:, 1]
    else:
        table["nn_distance_3d"] = np.inf
        table["nn_distance_2d"] = np.inf
    counts = np.array([len(n) - 1 for n in cKDTree(pts2).query_ball_point(pts2, local_radius)])
    table["local_count"] = counts
    table["local_frequency_hz"] = counts / (shape[0] * dt)
    return table


def roi_of_events(table: pd.DataFrame, rois: ArrayLike) -> NDArray[np.int64]:
    """Return the ROI under each event's centroid (``y``, ``x``), 0 for none.

    Parameters
    ----------
    table : pandas.DataFrame
        Events with centroid columns ``y`` and ``x`` (pixels).
    rois : array-like of int, (Y, X)
        ROI labels (0: background).

    Returns
    -------
    ndarray of int64, (n_events,)
    """
    img = np.asarray(rois)
    if len(table) == 0:
        return np.zeros(0, np.int64)
    iy = np.clip(np.rint(table["y"].to_numpy(float)), 0, img.shape[0] - 1).astype(np.intp)
    ix = np.clip(np.rint(table["x"].to_numpy(float)), 0, img.shape[1] - 1).astype(np.intp)
    return np.asarray(img[iy, ix], dtype=np.int64)


def write_table(
    table: pd.DataFrame, path: Any, *, force: bool = False, inputs: Sequence[Any] = ()
) -> None:
    """Write an event table as Parquet (``.parquet``) or CSV (``.csv``), atomically.

    List columns (``profile``) stay lists in Parquet and become ``;``-joined text in CSV.
    """
    from cascope.io import atomic_output, check_table_path

    p = check_table_path(path)
    with atomic_output(p, inputs=inputs, force=force) as tmp:
        if p.suffix.lower() == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            out = table.copy()
            for col in out.columns:
                if out[col].map(lambda v: isinstance(v, list)).any():
                    out[col] = out[col].map(lambda v: ";".join(f"{x:.6g}" for x in v))
            out.to_csv(tmp, index=False)


def read_table(path: Any) -> pd.DataFrame:
    """Read an event table written by :func:`write_table` (CSV or Parquet)."""
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise InputError("does not exist", p)
    try:
        if p.suffix.lower() == ".parquet":
            return pd.read_parquet(p)
        return pd.read_csv(p)
    except Exception as err:  # pandas raises many kinds for a malformed table
        raise InputError(f"is not a readable event table ({err})", p) from err
