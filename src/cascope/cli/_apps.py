"""The typer application and its command groups, shared by the command modules."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import typer

_Command = TypeVar("_Command", bound=Callable[..., Any])
# rich_markup_mode=None: plain (click) help, which wraps at any terminal width and never cuts
# an option name, where the rich help tables cut them short (``--slice-denois…`` at 80 columns).

app = typer.Typer(
    name="cascope",
    help="Calcium imaging to numbers: denoise, detect events, segment, measure.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
simulate_app = typer.Typer(
    help="Write simulated recordings with their ground truth.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
evaluate_app = typer.Typer(
    help="Score a result against ground truth.", no_args_is_help=True, rich_markup_mode=None
)
train_app = typer.Typer(
    help="Train a network (denoiser, event detector, segmenter).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
benchmark_app = typer.Typer(
    help="Compare methods on your own data.", no_args_is_help=True, rich_markup_mode=None
)

app.add_typer(simulate_app, name="simulate")
app.add_typer(evaluate_app, name="evaluate")
app.add_typer(train_app, name="train")
app.add_typer(benchmark_app, name="benchmark")


def _print_version(value: bool) -> None:
    if value:
        import cascope

        typer.echo(f"cascope {cascope.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details."),
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def reads_recordings(command: _Command) -> _Command:
    """Give a command that reads recordings the ``--missing-chunks`` option.

    A Zarr chunk or HDF5 data that a file declares but does not hold is an error unless the
    user says ``--missing-chunks fill`` (read as the fill value); the option applies to every
    recording the command opens.
    """

    @functools.wraps(command)
    def run(*args: Any, missing_chunks: str = "error", **kwargs: Any) -> Any:
        from cascope.io import missing_chunks_default

        with missing_chunks_default(missing_chunks):
            return command(*args, **kwargs)

    signature = inspect.signature(command, eval_str=True)
    option = inspect.Parameter(
        "missing_chunks",
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(
            "error",
            "--missing-chunks",
            help="Chunks a Zarr/HDF5 file declares but does not hold: error, or fill (read "
            "them as the fill value).",
        ),
        annotation=str,
    )
    run.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), option]
    )
    return run  # type: ignore[return-value]
