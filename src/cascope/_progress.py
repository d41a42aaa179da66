"""The one progress bar of long work (training, filtering, prediction): rich, on stderr."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any


@contextlib.contextmanager
def progress_bar(
    label: str,
    total: int,
    *,
    enabled: bool = True,
    completed: int = 0,
    fields: Sequence[str] = (),
) -> Iterator[Callable[..., None]]:
    """Yield ``update(completed, **fields)``, drawing a bar with ETA on a terminal.

    There is no bar in logs and pipes (stderr not a terminal): there it would only add lines
    around a one-line error. Work that should leave a trace there logs it.

    Parameters
    ----------
    label : str
        Text before the bar.
    total : int
        Units of work (steps, planes).
    enabled : bool
        Off: ``update`` does nothing.
    completed : int
        Units already done (a resumed run).
    fields : sequence of str
        Names of values shown after the count (e.g. ``loss``), given to ``update`` by keyword.
    """
    from rich.console import Console

    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield _ignore
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    shown = [TextColumn(f"{name} {{task.fields[{name}]}}") for name in fields]
    columns = [TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), *shown]
    columns += [TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*columns, console=console) as bar:
        initial: dict[str, Any] = dict.fromkeys(fields, "-")
        task = bar.add_task(label, total=total, completed=completed, **initial)

        def update(done: int, **values: Any) -> None:
            bar.update(task, completed=done, **values)

        yield update


def _ignore(done: int, **values: Any) -> None:
    """``update`` of a disabled bar."""
