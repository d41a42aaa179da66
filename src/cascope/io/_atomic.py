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
        if Path(inp).expanduser().resolve() == out:
            raise OutputError(f"{out}: the output would overwrite the input; choose another path")
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
            _remove(final)
        os.replace(tmp, final)
    except BaseException:
        if tmp.exists():
            _remove(tmp)
        raise


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    else:
        p.unlink()
