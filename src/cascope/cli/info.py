"""``cascope info FILE``: axes, shape, type, voxel size, frame rate and metadata of a recording."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cascope.cli._apps import reads_recordings

_AXES = typer.Option(None, "--axes", help="Axes of the data when the file does not say, e.g. TYX.")
_DATASET = typer.Option(None, "--dataset", help="Dataset inside an HDF5 file / array in a Zarr.")
_SERIES = typer.Option(
    None, "--series", help="Series of a multi-series TIFF or LIF (index or name)."
)
_JSON = typer.Option(False, "--json", help="Print the description as JSON instead of a table.")


def _describe(movie: Any) -> dict[str, Any]:
    shape = dict(zip(movie.axes, movie.shape, strict=True))
    info: dict[str, Any] = {
        "file": str(movie.source),
        "format": movie.metadata.get("format"),
        "axes": movie.axes,
        "shape": shape,
        "dtype": str(movie.dtype),
        "size_mb": round(movie.nbytes / 2**20, 3),
        "voxel_size_um": movie.voxel_size,
        "frame_rate_hz": movie.frame_rate,
    }
    if movie.frame_rate and "T" in shape:
        info["duration_s"] = round(shape["T"] / movie.frame_rate, 6)
    info["metadata"] = {k: v for k, v in movie.metadata.items() if k != "format"}
    return info


def _short(value: Any, limit: int = 100) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def info(
    file: Path = typer.Argument(..., help="TIFF, HDF5, Zarr/OME-Zarr, LIF, or a folder of frames."),
    axes: str | None = _AXES,
    dataset: str | None = _DATASET,
    series: str | None = _SERIES,
    as_json: bool = _JSON,
) -> None:
    """Describe a recording without reading its pixels."""
    import json

    from rich.console import Console
    from rich.table import Table

    from cascope import io

    chosen: int | str | None = int(series) if series is not None and series.isdigit() else series
    movie = io.read(file, axes=axes, dataset=dataset, series=chosen)
    described = _describe(movie)
    console = Console()
    if as_json:
        console.print_json(json.dumps(described, default=str))
        return
    table = Table(title=str(file), show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in described.items():
        if key == "metadata":
            continue
        if key == "shape":
            value = " × ".join(f"{a}={n}" for a, n in value.items())
        elif key == "voxel_size_um" and value:
            value = ", ".join(f"{a}={v:.4g}" for a, v in value.items())
        table.add_row(key, "-" if value is None else str(value))
    for key, value in described["metadata"].items():
        table.add_row(f"metadata.{key}", _short(value))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``cascope info`` to the app."""
    app.command("info")(reads_recordings(info))
