"""``cascope report``: (re)build the HTML report of a run folder or a study folder."""

from __future__ import annotations

from pathlib import Path

import typer


def report(
    folder: Path = typer.Argument(
        ..., metavar="RUN_OR_STUDY_DIR", help="A `cascope run` or `cascope study` folder."
    ),
    recordings: str = typer.Option(
        "missing",
        "--recordings",
        help="Study: build each recording's own page when it has none (missing), always "
        "(all) or never (none).",
    ),
    raw: Path | None = typer.Option(
        None, "--raw", help="Run: the recording, if it moved since the run."
    ),
    reference: Path | None = typer.Option(
        None, "--reference", help="Run: a clean movie, to show the denoising gain."
    ),
) -> None:
    """Write report.html (and report_files/) into the folder; it opens offline anywhere."""
    from rich.console import Console

    from cascope.errors import InputError
    from cascope.report import build_report

    if recordings not in ("missing", "all", "none"):
        raise InputError(f"--recordings must be missing, all or none (got {recordings!r})")
    for name, path in (("--raw", raw), ("--reference", reference)):
        if path is not None and not path.exists():
            raise InputError(f"does not exist (check {name})", path)
    page = build_report(
        folder,
        recordings=recordings,  # type: ignore[arg-type]
        raw=raw,
        reference=reference,
    )
    Console().print(f"report in {page}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``cascope report``."""
    app.command("report")(report)
