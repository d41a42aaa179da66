"""Atomic outputs: write to a temporary name beside the target, rename when complete."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from cascope.errors import OutputError


def check_output(
    path: str | Path, *, inputs: Iterable[str | Path] = (), force: bool = False
) -> Path:
    """Refuse an output path that would overwrite an input, or an existing file without ``force``.

    Parameters
    ----------
    path : str or Path
        The output about to be written.
    inputs : iterable of paths
        Files this command reads; the output may never be one of them.
    force : bool
        Allow replacing an existing output (never an input).

    Returns
    -------
    Path
        The output path, absolute.
    """
    out = Path(path).expanduser().resolve()
    for inp in inputs:
        source = Path(inp).expanduser().resolve()
        if source == out:
            raise OutputError(f"{out}: the output would overwrite the input; choose another path")
        if out in source.parents:
            raise OutputError(
                f"{out}: the output would replace the folder that holds the input {source}; "
                "choose another path"
            )
    if out.exists() and not force:
        raise OutputError(f"{out}: exists already; pass --force to replace it")
    return out


#: Suffixes of the tables cascope writes (event tables, label statistics, measurements).
TABLE_SUFFIXES = (".csv", ".parquet")


def check_table_path(path: str | Path) -> Path:
    """Refuse a table path whose suffix is not ``.csv`` or ``.parquet`` (InputError)."""
    from cascope.errors import InputError

    p = Path(path)
    if p.suffix.lower() not in TABLE_SUFFIXES:
        raise InputError("a table is written as .csv or .parquet; choose one of them", p)
    return p


def check_outputs(
    outputs: Iterable[tuple[str, str | Path | None, str]],
    *,
    inputs: Iterable[str | Path] = (),
    force: bool = False,
) -> None:
    """Check every output of one command before any work is done.

    Each is checked as in :func:`check_output` and by its kind, and no two may name the same
    file: otherwise the second would replace the first, or a bad second path would be found only
    after the first output was written.

    Parameters
    ----------
    outputs : iterable of (option, path, kind)
        The option that names it (for the message, e.g. ``"--labels-out"``), the path (None:
        not asked for) and its kind: ``"image"`` (a format :func:`cascope.io.write` writes by
        suffix), ``"table"`` (``.csv`` or ``.parquet``) or ``"file"`` (any).
    inputs, force
        As in :func:`check_output`.
    """
    from cascope.io._api import detect_format

    sources = list(inputs)
    seen: dict[Path, str] = {}
    for option, path, kind in outputs:
        if path is None:
            continue
        out = check_output(path, inputs=sources, force=force)
        if out in seen:
            raise OutputError(f"{out}: named by both {seen[out]} and {option}; give each its own")
        seen[out] = option
        if kind == "image":
            detect_format(out, for_writing=True)
        elif kind == "table":
            check_table_path(out)
        elif kind != "file":
            raise ValueError(f"unknown output kind {kind!r}")


@contextlib.contextmanager
def atomic_output(
    path: str | Path, *, inputs: Iterable[str | Path] = (), force: bool = False
) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed.

    Works for files and for directory outputs (zarr stores, model folders).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_output(d / "a.txt") as tmp:
    ...     _ = tmp.write_text("hi")
    >>> (d / "a.txt").read_text()
    'hi'
    """
    final = check_output(path, inputs=inputs, force=force)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()
    # keep the suffix so writers that dispatch on it see the real one
    tmp = tmp.with_name(tmp.name + final.suffix)
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(f"{final}: nothing was written")
        if final.exists():
            _check_replaceable(final, tmp)
            _remove(final)
        os.replace(tmp, final)
    except BaseException:
        if tmp.exists():
            _remove(tmp)
        raise


def _check_replaceable(old: Path, new: Path) -> None:
    """Replace only like with like: a file with a file, a folder with one of the same kind.

    ``--force`` is for rerunning a command onto its own earlier output; it must never delete
    a folder of other files (a project folder, the working directory) that a mistyped output
    path happens to name. A folder is replaced only when everything in it would be written
    anew (a zarr store or a model folder of the same kind).
    """
    if old.is_dir() != new.is_dir():
        what = "a folder" if old.is_dir() else "a file"
        made = "a folder" if new.is_dir() else "a file"
        raise OutputError(
            f"{old}: is {what}, and the output is {made}; remove it yourself or choose another path"
        )
    if old.is_dir() and not old.is_symlink():
        others = sorted({p.name for p in old.iterdir()} - {p.name for p in new.iterdir()})
        if others:
            shown = ", ".join(others[:3]) + (
                f" and {len(others) - 3} more" if len(others) > 3 else ""
            )
            raise OutputError(
                f"{old}: holds {shown}, which the output would delete; remove the folder "
                "yourself or choose another path"
            )


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    else:
        p.unlink()
