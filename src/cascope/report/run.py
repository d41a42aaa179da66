"""The report of one ``cascope run`` folder: ``report.html`` and its ``report_files/``.

The page shows the quality check, raw and denoised side by side (an animated crop and the
mean/max projections at one contrast), the events on the field of view coloured by time, a
raster of every event and the traces of the strongest, counts and rates, the feature summary,
the denoising gain where a reference exists and, for a folder holding a segmentation
(``segmentation.tif``, with ``measurements.csv`` or ``.parquet``), the segmentation over the
volume's planes and the per-structure measurements. It needs no network and no Python to view.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cascope.errors import InputError
from cascope.report import _html as h
from cascope.report import figures
from cascope.report.preview import choose_crop, event_id_map, scan_movie, write_animation

log = logging.getLogger(__name__)

#: The folder of images beside ``report.html``.
FILES = "report_files"
#: Events whose traces are drawn.
N_STRONGEST = 6
#: Frames used to measure the denoising gain against a reference.
GAIN_FRAMES = 64


@dataclass
class RunInfo:
    """What a run folder holds, read from its small files (no movie is read)."""

    folder: Path
    summary: dict[str, Any]
    config: dict[str, Any]
    config_text: str
    versions: dict[str, Any]
    qc: dict[str, Any] | None
    shape: tuple[int, ...]
    frame_rate: float | None
    voxel_size: dict[str, float] | None
    raw_path: Path | None
    numbers: dict[str, Any] = field(default_factory=dict)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _find_input(folder: Path, given: str | None) -> Path | None:
    """Find the recording a run read, when it is still where the run found it.

    A relative path was relative to where the run was started: tried from here, from the run
    folder and from the folder above it.
    """
    if not given:
        return None
    p = Path(given).expanduser()
    candidates = [p] if p.is_absolute() else [Path.cwd() / p, folder / p, folder.parent / p]
    for c in candidates:
        if c.exists():
            return c
    return None


def _header(path: Path) -> Any:
    """Open a movie lazily (header only); ``None`` when it cannot be read."""
    from cascope import io

    try:
        return io.read(path)
    except Exception as err:  # any unreadable file only loses a preview
        log.warning("report: cannot read %s (%s)", path, err)
        return None


def read_run(folder: str | Path, *, raw: str | Path | None = None) -> RunInfo:
    """Read a run folder's summary, configuration, versions and QC, and its counts and rates.

    Parameters
    ----------
    folder : str or Path
        A ``cascope run`` output folder.
    raw : str or Path, optional
        The recording, when it has moved since the run.

    Returns
    -------
    RunInfo
    """
    import yaml

    folder = Path(folder).expanduser().resolve()
    summary = _json(folder / "summary.json")
    if not isinstance(summary, dict):
        raise InputError(
            "is not a cascope run folder (no readable summary.json); give a folder written by "
            "`cascope run` or `cascope study`",
            folder,
        )
    config_text = ""
    config: dict[str, Any] = {}
    if (folder / "pipeline.yaml").is_file():
        config_text = (folder / "pipeline.yaml").read_text()
        loaded = yaml.safe_load(config_text)
        config = loaded if isinstance(loaded, dict) else {}
    raw_path = Path(raw) if raw is not None else _find_input(folder, config.get("input"))
    shape = tuple(int(s) for s in summary.get("shape", []))
    frame_rate = config.get("frame_rate")
    voxel_size = None
    for candidate in (folder / "denoised.tif", raw_path):
        if candidate is None or not Path(candidate).is_file():
            continue
        movie = _header(Path(candidate))
        if movie is None:
            continue
        frame_rate = frame_rate or movie.frame_rate
        voxel_size = voxel_size or movie.voxel_size
        if frame_rate and voxel_size:
            break
    info = RunInfo(
        folder=folder,
        summary=summary,
        config=config,
        config_text=config_text,
        versions=_json(folder / "versions.json") or {},
        qc=_json(folder / "qc.json"),
        shape=shape,
        frame_rate=float(frame_rate) if frame_rate else None,
        voxel_size=voxel_size,
        raw_path=raw_path,
    )
    info.numbers = rates(info)
    return info


def rates(info: RunInfo) -> dict[str, Any]:
    """Count events per minute, and per minute and 100 µm² (when the sizes are known).

    Returns
    -------
    dict
        ``n_events``, ``frames``, ``minutes``, ``area_um2``, ``per_minute``,
        ``per_minute_per_100um2``, ``per_100_frames`` (``None`` where unknown).
    """
    n_events = (info.summary.get("events") or {}).get("n_events")
    frames = info.shape[0] if info.shape else None
    minutes = frames / info.frame_rate / 60.0 if frames and info.frame_rate else None
    area = None
    vs = info.voxel_size or {}
    if len(info.shape) >= 3 and vs.get("Y") and vs.get("X"):
        area = info.shape[-2] * info.shape[-1] * float(vs["Y"]) * float(vs["X"])
    out: dict[str, Any] = {
        "n_events": n_events,
        "frames": frames,
        "minutes": minutes,
        "area_um2": area,
        "per_minute": None,
        "per_minute_per_100um2": None,
        "per_100_frames": None,
    }
    if n_events is not None and frames:
        out["per_100_frames"] = 100.0 * n_events / frames
        if minutes:
            out["per_minute"] = n_events / minutes
            if area:
                out["per_minute_per_100um2"] = n_events / minutes / (area / 100.0)
    return out


# ---------------------------------------------------------------- sections
_QC_FIELDS = (
    ("dtype", "data type"),
    ("value_min", "lowest value"),
    ("value_max", "highest value"),
    ("n_levels", "distinct levels"),
    ("saturation_fraction", "saturated fraction"),
    ("offset", "offset"),
    ("snr", "SNR estimate"),
    ("mean_photons", "mean photons per pixel"),
    ("temporal_correlation", "frame-to-frame correlation"),
)


def qc_section(qc: dict[str, Any] | None) -> str:
    """Show the flags, the recommendation and the main numbers of ``qc.json``."""
    if not qc:
        return '<p class="note">No quality check in this run (it ran with --no-qc).</p>'
    flags = qc.get("flags") or []
    badges = (
        "".join(h.badge(f.replace("_", " "), "warn") for f in flags)
        if flags
        else h.badge("no flags", "ok")
    )
    rows = [(label, qc.get(key)) for key, label in _QC_FIELDS if key in qc]
    noise = qc.get("noise") or {}
    for key in ("gain_adu_per_electron", "read_noise_adu"):
        if noise.get(key) is not None:
            rows.append((key.replace("_", " "), noise[key]))
    return (
        f"<p><b>Flags:</b> {badges}</p>"
        f"<p><b>Recommendation:</b> {h.esc(qc.get('recommendation') or '—')}</p>"
        + h.key_values(rows)
    )


def feature_summary(events: pd.DataFrame) -> str:
    """Median, quartiles and mean of each event feature."""
    from cascope.events.compare import DEFAULT_FEATURES

    seconds = [f"{f[: -len('_frames')]}_s" for f in DEFAULT_FEATURES if f.endswith("_frames")]
    feats = [f for f in (*DEFAULT_FEATURES, *seconds) if f in events.columns]
    rows = []
    for f in feats:
        v = pd.to_numeric(events[f], errors="coerce").to_numpy(np.float64)
        v = v[np.isfinite(v)]
        if not v.size:
            continue
        q1, med, q3 = np.percentile(v, [25, 50, 75])
        rows.append(
            [
                h.cell(f),
                h.cell(int(v.size)),
                h.cell(float(med)),
                h.cell(float(q1)),
                h.cell(float(q3)),
                h.cell(float(v.mean())),
            ]
        )
    if not rows:
        return ""
    return h.table(["feature", "n", "median", "25 %", "75 %", "mean"], rows, sortable=True)


def _strongest(events: pd.DataFrame, n: int) -> list[int]:
    column = next((c for c in ("dff_peak", "profile_max", "area") if c in events.columns), None)
    if column is None or not len(events):
        return []
    score = pd.to_numeric(events[column], errors="coerce").fillna(-np.inf).to_numpy()
    return [int(i) for i in np.argsort(-score, kind="stable")[:n]]


def _box(ev: pd.Series, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    n_y, n_x = shape[-2], shape[-1]
    if {"y_start", "y_end", "x_start", "x_end"} <= set(ev.index):
        y0, y1, x0, x1 = (int(ev[k]) for k in ("y_start", "y_end", "x_start", "x_end"))
    else:
        y0, y1, x0, x1 = int(ev["y"]) - 2, int(ev["y"]) + 3, int(ev["x"]) - 2, int(ev["x"]) + 3
    y0, x0 = max(0, min(y0, n_y - 1)), max(0, min(x0, n_x - 1))
    return y0, max(y0 + 1, min(y1, n_y)), x0, max(x0 + 1, min(x1, n_x))


def _dff(traces: np.ndarray[Any, Any]) -> np.ndarray[Any, Any] | None:
    from cascope.preprocess.dff import delta_f_over_f

    if not traces.size:
        return None
    try:
        return delta_f_over_f(traces, method="percentile", window=min(101, traces.shape[-1]))
    except InputError as err:
        log.warning("report: no ΔF/F traces (%s)", err)
        return None


def _gain(raw: Any, denoised: Any, reference: Path) -> list[tuple[str, Any]]:
    """PSNR of raw and denoised against a clean reference, on evenly spaced frames."""
    from cascope.metrics import psnr

    ref = _header(reference)
    if ref is None or tuple(ref.shape) != tuple(denoised.shape):
        log.warning("report: the reference %s does not match the movie; no gain shown", reference)
        return []
    idx = np.unique(np.linspace(0, denoised.shape[0] - 1, GAIN_FRAMES).astype(int))
    r = np.stack([np.asarray(ref[int(i)], np.float64) for i in idx])
    rng = float(r.max() - r.min()) or 1.0
    d = np.stack([np.asarray(denoised[int(i)], np.float64) for i in idx])
    rows: list[tuple[str, Any]] = [("reference", str(reference)), ("frames compared", len(idx))]
    psnr_d = psnr(d, r, data_range=rng)
    if raw is not None:
        x = np.stack([np.asarray(raw[int(i)], np.float64) for i in idx])
        psnr_r = psnr(x, r, data_range=rng)
        rows += [
            ("PSNR raw (dB)", psnr_r),
            ("PSNR denoised (dB)", psnr_d),
            ("gain (dB)", psnr_d - psnr_r),
        ]
    else:
        rows.append(("PSNR denoised (dB)", psnr_d))
    return rows


def _reference_for(raw_path: Path | None) -> Path | None:
    """Find a simulation's ground truth (``clean.tif`` beside ``noisy.tif``, ``truth.json``)."""
    if raw_path is None:
        return None
    folder = raw_path if raw_path.is_dir() else raw_path.parent
    clean = folder / "clean.tif"
    return clean if clean.is_file() and (folder / "truth.json").is_file() else None


def _volume_section(folder: Path, raw_path: Path | None, files: Path) -> str:
    from cascope import io

    seg = folder / "segmentation.tif"
    if not seg.is_file():
        return ""
    labels = io.read(seg)
    if labels.ndim != 3:
        return f'<p class="note">{h.esc(seg.name)} is not a (Z, Y, X) volume; not shown.</p>'
    body = ""
    image_path = folder / "volume.tif"
    if not image_path.is_file():
        image_path = raw_path if raw_path is not None and raw_path.is_file() else image_path
    volume = _header(image_path) if image_path.is_file() else None
    vol = volume.to_numpy() if volume is not None and volume.shape == labels.shape else None
    lab = labels.to_numpy()
    figures.volume_planes(
        vol if vol is not None else (lab > 0).astype(float),
        lab,
        files / "segmentation.png",
        axes="ZYX",
    )
    n = int(len(np.unique(lab[lab > 0])))
    body += h.image(
        f"{FILES}/segmentation.png",
        f"{n} labelled structures over the volume's Y–X and Z–X projections",
    )
    for name in ("measurements.csv", "measurements.parquet"):
        if (folder / name).is_file():
            table = (pd.read_parquet if name.endswith("parquet") else pd.read_csv)(folder / name)
            cols = [c for c in table.columns if table[c].dtype.kind in "biuf" or c == "label"]
            rows = [[h.cell(_plain(r[c])) for c in cols] for _, r in table.iterrows()]
            body += f"<h3>Per-structure measurements ({len(table)})</h3>"
            body += h.table(cols, rows, sortable=True, scroll=True)
            break
    return body


def _plain(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _provenance(info: RunInfo) -> str:
    s = info.summary
    timings = [("total (s)", s.get("seconds"))]
    for step in ("denoise", "events"):
        if isinstance(s.get(step), dict) and "seconds" in s[step]:
            timings.append((f"{step} (s)", s[step]["seconds"]))
    body = "<h3>Timings</h3>" + h.key_values(timings)
    if info.versions:
        body += "<h3>Software and machine</h3>" + h.key_values(sorted(info.versions.items()))
    if info.config_text:
        body += f"<h3>Configuration (pipeline.yaml)</h3><pre>{h.esc(info.config_text)}</pre>"
    return body


def _overview(info: RunInfo, events: pd.DataFrame | None) -> str:
    n = info.numbers
    items: list[tuple[str, str]] = []
    if n["n_events"] is not None:
        items.append((h.fmt(n["n_events"]), "events"))
    if n["per_minute"] is not None:
        items.append((h.fmt(n["per_minute"]), "events per minute"))
    elif n["per_100_frames"] is not None:
        items.append((h.fmt(n["per_100_frames"]), "events per 100 frames"))
    if n["per_minute_per_100um2"] is not None:
        items.append((h.fmt(n["per_minute_per_100um2"]), "events / min / 100 µm²"))
    if n["minutes"] is not None:
        items.append((h.fmt(n["minutes"] * 60.0), "seconds recorded"))
    if info.summary.get("seconds") is not None:
        items.append((h.fmt(float(info.summary["seconds"])), "run time (s)"))
    note = ""
    if n["n_events"] is not None and n["per_minute_per_100um2"] is None:
        missing = [
            w
            for w, ok in (("frame rate", info.frame_rate), ("pixel size", info.voxel_size))
            if not ok
        ]
        note = (
            f'<p class="note">The recording does not state its {" or ".join(missing)}: '
            "rates per minute and per 100 µm² need them (give --frame-rate to `cascope run`, "
            "or a file that records them).</p>"
        )
    return h.cards(items) + note


def build_run_page(
    info: RunInfo, files: Path, *, reference: Path | None = None, name: str | None = None
) -> str:
    """Write the figures of a run into ``files`` and return the page (paths relative to it).

    Parameters
    ----------
    info : RunInfo
        From :func:`read_run`.
    files : Path
        An existing, empty folder that becomes ``report_files/``.
    reference : Path, optional
        A clean movie of the same shape (default: a simulation's ``clean.tif``).
    name : str, optional
        The run's name in the title (default: the folder's).

    Returns
    -------
    str
        The HTML.
    """
    from cascope.events.features import read_table

    folder = info.folder
    raw = _header(info.raw_path) if info.raw_path is not None and info.raw_path.is_file() else None
    if raw is not None and raw.axes != "TYX":
        raw = None
    den = _header(folder / "denoised.tif") if (folder / "denoised.tif").is_file() else None
    events: pd.DataFrame | None = None
    if (folder / "events.csv").is_file():
        events = read_table(folder / "events.csv")
    movies = {k: m for k, m in (("raw", raw), ("denoised", den)) if m is not None}
    shape = tuple(next(iter(movies.values())).shape) if movies else info.shape
    n_frames = int(shape[0]) if shape else 0
    sections: list[tuple[str, str, str]] = [
        ("overview", "Overview", _overview(info, events)),
        ("qc", "Quality check", qc_section(info.qc)),
    ]
    preview = ""
    scans = {}
    strongest = _strongest(events, N_STRONGEST) if events is not None else []
    if movies:
        ev = events if events is not None else pd.DataFrame({"t": [], "y": [], "x": []})
        crop = choose_crop(shape, ev)
        boxes = [_box(events.iloc[i], shape) for i in strongest] if events is not None else []
        scans = {k: scan_movie(m, boxes=boxes, crop=crop) for k, m in movies.items()}
        write_animation(
            [s.crop for s in scans.values()],
            files / "preview.webp",
            fps=min(max(info.frame_rate or 10.0, 5.0), 20.0),
        )
        side = " | ".join(scans)
        natural = len(scans) * (crop.x1 - crop.x0) + 3 * (len(scans) - 1)
        preview += h.image(
            f"{FILES}/preview.webp",
            f"{side} at one contrast<br>frames {crop.t0}–{crop.t1 - 1}, y {crop.y0}–{crop.y1 - 1}"
            f", x {crop.x0}–{crop.x1 - 1} (the busiest window)",
            width=max(natural, 420),  # small crops are enlarged, pixels kept sharp
            pixelated=True,
        )
        figures.projections(
            {k: (s.mean, s.max) for k, s in scans.items()}, files / "projections.png"
        )
        preview += h.image(
            f"{FILES}/projections.png",
            "temporal mean and max; each row at one contrast",
        )
        preview = f'<div class="row">{preview}</div>'
    elif not (folder / "segmentation.tif").is_file():
        preview = '<p class="note">Neither the recording nor denoised.tif could be read.</p>'
    sections.append(("preview", "Raw and denoised", preview))
    if den is not None:
        reference_path = reference or _reference_for(info.raw_path)
        rows = _gain(raw, den, reference_path) if reference_path is not None else []
        gain = (
            h.key_values(rows)
            if rows
            else (
                '<p class="note">No reference (clean) movie: the gain cannot be measured. '
                "`cascope report --reference CLEAN` names one.</p>"
            )
        )
        sections.append(("gain", "Denoising gain", gain))
    if events is not None:
        body = ""
        if scans:
            background = (scans.get("denoised") or next(iter(scans.values()))).mean
            id_map = None
            if (folder / "event_labels.tif").is_file():
                labels = _header(folder / "event_labels.tif")
                if labels is not None and tuple(labels.shape) == tuple(shape):
                    id_map = event_id_map(labels)
            figures.event_map(
                background,
                events,
                files / "event_map.png",
                id_map=id_map,
                n_frames=n_frames,
                frame_rate=info.frame_rate,
            )
            body += h.image(
                f"{FILES}/event_map.png",
                "each event's footprint and centroid, coloured by its time",
                width=480,
            )
        summary = feature_summary(events)
        if summary:
            body += f"<div><h3>Feature summary</h3>{summary}</div>"
        body = f'<div class="row">{body}</div>'
        traces = {}
        for k, s in scans.items():
            dff = _dff(s.traces)
            if dff is not None:
                traces[k] = dff
        figures.raster_and_traces(
            events,
            files / "raster.png",
            n_frames=n_frames,
            frame_rate=info.frame_rate,
            traces=traces,
            strongest=strongest if traces else [],
        )
        body += h.image(
            f"{FILES}/raster.png",
            "left: every event over its frames; right: ΔF/F (running 8th-percentile "
            "baseline) in each of the strongest events' bounding box",
        )
        sections.append(("events", "Events", body))
    sections.append(("volume", "Segmentation", _volume_section(folder, info.raw_path, files)))
    sections.append(("provenance", "Provenance", _provenance(info)))
    return h.page(f"cascope run: {name or folder.name}", _subtitle(info), sections)


def _subtitle(info: RunInfo) -> str:
    parts = [f"input {h.esc(info.summary.get('input', '?'))}"]
    if info.shape:
        parts.append("shape (T, Y, X) " + " × ".join(str(s) for s in info.shape))
    if info.frame_rate:
        parts.append(f"{h.fmt(info.frame_rate)} Hz")
    if info.voxel_size:
        parts.append("pixel " + " × ".join(f"{h.fmt(v)} µm" for v in info.voxel_size.values()))
    parts.append("report made " + time.strftime("%Y-%m-%d %H:%M"))
    return " · ".join(parts)


def build_run_report(
    folder: str | Path,
    *,
    raw: str | Path | None = None,
    reference: str | Path | None = None,
    name: str | None = None,
) -> Path:
    """Write ``report.html`` and ``report_files/`` into a ``cascope run`` folder.

    Both are replaced atomically (a failed build leaves the previous report as it was).

    Parameters
    ----------
    folder : str or Path
        The run folder.
    raw : str or Path, optional
        The recording, if it has moved since the run (default: the configured input).
    reference : str or Path, optional
        A clean movie for the denoising gain (default: a simulation's ``clean.tif``).
    name : str, optional
        The run's name in the page title (default: the folder's; a run writing its report
        into its temporary folder gives the final one).

    Returns
    -------
    Path
        ``report.html``.
    """
    from cascope.io import atomic_output

    info = read_run(folder, raw=raw)
    html: str = ""
    with atomic_output(info.folder / FILES, force=True) as tmp:
        tmp.mkdir()
        ref = None if reference is None else Path(reference)
        html = build_run_page(info, tmp, reference=ref, name=name)
    return write_page(info.folder / "report.html", html)


def write_page(path: Path, html: str) -> Path:
    """Write a page atomically."""
    from cascope.io import atomic_output

    with atomic_output(path, force=True) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return path
