"""The typer application and its command groups, shared by the command modules."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from pydantic import BaseModel

_Command = TypeVar("_Command", bound=Callable[..., Any])
_Config = TypeVar("_Config", bound="BaseModel")
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


def _group(text: str) -> typer.Typer:
    """Make a command group (``cascope simulate ...``) with the help style of the app."""
    return typer.Typer(help=text, no_args_is_help=True, rich_markup_mode=None)


simulate_app = _group("Write simulated recordings with their ground truth.")
evaluate_app = _group("Score a result against ground truth.")
train_app = _group("Train a network (denoiser, event detector, segmenter).")
benchmark_app = _group("Compare methods on your own data.")

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


def with_options(
    command: Callable[..., Any],
    run: Callable[..., Any],
    options: dict[str, Any],
    *,
    first: dict[str, Any] | None = None,
) -> Any:
    """Return ``run`` as a command: ``first``, ``command``'s parameters, then ``options``.

    ``options`` and ``first`` map a parameter's name to ``(annotation, typer.Option)``; an option
    named like a parameter of ``command`` becomes that parameter's default in place. Typer
    reads the signature and calls ``run`` with every parameter by keyword.
    """
    functools.update_wrapper(run, command)

    def added(params: dict[str, Any]) -> list[inspect.Parameter]:
        return [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=kind)
            for name, (kind, opt) in params.items()
        ]

    own = inspect.signature(command, eval_str=True).parameters
    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            *added(first or {}),
            *(
                p.replace(kind=inspect.Parameter.KEYWORD_ONLY, default=options[name][1])
                if name in options
                else p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
                for name, p in own.items()
            ),
            *added({name: option for name, option in options.items() if name not in own}),
        ],
        return_annotation=None,
    )
    return run


_MISSING_CHUNKS = typer.Option(
    "error",
    "--missing-chunks",
    help="Chunks a Zarr/HDF5 file declares but does not hold: error, or fill (read "
    "them as the fill value).",
)


def reads_recordings(command: _Command) -> _Command:
    """Give a command that reads recordings the ``--missing-chunks`` option.

    A Zarr chunk or HDF5 data that a file declares but does not hold is an error unless the
    user says ``--missing-chunks fill`` (read as the fill value); the option applies to every
    recording the command opens.
    """

    def run(*args: Any, missing_chunks: str = "error", **kwargs: Any) -> Any:
        from cascope.io import missing_chunks_default

        with missing_chunks_default(missing_chunks):
            return command(*args, **kwargs)

    return with_options(command, run, {"missing_chunks": (str, _MISSING_CHUNKS)})  # type: ignore[no-any-return]


def validated(config: type[_Config], fields: dict[str, Any], *, options: str = "") -> _Config:
    """Build ``config`` from a command's options; a refused value becomes a one-line error.

    The configurations word the problems a user fixes with a flag as ``--flag ...``; such a
    refusal becomes an :class:`~cascope.errors.InputError` with that sentence alone. Any other
    refusal stays a pydantic ``ValidationError`` (printed as ``field: reason (got value)``),
    unless ``options`` names the options (``"denoise options"``): then every refusal becomes
    ``invalid denoise options: --field: reason``.
    """
    from pydantic import ValidationError

    from cascope.errors import CascopeError, InputError

    try:
        return config.model_validate(fields)
    except ValidationError as err:
        problems = [(e["loc"], e["msg"].removeprefix("Value error, ")) for e in err.errors()]
        if all(msg.startswith("--") for _, msg in problems):
            raise InputError("; ".join(msg for _, msg in problems)) from None
        if not options:
            raise
        named = "; ".join(_flagged(loc, msg) for loc, msg in problems)
        raise CascopeError(f"invalid {options}: {named}") from err


def _flagged(loc: tuple[Any, ...], msg: str) -> str:
    """``--field-name: msg`` for a field's problem; the message alone for the whole model's."""
    name = ".".join(str(x) for x in loc).replace("_", "-")
    return f"--{name}: {msg}" if name else msg


@contextlib.contextmanager
def dask_client(scheduler: str | None, cluster: Path | None) -> Iterator[Any]:
    """Yield a Dask client on ``--scheduler`` or ``--cluster``, once it says where it runs."""
    from rich.console import Console

    from cascope.study import study_client

    with study_client(scheduler=scheduler, cluster=cluster) as (client, info):
        Console(stderr=True).print(
            f"dask: {info['workers']} workers; dashboard {info['dashboard']}", highlight=False
        )
        yield client


def on_dask(scheduler_help: str, cluster_help: str) -> Callable[[_Command], _Command]:
    """Give a command that can run its blocks on Dask workers ``--scheduler`` and ``--cluster``.

    The command declares ``scheduler`` and ``cluster`` keyword parameters (``None``: this
    machine; see :func:`dask_client`); the options carry the help texts.
    """
    options = {
        "scheduler": (str | None, typer.Option(None, "--scheduler", help=scheduler_help)),
        "cluster": (Path | None, typer.Option(None, "--cluster", help=cluster_help)),
    }

    def attach(command: _Command) -> _Command:
        def run(**kwargs: Any) -> Any:
            return command(**kwargs)

        return with_options(command, run, options)  # type: ignore[no-any-return]

    return attach
