"""``cascope export``: a model folder as a bioimage.io package, or a bare ONNX/TorchScript file."""

from __future__ import annotations

from pathlib import Path

import typer

FORMATS = ("bioimageio", "onnx", "torchscript")


def export(
    model_dir: Path = typer.Argument(
        ..., metavar="MODEL_DIR", help="Model folder (cascope train denoiser/events/segmenter)."
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="File to write: model.zip (bioimageio), .onnx or .pt."
    ),
    fmt: str = typer.Option(
        "bioimageio",
        "--format",
        help="bioimageio: a tested bioimage.io 0.5 package (Fiji/deepImageJ, ilastik, "
        "napari, cascope); onnx or torchscript: the bare network.",
    ),
    sample: Path | None = typer.Option(
        None,
        "--sample",
        help="bioimageio: recording to cut the test input from (default: synthetic data).",
    ),
    author: list[str] = typer.Option(
        [], "--author", help="bioimageio: an author's name (repeat for several)."
    ),
    name: str | None = typer.Option(None, "--name", help="bioimageio: the package's name."),
    onnx: bool = typer.Option(
        False, "--onnx", help="bioimageio: add ONNX weights (needs the onnx extra)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing output."),
) -> None:
    """Export MODEL_DIR; a bioimage.io package is tested before it is written."""
    from rich.console import Console

    from cascope.errors import CascopeError

    if fmt not in FORMATS:
        raise CascopeError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "bioimageio":
        from cascope.models.bioimageio import export_bioimageio

        data = None
        if sample is not None:
            from cascope.io import read

            data = read(sample).to_numpy()
        out = export_bioimageio(
            model_dir,
            output,
            sample=data,
            authors=author or ("cascope user",),
            name=name,
            onnx=onnx,
            force=force,
        )
    else:
        from cascope.models.bioimageio import export_file

        out = export_file(model_dir, output, fmt=fmt, force=force)  # type: ignore[arg-type]
    Console(stderr=True).print(f"wrote {out}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``cascope export``."""
    app.command("export")(export)
