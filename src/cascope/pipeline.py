"""The movie pipeline: quality check → denoise → detect events → features → overview figure.

This module, ``cli/`` and ``napari/`` are the only places that compose stages. :func:`run_pipeline`
writes everything into one new folder, built under a temporary name and renamed when complete (an
error leaves no partial output), with the configuration (``pipeline.yaml``) and the software
versions (``versions.json``) saved beside the results so a run can be repeated.

Outputs
-------
``qc.json``
    :func:`cascope.qc.run_qc` report (when ``qc``).
``denoised.tif``
    The denoised movie, float32 or in the input's dtype (``denoise.dtype``; when ``denoise``).
``events.csv``, ``event_labels.tif``, ``events.png``
    Event table (weighted centroids ``t, y, x`` and features; ``roi``: the ROI under the
    centroid when ``rois`` are given), event instance labels and an overview figure (when
    ``events``).
``traces.csv``, ``rois.tif``
    With ``rois``: one row per ROI and frame (``roi``, ``name``, ``frame``, ``time_s``, mean
    intensity ``f``, resting level ``f0``, ``dff``, ``baseline_reliable``), measured on the input
    movie, and the ROIs as a label image (ids as in ``traces.csv``; a later ROI wins where two
    overlap).
``summary.json``
    What was run, counts, timings.
``report.html``, ``report_files/``
    The page a person reads (:mod:`cascope.report`); a failure to draw it is only a warning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cascope import _json as strict_json
from cascope._json import versions
from cascope.config.denoise import SELF_SUPERVISED
from cascope.config.pipeline import DenoiseStep, EventsStep, PipelineConfig
from cascope.errors import InputError
from cascope.io import Movie, atomic_output

log = logging.getLogger(__name__)


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` wrote and measured."""

    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def read_movie(path: str | Path, *, axes: str | None = None, dataset: str | None = None) -> Movie:
    """Open a (T, Y, X) recording lazily; a simulation folder means its ``noisy.tif``."""
    from cascope.io import read

    path = Path(path)
    if path.is_dir() and (path / "noisy.tif").is_file():
        path = path / "noisy.tif"
    movie = read(path, axes=axes, dataset=dataset, kind="movie")
    if movie.axes != "TYX":
        raise InputError(
            f"expected a (T, Y, X) movie, got axes {movie.axes!r} (give the axes when the file "
            "does not record them)",
            path,
        )
    return movie


def _denoise(step: DenoiseStep, cfg: PipelineConfig, target: Path) -> dict[str, Any]:
    if step.model is not None or step.method in SELF_SUPERVISED:
        from cascope.config.denoise import DeepDenoiseConfig, DeepPredictConfig
        from cascope.denoise.deep import denoise_deep_file

        train = None
        if step.model is None:
            train = DeepDenoiseConfig.model_validate(
                {"method": step.method, "patch": step.patch, "training": {"steps": step.steps}}
            )
        denoise_deep_file(
            cfg.input,
            target,
            model=step.model,
            method=step.method,
            train=train,
            predict=DeepPredictConfig.model_validate({"dtype": step.dtype}),
            axes=cfg.axes,
            device=cfg.device,
            progress=True,
        )
        return {"method": "model" if step.model else step.method, "model": str(step.model or "")}
    from cascope.config.denoise_classical import ClassicalDenoiseConfig
    from cascope.denoise.stream import denoise_file

    options = step.classical or ClassicalDenoiseConfig.model_validate({"method": step.method})
    if options.method != step.method:
        raise InputError(
            f"denoise.method is {step.method!r} but denoise.classical.method is {options.method!r}"
        )
    if "dtype" in options.model_fields_set and options.dtype != step.dtype:
        raise InputError(
            f"denoise.dtype is {step.dtype!r} but denoise.classical.dtype is {options.dtype!r}"
        )
    options = options.model_copy(update={"dtype": step.dtype})
    denoise_file(cfg.input, target, config=options, axes=cfg.axes, progress=True)
    return {"method": step.method, "options": options.model_dump(mode="json")}


def qc_denoiser(report: Any) -> str:
    """Return the denoising method the quality check recommends for a recording.

    The recommendation (:attr:`cascope.qc.QCReport.recommendation`) names temporal N2N
    (``deepcad``) for movies whose consecutive frames correlate, and ``n2v`` (blind-spot, frame
    by frame) for a single frame or decorrelated frames (flag ``frames_decorrelated``).
    """
    if report.frame_axis is None or report.frames_sampled < 2:
        return "n2v"
    if "frames_decorrelated" in report.flags:
        return "n2v"
    return "deepcad"


def detection_source(events: EventsStep, denoised: bool) -> tuple[str, str]:
    """Which movie events are detected on (``"denoised"`` or ``"input"``), and why.

    ``events.source`` ``"auto"`` keeps the input: event networks are trained on raw movies,
    and the threshold detector, which smooths the movie itself, was not helped consistently by
    any denoiser on simulated low-SNR movies (benchmarks/results/denoise_detect.md: with a
    threshold tuned per input a Gaussian filter helped, median and a short deepcad training
    hurt; at the default threshold every input scored low).
    """
    if not denoised:
        return "input", "no denoised movie"
    if events.source == "input":
        return "input", "events.source is 'input'"
    if events.source == "denoised":
        return "denoised", "events.source is 'denoised'"
    if events.model is not None:
        return "input", "event networks are trained on raw movies (events.source 'auto')"
    return "input", (
        "the threshold detector smooths the movie itself and no denoiser helped it consistently "
        "(benchmarks/results/denoise_detect.md); set events.source to 'denoised' to detect on "
        "the denoised movie (events.source 'auto')"
    )


def _scratch_labels(shape: tuple[int, ...], near: Path) -> tuple[Any, Path]:
    """Create a zeroed, chunked uint32 zarr array in a hidden folder beside ``near``.

    Detection writes event ids into it event by event, so a label movie of any length stays on
    disk; the caller removes the folder.
    """
    import zarr

    from cascope.io import remove_stale_temporaries, temp_path

    remove_stale_temporaries(near)  # a killed earlier run's scratch folder
    folder = temp_path(near, "labels")
    folder.mkdir(parents=True)
    chunks = (16, min(shape[1], 256), min(shape[2], 256))
    arr = zarr.create_array(
        str(folder / "labels.zarr"), shape=shape, chunks=chunks, dtype="uint32", fill_value=0
    )
    return arr, folder


def _copy_labels(labels: Any, path: Path, *, inputs: list[Path], force: bool) -> None:
    """Write a (T, Y, X) label array (in memory or on disk) to ``path`` block by block."""
    from cascope.io import open_writer

    n = int(labels.shape[0])
    step = max(1, (64 << 20) // max(1, 4 * int(np.prod(labels.shape[1:]))))
    with open_writer(
        path, tuple(labels.shape), np.uint32, axes="TYX", inputs=inputs, force=force
    ) as writer:
        for start in range(0, n, step):
            writer.write(np.asarray(labels[start : start + step]), start)


def detect_to_files(
    movie: Movie,
    table_path: str | Path,
    *,
    model: str | Path | None = None,
    threshold: float | str = "auto",
    labels_path: str | Path | None = None,
    features: bool = False,
    measure: Movie | None = None,
    frame_rate: float | None = None,
    rois: Any = None,
    block: int = 256,
    device: str = "auto",
    inputs: Sequence[str | Path] = (),
    force: bool = False,
) -> Any:
    """Detect events in ``movie``; write the table (and the label movie) to files.

    With a ``model`` the movie is streamed in blocks of ``block`` frames and the label movie
    (for ``labels_path`` or ``features``) is kept on disk beside the output, so memory does not
    grow with the length of the movie. Without one the intensity-threshold detector runs on the
    movie in memory (``threshold`` is then a z-score, 4 for ``"auto"``).

    Parameters
    ----------
    movie : Movie
        The (T, Y, X) recording to detect in.
    table_path : str or Path
        Event table (``.csv`` or ``.parquet``).
    model : str or Path, optional
        Event model folder (``cascope train events``).
    threshold : float or "auto"
        Probability (network) or z-score (baseline); ``"auto"``: the model's own, or 4.
    labels_path : str or Path, optional
        Where to write the event label movie.
    features : bool
        Replace the detection table by every event feature.
    measure : Movie, optional
        The recording features are measured on (default ``movie``; e.g. the raw movie when
        detecting on a denoised one).
    frame_rate : float, optional
        Frames per second for features in seconds (default the recording's).
    rois : array-like of int, (Y, X), optional
        ROI labels: a ``roi`` column gives the ROI under each event's centroid (0: none).
    block : int
        Frames per streamed block.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    inputs : sequence of paths
        Files the outputs must never replace.
    force : bool
        Replace existing outputs.

    Returns
    -------
    pandas.DataFrame
        The table written.
    """
    import shutil

    from cascope.events.detect import detect_threshold_baseline
    from cascope.events.features import event_features, roi_of_events, write_table

    table_path = Path(table_path)
    labels_file = None if labels_path is None else Path(labels_path)
    scratch: Path | None = None
    try:
        labels: Any = None
        if model is None:
            k = 4.0 if threshold == "auto" else float(threshold)
            # read once into memory; the in-memory movie keeps the file's name for errors
            in_memory = movie.with_data(movie.to_numpy())
            labels, table = detect_threshold_baseline(in_memory, k=k)
        else:
            from cascope.config.events import DetectConfig
            from cascope.events.predict import detect_events, load_event_model

            if labels_file is not None or features:
                labels, scratch = _scratch_labels(tuple(movie.shape), labels_file or table_path)
            em = load_event_model(model, device="cpu")
            cfg = DetectConfig.model_validate(
                {"threshold": threshold, "block": block, "device": device}
            )
            table = detect_events(movie, em, config=cfg, labels_out=labels, progress=True)
        if features:
            source = measure if measure is not None else movie
            table = event_features(
                source, labels, frame_rate=frame_rate or source.frame_rate, rois=rois
            )
        elif rois is not None:
            table["roi"] = roi_of_events(table, rois)
        write_table(table, table_path, force=force, inputs=list(inputs))
        if labels_file is not None:
            _copy_labels(labels, labels_file, inputs=[Path(p) for p in inputs], force=force)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return table


def roi_traces_table(movie: Movie, rois: Any, *, frame_rate: float | None = None) -> Any:
    """Mean intensity, resting level and ΔF/F of every ROI in every frame, as a long table.

    ``f0`` is a running 8th percentile (101 frames) of the ROI's trace; ``dff`` is NaN and
    ``baseline_reliable`` False for a ROI whose resting level is within 3 noise sd of the dark
    level (:func:`cascope.events.delta_f_over_f`).

    Parameters
    ----------
    movie : Movie
        The (T, Y, X) recording.
    rois : cascope.io.rois.Rois
        The ROIs.
    frame_rate : float, optional
        Frames per second for ``time_s`` (NaN without).

    Returns
    -------
    pandas.DataFrame
        Columns ``roi, name, frame, time_s, f, f0, dff, baseline_reliable``.
    """
    import pandas as pd

    from cascope.preprocess.dff import baseline_reliable, delta_f_over_f, trace_baseline

    f = rois.traces(movie)
    options: dict[str, Any] = {"method": "percentile", "window": 101, "percentile": 8.0}
    f0 = trace_baseline(f, **options)
    dff = delta_f_over_f(f, **options)
    ok = baseline_reliable(f, **options)
    n, t = f.shape
    frames = np.arange(t)
    return pd.DataFrame(
        {
            "roi": np.repeat(np.arange(1, n + 1), t),
            "name": np.repeat(np.asarray(rois.names, dtype=object), t),
            "frame": np.tile(frames, n),
            "time_s": np.tile(frames / frame_rate if frame_rate else np.full(t, np.nan), n),
            "f": f.ravel(),
            "f0": f0.ravel(),
            "dff": dff.ravel(),
            "baseline_reliable": np.repeat(ok, t),
        }
    )


def _temporal_mean(movie: Movie, block: int = 256) -> np.ndarray[Any, np.dtype[np.float64]]:
    total = np.zeros(movie.shape[1:], np.float64)
    for start in range(0, movie.shape[0], block):
        total += np.asarray(movie[start : start + block], dtype=np.float64).sum(axis=0)
    return total / movie.shape[0]


def run_pipeline(
    config: PipelineConfig, out_dir: str | Path, *, force: bool = False, name: str | None = None
) -> PipelineResult:
    """Run every configured stage on ``config.input`` and write the results into ``out_dir``.

    Parameters
    ----------
    config : PipelineConfig
        The input and the stages to run.
    out_dir : str or Path
        A new folder (an existing one only with ``force``; never the input's own folder).
    force : bool
        Replace an existing output folder.
    name : str, optional
        The run's name on its report (default: the output folder's name).

    Returns
    -------
    PipelineResult
        The written files and a summary (also saved as ``summary.json``).
    """
    from cascope import io

    start = time.perf_counter()
    raw = read_movie(config.input, axes=config.axes)  # validated before anything is written
    if raw.shape[0] == 0:
        raise InputError("has no frames", config.input)
    out = Path(out_dir).expanduser().resolve()
    if config.input.resolve() == out or out in config.input.resolve().parents:
        raise InputError("the output folder must not contain the input", out)
    rois = None
    if config.rois is not None:
        from cascope.io.rois import read_rois

        rois = read_rois(config.rois, (int(raw.shape[1]), int(raw.shape[2])))
    summary: dict[str, Any] = {"input": str(config.input), "shape": list(raw.shape)}
    names: dict[str, str] = {}
    with atomic_output(out, inputs=[config.input], force=force) as tmp:
        tmp.mkdir()
        (tmp / "pipeline.yaml").write_text(config.to_yaml())
        (tmp / "versions.json").write_text(strict_json.dumps(versions(), indent=2) + "\n")
        step = config.denoise
        auto = step is not None and step.method == "auto" and step.model is None
        if config.qc or auto:
            from cascope.qc import run_qc

            report = run_qc(raw)
            summary["qc"] = {"flags": report.flags, "recommendation": report.recommendation}
            if config.qc:
                (tmp / "qc.json").write_text(strict_json.dumps(report.to_dict(), indent=2) + "\n")
                names["qc"] = "qc.json"
            log.info("qc: %s", report.recommendation)
            if auto and step is not None:
                step = step.model_copy(update={"method": qc_denoiser(report)})
                log.info("denoise auto: %s, as the quality check recommends", step.method)
        denoised: Movie | None = None
        if step is not None and step.method != "none":
            t0 = time.perf_counter()
            summary["denoise"] = _denoise(step, config, tmp / "denoised.tif")
            if auto:
                summary["denoise"]["chosen_by"] = "qc recommendation (denoise.method 'auto')"
            summary["denoise"]["seconds"] = time.perf_counter() - t0
            denoised = io.read(tmp / "denoised.tif")
            names["denoised"] = "denoised.tif"
        frame_rate = config.frame_rate or raw.frame_rate
        if rois is not None:
            from cascope.events.features import write_table

            traces = roi_traces_table(raw, rois, frame_rate=frame_rate)
            write_table(traces, tmp / "traces.csv")
            io.write(tmp / "rois.tif", rois.labels(), axes="YX")
            reliable = traces.groupby("roi")["baseline_reliable"].first()
            summary["rois"] = {
                "file": str(config.rois),
                "n_rois": len(rois),
                "n_unreliable_baseline": int((~reliable).sum()),
            }
            names.update(traces="traces.csv", rois="rois.tif")
        if config.events is not None:
            t0 = time.perf_counter()
            on, why = detection_source(config.events, denoised is not None)
            source = denoised if on == "denoised" and denoised is not None else raw
            table = detect_to_files(
                source,
                tmp / "events.csv",
                model=config.events.model,
                threshold=config.events.threshold,
                labels_path=tmp / "event_labels.tif",
                features=config.events.features,
                measure=raw,
                frame_rate=frame_rate,
                rois=None if rois is None else rois.labels(),
                device=config.device,
            )
            from cascope.report import events_overview

            events_overview(
                _temporal_mean(raw),
                table,
                tmp / "events.png",
                mean_denoised=None if denoised is None else _temporal_mean(denoised),
                n_frames=raw.shape[0],
                frame_rate=config.frame_rate or raw.frame_rate,
                title=config.input.name,
            )
            summary["events"] = {
                "detector": "network" if config.events.model else "intensity threshold",
                "on": on,
                "why": why,
                "n_events": len(table),
                "seconds": time.perf_counter() - t0,
            }
            names.update(events="events.csv", event_labels="event_labels.tif", figure="events.png")
        summary["seconds"] = time.perf_counter() - start
        summary["files"] = names
        (tmp / "summary.json").write_text(strict_json.dumps(summary, indent=2) + "\n")
        try:  # the results are complete; the page is a view of them
            from cascope.report import build_run_report

            build_run_report(tmp, raw=config.input, name=name or out.name)
        except Exception as err:
            log.warning("%s: no report.html (%s); `cascope report` rebuilds it", out, err)
    return PipelineResult(out, {k: out / v for k, v in names.items()}, summary)
