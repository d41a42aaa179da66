"""``cascope run``: one recording through quality check, denoising, event detection, features."""

from __future__ import annotations

from pathlib import Path

import typer

from cascope.cli._apps import reads_recordings


def run(
    input_path: Path | None = typer.Argument(
        None, metavar="[INPUT]", help="(T, Y, X) movie; may come from --config instead."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="New folder for every result."),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="pipeline.yaml (e.g. one saved by an earlier run)."
    ),
    denoise: str | None = typer.Option(
        None,
        "--denoise",
        help="none, auto (what the quality check recommends), gaussian, median, bilateral, "
        "bm3d, bm4d, deepcad, n2v or n2v3d.",
    ),
    denoiser: Path | None = typer.Option(None, "--denoiser", help="Trained denoiser folder."),
    events_model: Path | None = typer.Option(
        None, "--events-model", help="Trained event detector (default: threshold detector)."
    ),
    no_events: bool = typer.Option(False, "--no-events", help="Skip event detection."),
    rois: Path | None = typer.Option(
        None,
        "--rois",
        help="Your ROIs (ImageJ .zip/.roi, label image, JSON of [y, x] pixels, suite2p "
        "stat.npy): traces.csv and each event's ROI.",
    ),
    no_qc: bool = typer.Option(False, "--no-qc", help="Skip the quality check."),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Self-training steps."),
    dtype: str | None = typer.Option(
        None, "--dtype", help="denoised.tif: float32 (default) or same (the input's type)."
    ),
    frame_rate: float | None = typer.Option(None, "--frame-rate", help="Hz."),
    axes: str | None = typer.Option(None, "--axes", help="Axes when the file lacks them."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu or cuda."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output folder."),
) -> None:
    """Run the pipeline; the folder gets the results, pipeline.yaml and versions.json."""
    from rich.console import Console

    from cascope.config.pipeline import DenoiseStep, EventsStep, PipelineConfig
    from cascope.errors import InputError
    from cascope.pipeline import run_pipeline

    if config is not None:
        cfg = PipelineConfig.from_yaml(config, input=input_path)
    elif input_path is not None:
        cfg = PipelineConfig(input=input_path)
    else:
        raise InputError("give an INPUT movie or --config pipeline.yaml")
    update: dict[str, object] = {}
    if input_path is not None:
        update["input"] = input_path
    for key, value in (
        ("axes", axes),
        ("frame_rate", frame_rate),
        ("device", device),
        ("rois", rois),
    ):
        if value is not None:
            update[key] = value
    if no_qc:
        update["qc"] = False
    step = cfg.denoise or DenoiseStep(method="none")
    changes: dict[str, object] = {}
    if denoise is not None:
        changes["method"] = denoise
    if denoiser is not None:
        changes["model"] = denoiser
    if steps is not None:
        changes["steps"] = steps
    if dtype is not None:
        changes["dtype"] = dtype
    if changes:
        update["denoise"] = DenoiseStep.model_validate({**step.model_dump(), **changes})
    if no_events:
        update["events"] = None
    elif events_model is not None:
        ev = cfg.events or EventsStep()
        update["events"] = ev.model_copy(update={"model": events_model})
    cfg = PipelineConfig.model_validate({**cfg.model_dump(), **update})
    result = run_pipeline(cfg, output, force=force)
    console = Console()
    summary = result.summary
    if "qc" in summary:
        console.print(f"qc: {summary['qc']['recommendation']}", highlight=False)
    if "denoise" in summary:
        how = " (the quality check's choice)" if "chosen_by" in summary["denoise"] else ""
        console.print(f"denoised with {summary['denoise']['method']}{how}", highlight=False)
    if "rois" in summary:
        r = summary["rois"]
        note = (
            f", {r['n_unreliable_baseline']} without a reliable baseline (ΔF/F NaN)"
            if r["n_unreliable_baseline"]
            else ""
        )
        console.print(f"{r['n_rois']} ROI traces{note}", highlight=False)
    if "events" in summary:
        ev_sum = summary["events"]
        movie = "denoised movie" if ev_sum["on"] == "denoised" else "input movie"
        console.print(
            f"{ev_sum['n_events']} events ({ev_sum['detector']}) detected on the {movie}: "
            f"{ev_sum['why']}",
            highlight=False,
        )
    console.print(f"results in {result.out_dir}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``cascope run``."""
    app.command("run")(reads_recordings(run))
