"""The typer application and its command groups, shared by the command modules."""

from __future__ import annotations

import logging

import typer

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
