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
    The denoised movie in the input's dtype (when ``denoise``).
``events.csv``, ``event_labels.tif``, ``events.png``
    Event table (weighted centroids ``t, y, x`` and features), event instance labels and an
    overview figure (when ``events``).
``summary.json``
    What was run, counts, timings.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from cascope.config.pipeline import SELF_SUPERVISED, DenoiseStep, EventsStep, PipelineConfig
from cascope.errors import InputError
from cascope.io import Movie, atomic_output

log = logging.getLogger(__name__)

_PACKAGES = ("cascope", "numpy", "scipy", "scikit-image", "torch", "tifffile", "zarr", "pandas")


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` wrote and measured."""

    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def versions() -> dict[str, str]:
    """Versions of Python, the platform and the packages that shape the results."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _read(cfg: PipelineConfig) -> Movie:
    from cascope.io import read

    movie = read(cfg.input, axes=cfg.axes)
    if movie.axes != "TYX":
        raise InputError(
            f"the pipeline needs a (T, Y, X) movie, got axes {movie.axes!r} (set `axes` when the "
            "file does not record them)",
            cfg.input,
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
            predict=DeepPredictConfig.model_validate({"dtype": "same"}),
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
    denoise_file(cfg.input, target, config=options, axes=cfg.axes, progress=True)
    return {"method": step.method, "options": options.model_dump(mode="json")}


def _events(
    step: EventsStep, raw: Movie, source: Movie, cfg: PipelineConfig
) -> tuple[Any, np.ndarray[Any, np.dtype[np.uint32]]]:
    from cascope.events.detect import detect_threshold_baseline
    from cascope.events.features import event_features

    if step.model is None:
        k = 4.0 if step.threshold == "auto" else float(step.threshold)
        labels, table = detect_threshold_baseline(source.to_numpy(), k=k)
    else:
        from cascope.config.events import DetectConfig
        from cascope.events.train import detect_events, load_event_model

        model = load_event_model(step.model, device="cpu")
        labels = np.zeros(source.shape, np.uint32)
        detect = DetectConfig(threshold=step.threshold, device=cfg.device)
        table = detect_events(source, model, config=detect, labels_out=labels, progress=True)
    if step.features:
        table = event_features(raw, labels, frame_rate=cfg.frame_rate or raw.frame_rate)
    return table, labels


def _temporal_mean(movie: Movie, block: int = 256) -> np.ndarray[Any, np.dtype[np.float64]]:
    total = np.zeros(movie.shape[1:], np.float64)
    for start in range(0, movie.shape[0], block):
        total += np.asarray(movie[start : start + block], dtype=np.float64).sum(axis=0)
    return total / movie.shape[0]


def run_pipeline(
    config: PipelineConfig, out_dir: str | Path, *, force: bool = False
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

    Returns
    -------
    PipelineResult
        The written files and a summary (also saved as ``summary.json``).
    """
    from cascope import io
    from cascope.events.features import write_table

    start = time.perf_counter()
    raw = _read(config)  # validates the input before anything is written
    if raw.shape[0] == 0:
        raise InputError("has no frames", config.input)
    out = Path(out_dir).expanduser().resolve()
    if config.input.resolve() == out or out in config.input.resolve().parents:
        raise InputError("the output folder must not contain the input", out)
    summary: dict[str, Any] = {"input": str(config.input), "shape": list(raw.shape)}
    names: dict[str, str] = {}
    with atomic_output(out, inputs=[config.input], force=force) as tmp:
        tmp.mkdir()
        (tmp / "pipeline.yaml").write_text(config.to_yaml())
        (tmp / "versions.json").write_text(json.dumps(versions(), indent=2) + "\n")
        if config.qc:
            from cascope.qc import run_qc

            report = run_qc(raw)
            (tmp / "qc.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
            summary["qc"] = {"flags": report.flags, "recommendation": report.recommendation}
            names["qc"] = "qc.json"
            log.info("qc: %s", report.recommendation)
        denoised: Movie | None = None
        if config.denoise is not None and config.denoise.method != "none":
            t0 = time.perf_counter()
            summary["denoise"] = _denoise(config.denoise, config, tmp / "denoised.tif")
            summary["denoise"]["seconds"] = time.perf_counter() - t0
            denoised = io.read(tmp / "denoised.tif")
            names["denoised"] = "denoised.tif"
        if config.events is not None:
            t0 = time.perf_counter()
            use_denoised = config.events.source == "denoised" and denoised is not None
            source = denoised if use_denoised and denoised is not None else raw
            table, labels = _events(config.events, raw, source, config)
            write_table(table, tmp / "events.csv")
            io.write(tmp / "event_labels.tif", labels, axes="TYX")
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
                "on": "denoised" if use_denoised else "input",
                "n_events": len(table),
                "seconds": time.perf_counter() - t0,
            }
            names.update(events="events.csv", event_labels="event_labels.tif", figure="events.png")
        summary["seconds"] = time.perf_counter() - start
        summary["files"] = names
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return PipelineResult(out, {k: out / v for k, v in names.items()}, summary)
