"""``cascope study``: the pipeline on every recording of a manifest, on a Dask cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cascope.cli._apps import on_dask

SCHEDULER_HELP = "A running Dask scheduler: tcp://HOST:8786 or its scheduler file."
CLUSTER_HELP = "cluster.yaml for dask-jobqueue (SLURM, PBS, LSF, SGE); see the README."


def study(
    manifest: str = typer.Argument(
        ...,
        metavar="MANIFEST",
        help="CSV/YAML (path, id, condition, subject, ...), folder, glob.",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Study folder (resumed if it exists)."),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="pipeline.yaml (as `cascope run` saves it)."
    ),
    scheduler: str | None = None,
    cluster: Path | None = None,
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Local worker processes (default: sized to the machine)."
    ),
    retries: int = typer.Option(
        2, "--retries", min=0, help="Extra attempts of a recording after an unexpected error."
    ),
    no_compare: bool = typer.Option(False, "--no-compare", help="Skip the comparison."),
    features: list[str] | None = typer.Option(
        None,
        "--feature",
        help="Compare only this event feature (repeat the option; default: all standard "
        "features). The correction for multiple comparisons then covers only these.",
    ),
) -> None:
    """Run the pipeline on every recording; write events, the comparison and study.json.

    Recordings already complete in OUTPUT for the same input, config and cascope version
    are skipped; a recording that fails is reported with its one-line error and the others
    go on.
    """
    import logging

    import distributed
    from rich.console import Console

    from cascope.errors import CascopeError
    from cascope.study import run_study

    if logging.getLogger().getEffectiveLevel() > logging.INFO:  # without --verbose
        # the cluster's chatter (workers starting, closing) is not news for the user; the
        # level is set after importing distributed, whose import sets it to INFO
        logging.getLogger(distributed.__name__).setLevel(logging.ERROR)
    console = Console(stderr=True)

    def ready(info: dict[str, Any]) -> None:
        console.print(
            f"dask: {info.get('kind')} cluster at {info.get('address')}, "
            f"{info.get('workers')} workers; dashboard {info.get('dashboard')}",
            highlight=False,
            soft_wrap=True,
        )

    result = run_study(
        manifest,
        config,
        study_dir=output,
        scheduler=scheduler,
        cluster=cluster,
        workers=workers,
        retries=retries,
        compare=not no_compare,
        features=features or None,
        progress=True,
        on_ready=ready,
    )
    t = result.totals
    for row in result.failed:
        console.print(f"[red]failed[/] {row['id']}: {row['error']}", highlight=False)
    out = Console()
    out.print(
        f"{t['done']} done, {t['skipped']} skipped (unchanged), {t['failed']} failed "
        f"in {t['seconds']:.1f} s -> {result.study_dir}",
        highlight=False,
    )
    comparison = result.comparison or {}
    if comparison.get("significant") is not None:
        sig = ", ".join(comparison["significant"]) or "none"
        n = ", ".join(f"{k}: {v}" for k, v in comparison.get("n", {}).items())
        out.print(
            f"comparison per {comparison.get('unit')} ({n}); significant: {sig}",
            highlight=False,
        )
    elif comparison.get("error"):
        out.print(f"no comparison: {comparison['error']}", highlight=False)
    if t["failed"]:
        raise CascopeError(
            f"{t['failed']} of {t['recordings']} recordings failed (see "
            f"{result.study_dir / 'study.json'})"
        )


def register(app: typer.Typer) -> None:
    """Add ``cascope study``."""
    app.command("study")(on_dask(SCHEDULER_HELP, CLUSTER_HELP)(study))
