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
