"""``cascope demo``: simulate recordings, denoise one, detect events in another, score both.

The first command a newcomer runs: it needs no data and finishes in about a minute on two CPU
cores. Part 1 denoises a simulated somatic movie with classical filters and a small temporal
network; part 2 trains a small PU event detector on simulated mSCT movies, runs the full pipeline
(:func:`cascope.pipeline.run_pipeline`: quality check, denoising, detection, features, figure) on
a new movie and scores the events against the ground truth, beside the intensity-threshold
baseline.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

#: Classical settings the demo compares (fast ones; BM3D/BM4D take minutes at this size).
DEMO_METHODS: dict[str, dict[str, Any]] = {
    "gaussian 2d": {"method": "gaussian", "mode": "2d", "sigma": 1.0},
    "gaussian 3d": {"method": "gaussian", "mode": "3d", "sigma": 1.0, "sigma_stack": 1.0},
    "median 3d": {"method": "median", "mode": "3d", "size": 3},
    "bilateral 2d": {"method": "bilateral", "mode": "2d"},
}


def simulate_recording(out: Path, *, seed: int, frames: int, size: int, force: bool) -> Any:
    """Simulate a somatic movie and save it (noisy.tif, clean.tif, truth.json) under ``out``."""
    from cascope import simulate

    sim = simulate.somatic(seed=seed, n_frames=frames, shape=(size, size))
    simulate.save(sim, out / "recording", force=force)
    return sim


def score(pred: Any, clean: Any, noisy: Any) -> dict[str, float]:
    """Score against ``clean`` with :func:`cascope.metrics.score_denoising` (SI-PSNR per frame)."""
    from cascope.metrics import score_denoising

    return score_denoising(pred, clean, noisy=noisy, per_frame=True).to_dict()


def denoise_classical(out: Path, noisy_path: Path, *, force: bool) -> list[dict[str, Any]]:
    """Denoise the demo movie file-to-file with every :data:`DEMO_METHODS` entry."""
    from cascope.config.denoise_classical import ClassicalDenoiseConfig
    from cascope.denoise.stream import denoise_file

    runs = []
    for name, options in DEMO_METHODS.items():
        target = out / f"denoised_{name.replace(' ', '_')}.tif"
        start = time.perf_counter()
        denoise_file(noisy_path, target, config=ClassicalDenoiseConfig(**options), force=force)
        runs.append({"method": name, "file": target, "seconds": time.perf_counter() - start})
    return runs


def denoise_temporal_network(out: Path, noisy_path: Path, *, force: bool) -> dict[str, Any]:
    """Train a small temporal Noise2Noise (deepcad) network on the demo movie, then denoise it.

    A small budget (depth 3, base 8, at most 300 steps of 4 patches, fewer for a shorter movie)
    keeps the demo fast on a laptop CPU; the model folder is kept beside the outputs.
    """
    from cascope.config.denoise import DeepDenoiseConfig
    from cascope.denoise.deep import denoise_deep_file, read_recording, train_denoiser

    target = out / "denoised_deepcad.tif"
    movie = read_recording(noisy_path)
    steps = int(min(300, max(30, 3 * movie.shape[0])))
    depth_t = int(max(2, min(8, movie.shape[0] // 2)))  # deepcad crops twice this many frames
    cfg = DeepDenoiseConfig.model_validate(
        {
            "method": "deepcad",
            "patch": (depth_t, 32, 32),
            "depth": 3,
            "base": 8,
            # a residual network converges faster in so few steps at the demo's brightness
            "residual": True,
            "training": {"steps": steps, "batch_size": 4, "lr": 2e-3, "val_every": 100},
        }
    )
    start = time.perf_counter()
    model, _ = train_denoiser(movie, config=cfg, device="cpu")
    model.save(out / "model_deepcad", force=force)
    denoise_deep_file(
        noisy_path,
        target,
        model=model,
        device="cpu",
        force=force,
    )
    seconds = time.perf_counter() - start
    return {"method": "deepcad (trained here)", "file": target, "seconds": seconds}


#: mSCT movies of the demo: small, dense in events, at the default simulated brightness.
EVENT_MOVIE: dict[str, Any] = {"n_frames": 96, "shape": (48, 48), "event_rate": 30.0}


def detect_events_demo(out: Path, *, seed: int, steps: int, force: bool) -> dict[str, Any]:
    """Train a small PU event detector, run the pipeline on a new mSCT movie, score the events.

    Two simulated movies train the 3D U-Net, a third tunes its threshold (and the baseline's),
    a fourth, never seen, goes through :func:`cascope.pipeline.run_pipeline`.
    """
    import numpy as np
    import pandas as pd

    from cascope import simulate
    from cascope.config.events import EventTrainConfig
    from cascope.config.pipeline import DenoiseStep, EventsStep, PipelineConfig
    from cascope.events import (
        baseline_scores,
        label_events,
        threshold_from_event_f1,
        train_event_detector,
    )
    from cascope.metrics import match_events
    from cascope.pipeline import run_pipeline

    movies = [simulate.mscts(seed=seed + 101 + k, **EVENT_MOVIE) for k in range(4)]
    train, valid, test = movies[:2], movies[2], movies[3]
    simulate.save(test, out / "events_recording", force=force)
    cfg = EventTrainConfig.model_validate(
        {
            "window": (16, 32, 32),
            "cache": (24, 48, 48),
            "model": {"depth": 3, "base": 8},
            "pu": {"pos_weight": 2.0},
            "training": {"steps": steps, "batch_size": 2, "val_every": 10_000, "lr": 2e-3},
        }
    )
    start = time.perf_counter()
    train_event_detector(
        [m.noisy for m in train],
        [m.labels for m in train],
        config=cfg,
        valid=([valid.noisy], [valid.labels]),
        output=out / "model_events",
        device="cpu",
        force=force,
    )
    train_seconds = time.perf_counter() - start
    result = run_pipeline(
        PipelineConfig(
            input=out / "events_recording" / "noisy.tif",
            denoise=DenoiseStep(method="gaussian"),
            events=EventsStep(model=out / "model_events"),
            device="cpu",
        ),
        out / "events_pipeline",
        force=force,
    )
    found = pd.read_csv(result.files["events"])
    k, _ = threshold_from_event_f1(
        baseline_scores(valid.noisy), valid.events, thresholds=np.arange(1.0, 8.0, 0.5)
    )
    _, base = label_events(baseline_scores(test.noisy), threshold=k)
    unet, baseline = match_events(found, test.events), match_events(base, test.events)
    return {
        "n_true": len(test.events),
        "unet": {
            "found": len(found),
            "f1": unet.f1,
            "precision": unet.precision,
            "recall": unet.recall,
        },
        "baseline": {
            "found": len(base),
            "f1": baseline.f1,
            "precision": baseline.precision,
            "recall": baseline.recall,
            "k": float(k),
        },
        "train_seconds": train_seconds,
        "pipeline_seconds": result.summary["seconds"],
        "folder": str(result.out_dir),
    }


def run_demo(
    out: Path,
    *,
    seed: int = 0,
    frames: int = 100,
    size: int = 96,
    event_steps: int = 300,
    events: bool = True,
    force: bool = False,
    status: Any = None,
) -> dict[str, Any]:
    """Run the demo and return its scores (also saved as ``metrics.json``).

    ``denoise`` holds one row per result (the noisy input first), ``events`` the detection
    scores (None with ``events=False``).
    """
    from cascope import _json as strict_json
    from cascope import io

    def say(text: str) -> None:
        if status is not None:
            status.update(text)

    out.mkdir(parents=True, exist_ok=True)
    say("simulating a somatic movie ...")
    sim = simulate_recording(out, seed=seed, frames=frames, size=size, force=force)
    noisy_path = out / "recording" / "noisy.tif"
    rows: list[dict[str, Any]] = [
        {"method": "noisy input", "seconds": 0.0, **score(sim.noisy, sim.clean, sim.noisy)}
    ]
    say("denoising with classical filters ...")
    runs = denoise_classical(out, noisy_path, force=force)
    say("training a temporal Noise2Noise network on the movie, then denoising it ...")
    runs.append(denoise_temporal_network(out, noisy_path, force=force))
    for run in runs:
        pred = io.read(run["file"]).to_numpy()  # score what was written, not a float copy
        rows.append({**run, **score(pred, sim.clean, sim.noisy)})
    table = [{k: (str(v) if isinstance(v, Path) else v) for k, v in r.items()} for r in rows]
    found = None
    if events:
        say("training an event detector on simulated mSCT movies, running the pipeline ...")
        found = detect_events_demo(out, seed=seed, steps=event_steps, force=force)
    result = {"denoise": table, "events": found}
    (out / "metrics.json").write_text(strict_json.dumps(result, indent=2))
    return {"denoise": rows, "events": found}


def demo(
    out: Path = typer.Option(Path("cascope-demo"), "--out", "-o", help="Output folder."),
    seed: int = typer.Option(0, "--seed", help="Seed of the simulations."),
    frames: int = typer.Option(100, "--frames", min=8, help="Frames of the somatic movie."),
    size: int = typer.Option(96, "--size", min=32, help="Frame size in pixels (square)."),
    event_steps: int = typer.Option(
        300, "--event-steps", min=1, help="Training steps of the event detector."
    ),
    events: bool = typer.Option(True, "--events/--no-events", help="Run the events part."),
    force: bool = typer.Option(False, "--force", help="Replace the outputs of an earlier run."),
) -> None:
    """Simulate recordings; denoise one, detect events in another; score against the truth."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    with console.status("starting ...") as status:
        res = run_demo(
            out,
            seed=seed,
            frames=frames,
            size=size,
            event_steps=event_steps,
            events=events,
            force=force,
            status=status,
        )
    table = Table(
        title=f"denoising: {frames} x {size} x {size} simulated somatic movie vs its truth"
    )
    for col in ("method", "PSNR dB", "SSIM", "SI-PSNR dB", "SI-PSNR gain dB", "time s"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in res["denoise"]:
        table.add_row(
            r["method"],
            f"{r['psnr']:.2f}",
            f"{r['ssim']:.3f}",
            f"{r['si_psnr']:.2f} ± {r['si_psnr_std']:.2f}",
            f"{r['si_psnr_gain']:+.2f}",
            f"{r['seconds']:.2f}",
        )
    console.print(table)
    ev = res["events"]
    if ev is not None:
        shape = EVENT_MOVIE["shape"]
        t2 = Table(
            title=f"events: {ev['n_true']} true mSCTs in a new "
            f"{EVENT_MOVIE['n_frames']} x {shape[0]} x {shape[1]} simulated movie "
            "(match: centroid < 6)"
        )
        for col in ("detector", "found", "precision", "recall", "F1"):
            t2.add_column(col, justify="left" if col == "detector" else "right")
        for name, key in (
            ("3D U-Net (PU, trained here)", "unet"),
            (f"intensity threshold (z > {ev['baseline']['k']:g})", "baseline"),
        ):
            r = ev[key]
            t2.add_row(
                name,
                str(r["found"]),
                f"{r['precision']:.2f}",
                f"{r['recall']:.2f}",
                f"{r['f1']:.2f}",
            )
        console.print(t2)
        console.print(
            f"pipeline outputs (qc, denoised movie, event table with features, figure): "
            f"{ev['folder']}",
            highlight=False,
        )
    console.print(f"all outputs and metrics.json in {out.resolve()}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``cascope demo``."""
    app.command("demo")(demo)
