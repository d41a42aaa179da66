"""``cascope benchmark denoise``: run every applicable denoiser on your data, print a ranking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cascope.cli._apps import benchmark_app, reads_recordings
from cascope.cli.train_denoiser import STEPS_HELP

#: Default crop (T, Y, X) every method is scored on: BM4D on it takes about a minute on a
#: laptop CPU, and a movie of any size costs no more memory than the crop.
DEFAULT_CROP = (48, 128, 128)
#: Default training time of each network, seconds.
DEFAULT_NETWORK_SECONDS = 60.0


def _structure_map(movie: Any, n_frames: int) -> Any:
    """Local standard deviation of the mean of a few frames: where the crop finds structure."""
    import numpy as np
    from scipy.ndimage import uniform_filter

    picks = np.unique(np.linspace(0, n_frames - 1, min(8, n_frames)).round().astype(int))
    mean = np.mean([np.asarray(movie[int(i)], np.float64) for i in picks], axis=0)
    m1 = uniform_filter(mean, 15)
    return np.sqrt(np.maximum(uniform_filter(mean * mean, 15) - m1 * m1, 0.0))


def benchmark_denoise(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="Noisy recording (T, Y, X)."),
    reference: Path | None = typer.Option(
        None, "--reference", help="Clean ground truth of the same shape (e.g. simulated)."
    ),
    methods: list[str] | None = typer.Option(
        None, "--method", "-m", help="Only these methods (repeat the option)."
    ),
    crop: tuple[int, int, int] = typer.Option(
        DEFAULT_CROP,
        "--crop",
        min=1,
        help="Score every method on this crop T Y X: the first T frames and the Y x X "
        "window with the most structure (give the movie's size to use all of it: slow "
        "filters such as BM4D then take much longer).",
    ),
    steps: int | None = typer.Option(
        None, "--steps", min=1, help=f"Training steps per network ({STEPS_HELP})."
    ),
    network_seconds: float = typer.Option(
        DEFAULT_NETWORK_SECONDS,
        "--network-seconds",
        min=0,
        help="Training time per network: it stops there if its steps are not done (0: no "
        "limit). The networks are those `cascope denoise` trains.",
    ),
    axes: str | None = typer.Option(None, "--axes", help="Axes when the file does not say."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the table as JSON."),
    force: bool = typer.Option(False, "--force", help="Replace an existing JSON file."),
) -> None:
    """Rank denoisers on INPUT: SI-PSNR/PSNR/SSIM with --reference, else held-out frames."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from cascope import _json as strict_json
    from cascope._progress import progress_bar
    from cascope.config.denoise import DENOISE_STEPS
    from cascope.denoise.compare import available_methods, benchmark_crop, benchmark_denoisers
    from cascope.denoise.deep import read_recording
    from cascope.errors import InputError
    from cascope.io import atomic_output, check_finite, check_output

    inputs = [input_path] if reference is None else [input_path, reference]
    if json_out is not None:
        check_output(json_out, inputs=inputs, force=force)
    movie = read_recording(input_path, axes=axes)
    if movie.axes != "TYX":
        raise InputError(f"needs a (T, Y, X) movie, got axes {movie.axes!r}", input_path)
    shape = movie.shape
    ref_movie = None
    if reference is not None:
        ref_movie = read_recording(reference, axes=axes or "TYX")
        if ref_movie.shape != shape:
            raise InputError(
                f"reference shape {ref_movie.shape} differs from the movie's {shape}", reference
            )
    score = None if tuple(crop[1:]) >= shape[1:] else _structure_map(movie, shape[0])
    region = benchmark_crop(shape, crop, score)
    noisy = np.asarray(movie[region], np.float32)
    check_finite(noisy, path=input_path, axis="T")  # NaN would rank every method NaN
    ref = None if ref_movie is None else np.asarray(ref_movie[region], np.float32)
    if ref is not None:
        check_finite(ref, path=reference, axis="T")
    chosen = list(methods) if methods else available_methods()
    console = Console(stderr=True)
    where = ", ".join(f"{s.start}:{s.stop}" for s in region)
    console.print(
        f"scoring {len(chosen)} methods on the crop [{where}] of {shape} (T, Y, X)",
        highlight=False,
    )
    with progress_bar("benchmark", len(chosen) + 1, fields=("method",)) as update:
        done = [0]

        def finished(row: dict[str, Any]) -> None:
            done[0] += 1
            update(done[0], method=f"{row['method']} done ({row['seconds']:.0f} s)")

        rows = benchmark_denoisers(
            noisy,
            reference=ref,
            methods=chosen,
            steps=steps or DENOISE_STEPS,
            max_seconds=network_seconds or None,
            device=device,
            on_result=finished,
            on_start=lambda m: update(done[0], method=m),
        )
    scores = ["si_psnr", "psnr", "ssim"] if ref is not None else ["heldout_mse"]
    title = "vs reference" if ref is not None else "held-out odd frames (lower is better)"
    table = Table(title=f"denoisers on {input_path.name} [{where}], {title}")
    for col in ["rank", "method", *scores, "steps", "seconds"]:
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in rows:
        trained = f"{r['steps']}/{r['steps_planned']}" if "steps" in r else ""
        table.add_row(
            str(r["rank"]),
            r["method"],
            *(f"{r[s]:.4g}" for s in scores),
            trained,
            f"{r['seconds']:.2f}",
        )
    Console().print(table)
    short = [r for r in rows if "steps" in r and r["steps"] < r["steps_planned"]]
    if short:
        console.print(
            f"{', '.join(r['method'] for r in short)}: stopped by --network-seconds "
            f"{network_seconds:g} before their {short[0]['steps_planned']} steps (a network "
            "ranks higher with its full training: raise it, or 0 for no limit)",
            highlight=False,
        )
    if json_out is not None:
        with atomic_output(json_out, inputs=inputs, force=force) as tmp:
            tmp.write_text(strict_json.dumps(rows, indent=2))


def register(app: typer.Typer) -> None:
    """Add ``cascope benchmark denoise`` to the ``benchmark`` group."""
    benchmark_app.command("denoise")(reads_recordings(benchmark_denoise))
