"""Atomic outputs: write to a temporary name beside the target, rename when complete."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import secrets
import shutil
import threading
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path

from cascope.errors import OutputError

log = logging.getLogger(__name__)


def check_output(
    path: str | Path,
    *,
    inputs: Iterable[str | Path] = (),
    force: bool = False,
    holds: Collection[str] | None = None,
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
    holds : collection of str, optional
        The names a folder output will hold (e.g. a model folder's files). With ``force``, an
        existing file, or a folder holding anything else, is refused now, before the work that
        makes the output, rather than when the output would replace it.

    Returns
    -------
    Path
        The output path, absolute.
    """
    out = _resolved(path, "output")
    for inp in inputs:
        source = _resolved(inp, "input")
        if source == out:
            raise OutputError(f"{out}: the output would overwrite the input; choose another path")
        if out in source.parents:
            raise OutputError(
                f"{out}: the output would replace the folder that holds the input {source}; "
                "choose another path"
            )
    if out.exists() and not force:
        raise OutputError(f"{out}: exists already; pass --force to replace it")
    if holds is not None and (out.exists() or out.is_symlink()):
        if not out.is_dir():
            raise OutputError(
                f"{out}: is a file, and the output is a folder; remove it yourself or choose "
                "another path"
            )
        if not out.is_symlink():
            _refuse_others(out, sorted({p.name for p in out.iterdir()} - set(holds)))
    return out


def _refuse_others(folder: Path, others: list[str]) -> None:
    """Refuse to replace ``folder`` when it holds ``others``: files the output would delete."""
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise OutputError(
            f"{folder}: holds {shown}, which the output would delete; remove the folder "
            "yourself or choose another path"
        )


def _resolved(path: str | Path, what: str) -> Path:
    """Return the absolute path; refuse a symbolic link that loops with one line."""
    try:
        return Path(path).expanduser().resolve()
    except (RuntimeError, OSError) as err:  # a loop: RuntimeError up to Python 3.12
        from cascope.errors import InputError

        raise InputError(f"the {what} path is a symbolic link that loops ({err})", path) from None


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
    from cascope.io._formats import detect_format

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

    Works for files and for directory outputs (zarr stores, model folders). While it is open
    the output is locked (:func:`output_lock`): a second process writing the same output is
    refused at once, and temporaries left by a killed earlier run are removed. The temporary
    name holds the writer's process id; a write that fails for want of space (or another I/O
    fault) is an :class:`~cascope.errors.OutputError` naming the output.

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
    with output_lock(final):
        # checked again under the lock: another process may have written it meanwhile
        check_output(final, inputs=inputs, force=force)
        tmp = temp_path(final, "part", suffix=final.suffix)
        try:
            try:
                yield tmp
            except OSError as err:
                fault = output_fault(err, final)
                if fault is None:
                    raise
                raise fault from err
            if not tmp.exists():
                raise OutputError(f"{final}: nothing was written")
            if final.exists() or final.is_symlink():
                _check_replaceable(final, tmp)
                replace_output(tmp, final)
            else:
                os.replace(tmp, final)
        except BaseException:
            if tmp.exists() or tmp.is_symlink():
                _remove(tmp)
            raise


#: Errors of a write that the disk, not the program, caused: the message names the output.
_IO_FAULTS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for this file system or limit",
    errno.EIO: "input/output error",
}


def output_fault(err: BaseException, final: Path) -> OutputError | None:
    """Return an OutputError for a full disk or an I/O fault while writing ``final``, else None.

    h5py and other libraries report such errors as OSError without an errno at times; their
    message is searched too.
    """
    if isinstance(err, OutputError):
        return None
    reason = _IO_FAULTS.get(getattr(err, "errno", None) or -1)
    if reason is None:
        text = str(err).lower()
        for code, words in _IO_FAULTS.items():
            if words in text or os.strerror(code).lower() in text:
                reason = words
                break
    if reason is None:
        return None
    return OutputError(f"{final}: {reason} while writing it; nothing was written")


def temp_path(final: str | Path, tag: str, *, suffix: str = "") -> Path:
    """Return a fresh hidden name beside ``final`` for a temporary, owned by this process.

    The name is ``.NAME.PID-TAG-RANDOM`` + ``suffix``: :func:`remove_stale_temporaries`
    recognises it, and removes it only once process PID has gone.
    """
    final = Path(final)
    pid = os.getpid()
    while True:
        tmp = final.with_name(f".{final.name}.{pid}-{tag}-{secrets.token_hex(4)}{suffix}")
        if not (tmp.exists() or tmp.is_symlink()):
            return tmp


def _temp_pattern(final: Path) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(final.name)}\.(\d+)-")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return True
    return True


def remove_stale_temporaries(final: str | Path) -> list[Path]:
    """Remove the temporaries of ``final`` whose owning process is gone (killed, crashed).

    Temporaries of a process still running (a concurrent writer) are kept.

    Returns
    -------
    list of Path
        What was removed.
    """
    final = Path(final)
    pattern = _temp_pattern(final)
    removed: list[Path] = []
    try:
        entries = list(final.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry.name)
        if m is None or _alive(int(m.group(1))):
            continue
        try:
            _remove(entry)
        except FileNotFoundError:
            continue
        except OSError as err:
            log.warning("could not remove the stale temporary %s: %s", entry, err)
            continue
        log.info("removed %s, left by an interrupted run", entry)
        removed.append(entry)
    return removed


def lock_path(final: str | Path) -> Path:
    """Return the lock file of an output: ``.NAME.lock`` beside it."""
    final = Path(final)
    return final.with_name(f".{final.name}.lock")


#: Outputs this process holds the lock of, with how often (locks nest in one process).
_held: dict[Path, list[int]] = {}
_held_guard = threading.Lock()


@contextlib.contextmanager
def output_lock(path: str | Path) -> Iterator[Path]:
    """Hold an exclusive lock on an output while it is written; refuse if another process does.

    The lock is ``flock`` on ``.NAME.lock`` beside the output, which holds the owner's process
    id and is removed on leaving. The operating system releases it when the process dies
    however it dies, so a killed run never blocks the next; the next one also removes the
    temporaries the killed run left (:func:`remove_stale_temporaries`). Nested use in one
    process is allowed. Where the lock file cannot be created (a read-only folder), nothing is
    locked and the write itself reports the problem.

    Raises
    ------
    OutputError
        Another cascope process is writing the same output.
    """
    final = Path(path).expanduser().resolve()
    with _held_guard:
        if final in _held:
            _held[final][1] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield final
        finally:
            with _held_guard:
                _held[final][1] -= 1
        return
    fd = _acquire(final)
    if fd is not None:
        with _held_guard:
            _held[final] = [fd, 1]
    try:
        remove_stale_temporaries(final)
        yield final
    finally:
        if fd is not None:
            with _held_guard:
                del _held[final]
            with contextlib.suppress(OSError):
                os.unlink(lock_path(final))
            os.close(fd)


def _acquire(final: Path) -> int | None:
    lock = lock_path(final)
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                owner = os.read(fd, 32).decode(errors="replace").strip()
            finally:
                os.close(fd)
            who = f" (pid {owner})" if owner.isdigit() else ""
            raise OutputError(
                f"{final}: is being written by another cascope process{who}; wait for it to "
                "finish or stop it"
            ) from None
        except OSError:  # a file system without locks
            os.close(fd)
            return None
        # the holder before us may have removed the file between our open and our lock
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            return fd
        os.close(fd)


def replace_output(new: Path, old: Path) -> None:
    """Put ``new`` in the place of ``old`` so that one of them is always complete there.

    A file is renamed over the old one; a folder cannot be, so the old one is moved aside
    first, the new one renamed into place, and only then is the old one deleted.
    """
    if not (old.is_dir() and not old.is_symlink()):
        os.replace(new, old)
        return
    aside = temp_path(old, "old")
    os.replace(old, aside)
    try:
        os.replace(new, old)
    except BaseException:
        os.replace(aside, old)
        raise
    _remove(aside)


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
        written = {p.name for p in new.iterdir()}
        _refuse_others(old, sorted({p.name for p in old.iterdir()} - written))


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    else:
        p.unlink()
