"""``cascope benchmark denoise``: run every applicable denoiser on your data, print a ranking."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add ``cascope benchmark denoise`` to the ``benchmark`` group."""
    from cascope.cli._apps import benchmark_app, reads_recordings

    @benchmark_app.command("denoise")
    @reads_recordings
    def benchmark_denoise(
        input_path: Path = typer.Argument(..., metavar="INPUT", help="Noisy recording (T, Y, X)."),
        reference: Path | None = typer.Option(
            None, "--reference", help="Clean ground truth of the same shape (e.g. simulated)."
        ),
        methods: list[str] | None = typer.Option(
            None, "--method", "-m", help="Only these methods (repeat the option)."
        ),
        steps: int = typer.Option(200, "--steps", min=1, help="Training steps per network."),
        frames: int = typer.Option(
            200, "--frames", min=4, help="Use at most this many frames (from the start)."
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
        from cascope.denoise.compare import benchmark_denoisers
        from cascope.denoise.deep import read_recording
        from cascope.errors import InputError
        from cascope.io import atomic_output, check_finite, check_output

        inputs = [input_path] if reference is None else [input_path, reference]
        if json_out is not None:
            check_output(json_out, inputs=inputs, force=force)
        movie = read_recording(input_path, axes=axes)
        if movie.axes != "TYX":
            raise InputError(f"needs a (T, Y, X) movie, got axes {movie.axes!r}", input_path)
        noisy = np.asarray(movie[:frames], np.float32)
        check_finite(noisy, path=input_path, axis="T")  # NaN would rank every method NaN
        ref = None
        if reference is not None:
            ref_movie = read_recording(reference, axes=axes or "TYX")
            ref = np.asarray(ref_movie[:frames], np.float32)
            check_finite(ref, path=reference, axis="T")
        console = Console(stderr=True)
        with console.status("benchmarking...") as status:
            rows = benchmark_denoisers(
                noisy,
                reference=ref,
                methods=methods,
                steps=steps,
                device=device,
                on_result=lambda r: status.update(f"done: {r['method']} ({r['seconds']} s)"),
            )
        scores = ["si_psnr", "psnr", "ssim"] if ref is not None else ["heldout_mse"]
        title = "vs reference" if ref is not None else "held-out odd frames (lower is better)"
        table = Table(title=f"denoisers on {input_path.name}, {title}")
        for col in ["rank", "method", *scores, "seconds"]:
            table.add_column(col, justify="left" if col == "method" else "right")
        for r in rows:
            table.add_row(
                str(r["rank"]), r["method"], *(f"{r[s]:.4g}" for s in scores), f"{r['seconds']:.2f}"
            )
        Console().print(table)
        if json_out is not None:
            with atomic_output(json_out, inputs=inputs, force=force) as tmp:
                tmp.write_text(strict_json.dumps(rows, indent=2))
