"""The typer application and its command groups, shared by the command modules."""

from __future__ import annotations

import logging

import typer

app = typer.Typer(
    name="cascope",
    help="Calcium imaging to numbers: denoise, detect events, segment, measure.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
simulate_app = typer.Typer(
    help="Write simulated recordings with their ground truth.", no_args_is_help=True
)
evaluate_app = typer.Typer(help="Score a result against ground truth.", no_args_is_help=True)
train_app = typer.Typer(
    help="Train a network (denoiser, event detector, segmenter).", no_args_is_help=True
)
benchmark_app = typer.Typer(help="Compare methods on your own data.", no_args_is_help=True)

app.add_typer(simulate_app, name="simulate")
app.add_typer(evaluate_app, name="evaluate")
app.add_typer(train_app, name="train")
app.add_typer(benchmark_app, name="benchmark")


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details."),
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
