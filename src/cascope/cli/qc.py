"""``cascope qc FILE``: data-quality report of a recording (text, and JSON with ``--json``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cascope.cli._apps import reads_recordings


def _fmt(value: Any, spec: str = ".4g") -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def _read_noise(noise: Any) -> str:
    """Show the read noise, or that it could not be measured (never 0 from an impossible fit)."""
    if noise.problem and noise.gain is not None and noise.read_noise_adu == 0:
        return "not measurable (see the recommendation)"
    return f"{_fmt(noise.read_noise_adu)} ADU = {_fmt(noise.read_noise_e)} e-"


def _print(report: Any, path: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    noise = report.noise
    table = Table(title=f"QC of {path.name}", show_header=False)
    table.add_column("check", style="bold")
    table.add_column("value")
    rows = [
        ("shape / dtype / axes", f"{report.shape} {report.dtype} {report.axes}"),
        ("frames sampled", f"{report.frames_sampled} (along {report.frame_axis or '—'})"),
        ("value range", f"{_fmt(report.value_min)} … {_fmt(report.value_max)}"),
        ("distinct levels", _fmt(report.n_levels)),
        (
            "levels carrying the signal",
            f"{_fmt(report.n_signal_levels)} between {_fmt(report.signal_low)} and "
            f"{_fmt(report.signal_high)}",
        ),
        ("dynamic range compressed", _fmt(report.dynamic_range_compressed)),
        (
            "saturation",
            f"{100 * report.saturation_fraction:.3f} % at {_fmt(report.saturation_level)}",
        ),
        ("offset + background", f"{_fmt(report.offset)} ADU"),
        ("gain", f"{_fmt(noise.gain)} ADU/e-"),
        ("read noise", _read_noise(noise)),
        ("mean photons / pixel", _fmt(report.mean_photons)),
        ("SNR (bright structure, one frame)", _fmt(report.snr, ".3g")),
        (
            "consecutive-frame correlation",
            f"{_fmt(report.temporal_correlation, '.3f')} "
            f"(raw {_fmt(report.temporal_correlation_raw, '.3f')})",
        ),
        ("noise model", "reliable" if noise.reliable else f"unreliable: {noise.problem}"),
        ("flags", ", ".join(report.flags) or "none"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console = Console()
    console.print(table)
    console.print(f"[bold]recommendation:[/] {report.recommendation}", highlight=False)


def qc(
    path: Path = typer.Argument(..., help="Recording to check (TIFF, Zarr, HDF5, ...)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the report here."),
    background: Path | None = typer.Option(
        None, "--background", help="Background/offset frame (Y, X) to add back first."
    ),
    axes: str | None = typer.Option(None, "--axes", help="Axes when the file does not say."),
    dataset: str | None = typer.Option(None, "--dataset", help="HDF5 dataset path."),
    channel: int | None = typer.Option(None, "--channel", help="Channel to check."),
    offset: float | None = typer.Option(None, "--offset", help="Known camera offset, ADU."),
    pairs: int = typer.Option(32, "--pairs", min=1, help="Frame pairs to sample."),
    force: bool = typer.Option(False, "--force", help="Replace an existing JSON file."),
) -> None:
    """Check quantisation, saturation, offset, noise model, SNR and frame correlation."""
    import numpy as np

    from cascope import _json as strict_json
    from cascope.config.qc import QCConfig
    from cascope.io import atomic_output, read
    from cascope.qc import run_qc

    if json_out is not None:
        from cascope.io import check_output

        check_output(json_out, inputs=[path], force=force)
    movie = read(path, axes=axes, dataset=dataset)
    bg = None
    if background is not None:
        bg = np.squeeze(read(background).to_numpy())
    cfg = QCConfig(offset=offset, max_pairs=pairs)
    report = run_qc(movie, background=bg, channel=channel, config=cfg)
    _print(report, path)
    if json_out is not None:
        with atomic_output(json_out, inputs=[path], force=force) as tmp:
            tmp.write_text(strict_json.dumps(report.to_dict(), indent=2))


def register(app: typer.Typer) -> None:
    """Add ``cascope qc`` to the application."""
    app.command("qc")(reads_recordings(qc))
