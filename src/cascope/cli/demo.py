"""``cascope demo``: simulate a small recording, denoise it, score it against its ground truth.

The first command a newcomer runs: it needs no data and finishes in well under a minute on two
CPU cores. Each step is a function so later stages can be appended to the same table.
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
    """PSNR, SSIM (data range of the clean movie) and per-frame SI-PSNR against ``clean``."""
    import numpy as np

    from cascope.metrics.image import psnr, si_psnr_improvement, si_psnr_per_frame, ssim

    clean = np.asarray(clean, dtype=np.float32)
    pred = np.asarray(pred, dtype=np.float32)
    data_range = float(clean.max() - clean.min())
    si = si_psnr_per_frame(pred, clean)
    gain = si_psnr_improvement(pred, noisy, clean)
    return {
        "psnr": psnr(pred, clean, data_range=data_range),
        "ssim": ssim(pred, clean, data_range=data_range),
        "si_psnr": si.mean,
        "si_psnr_std": si.std,
        "si_psnr_gain": gain.mean,
    }


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

    A tiny budget (depth 3, base 8, at most 100 steps of 4 patches, fewer for a shorter movie)
    keeps the demo fast on a laptop CPU; the model folder is kept beside the outputs.
    """
    from cascope.config.denoise import DeepDenoiseConfig, DeepPredictConfig
    from cascope.denoise.deep import denoise_deep_file, read_recording, train_denoiser

    target = out / "denoised_deepcad.tif"
    movie = read_recording(noisy_path)
    steps = int(min(100, max(30, 2 * movie.shape[0])))
    cfg = DeepDenoiseConfig.model_validate(
        {
            "method": "deepcad",
            "patch": (4, 32, 32),
            "depth": 3,
            "base": 8,
            # a residual network converges faster in so few steps at the demo's brightness
            "residual": True,
            "training": {"steps": steps, "batch_size": 4, "lr": 2e-3, "val_every": 50},
        }
    )
    start = time.perf_counter()
    model, _ = train_denoiser(movie, config=cfg, device="cpu")
    model.save(out / "model_deepcad", force=force)
    denoise_deep_file(
        noisy_path,
        target,
        model=model,
        predict=DeepPredictConfig.model_validate({"dtype": "same"}),
        device="cpu",
        force=force,
    )
    seconds = time.perf_counter() - start
    return {"method": "deepcad (trained here)", "file": target, "seconds": seconds}


def run_demo(
    out: Path, *, seed: int = 0, frames: int = 100, size: int = 96, force: bool = False
) -> list[dict[str, Any]]:
    """Run the demo and return one row per result (the noisy input first), scores included."""
    import json

    from cascope import io

    out.mkdir(parents=True, exist_ok=True)
    sim = simulate_recording(out, seed=seed, frames=frames, size=size, force=force)
    noisy_path = out / "recording" / "noisy.tif"
    rows: list[dict[str, Any]] = [
        {"method": "noisy input", "seconds": 0.0, **score(sim.noisy, sim.clean, sim.noisy)}
    ]
    runs = denoise_classical(out, noisy_path, force=force)
    runs.append(denoise_temporal_network(out, noisy_path, force=force))
    for run in runs:
        pred = io.read(run["file"]).to_numpy()  # score what was written, not a float copy
        rows.append({**run, **score(pred, sim.clean, sim.noisy)})
    table = [{k: (str(v) if isinstance(v, Path) else v) for k, v in r.items()} for r in rows]
    (out / "metrics.json").write_text(json.dumps(table, indent=2))
    return rows


def register(app: typer.Typer) -> None:
    """Add ``cascope demo``."""

    @app.command("demo")
    def demo(
        out: Path = typer.Option(Path("cascope-demo"), "--out", "-o", help="Output folder."),
        seed: int = typer.Option(0, "--seed", help="Seed of the simulation."),
        frames: int = typer.Option(100, "--frames", min=8, help="Frames to simulate."),
        size: int = typer.Option(96, "--size", min=32, help="Frame size in pixels (square)."),
        force: bool = typer.Option(False, "--force", help="Replace the outputs of an earlier run."),
    ) -> None:
        """Simulate a small two-photon movie, denoise it and score it against the ground truth."""
        from rich.console import Console
        from rich.table import Table

        console = Console()
        with console.status("simulating, denoising and scoring ..."):
            rows = run_demo(out, seed=seed, frames=frames, size=size, force=force)
        table = Table(
            title=f"cascope demo: {frames} x {size} x {size} simulated somatic movie vs its truth"
        )
        for col in ("method", "PSNR dB", "SSIM", "SI-PSNR dB", "SI-PSNR gain dB", "time s"):
            table.add_column(col, justify="left" if col == "method" else "right")
        for r in rows:
            table.add_row(
                r["method"],
                f"{r['psnr']:.2f}",
                f"{r['ssim']:.3f}",
                f"{r['si_psnr']:.2f} ± {r['si_psnr_std']:.2f}",
                f"{r['si_psnr_gain']:+.2f}",
                f"{r['seconds']:.2f}",
            )
        console.print(table)
        console.print(f"outputs and metrics.json in {out.resolve()}", highlight=False)
