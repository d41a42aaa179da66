"""Checks on hostile or damaged inputs: memory available, sizes declared versus stored, paths."""

from __future__ import annotations

import errno
import os
import resource
import stat
from pathlib import Path

from cascope.errors import InputError

#: A page decoded from this many times fewer stored bytes is a decompression bomb or damaged.
_MAX_RATIO = 10_000
#: Pages smaller than this are never judged by their compression ratio.
_RATIO_FLOOR = 256 * 2**20


def available_memory() -> int:
    """Bytes this process may still allocate: MemAvailable, capped by RLIMIT_AS / RLIMIT_DATA."""
    best = 2**62
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    best = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    used: dict[str, int] = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("VmSize", "VmData"):
                    used[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    for limit, key in ((resource.RLIMIT_AS, "VmSize"), (resource.RLIMIT_DATA, "VmData")):
        soft = resource.getrlimit(limit)[0]
        if soft != resource.RLIM_INFINITY and soft > 0:
            best = min(best, max(0, soft - used.get(key, 0)))
    return best


def human(n: float) -> str:
    """Bytes as a short human string (``1.6 GB``)."""
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover


def check_decoded_size(what: str, decoded: int, path: Path, *, stored: int | None = None) -> None:
    """Refuse a piece (page, chunk) that must be decoded whole and cannot be, before allocating.

    Parameters
    ----------
    what : str
        The piece, for the message (``"page 0"``, ``"a chunk"``).
    decoded : int
        Bytes it takes once decoded.
    path : Path
        The input file, for the message.
    stored : int, optional
        Bytes it takes in the file; a ratio above 10000 for a large piece is refused.
    """
    if stored is not None and decoded > _RATIO_FLOOR and decoded > _MAX_RATIO * max(stored, 1):
        raise InputError(
            f"{what} declares {human(decoded)} decoded from only {human(stored)} stored; "
            "the file is damaged or a decompression bomb",
            path,
        )
    free = available_memory()
    if decoded > free:
        raise InputError(
            f"{what} must be decoded whole and needs {human(decoded)}, more than the "
            f"{human(free)} of memory available",
            path,
        )


def check_input_path(path: Path) -> None:
    """Refuse a symlink loop, a FIFO, a device or a socket before anything opens it.

    A missing path passes (the caller says "does not exist", or expands a glob).
    """
    try:
        st = os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise InputError("is a symbolic link that loops (points back to itself)", path) from err
        if err.errno in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG):
            return
        raise InputError(f"cannot be opened ({os.strerror(err.errno or 0)})", path) from err
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return
    kind = (
        "a FIFO (named pipe)"
        if stat.S_ISFIFO(st.st_mode)
        else "a socket"
        if stat.S_ISSOCK(st.st_mode)
        else "a device"
    )
    raise InputError(f"is {kind}, not a regular file or folder; cascope reads files", path)


def check_present(path: Path) -> None:
    """Refuse an input that does not exist, or a file of 0 bytes, naming it."""
    if not path.exists():
        raise InputError("does not exist", path)
    if path.is_file() and path.stat().st_size == 0:
        raise InputError("the file is empty (0 bytes)", path)


def missing_hint() -> str:
    """How a user accepts missing chunks (filled with the fill value)."""
    return "give --missing-chunks fill to read what is missing as the fill value"


def expected_chunks(shape: tuple[int, ...], chunks: tuple[int, ...]) -> int:
    """Count the chunks of a grid."""
    n = 1
    for s, c in zip(shape, chunks, strict=True):
        n *= -(-int(s) // max(int(c), 1))
    return n


def first_axis_span(index: int, chunks: tuple[int, ...], shape: tuple[int, ...]) -> str:
    """Frames (first-axis indices) covered by chunk row ``index``, as ``20-29``."""
    lo = index * chunks[0]
    hi = min(shape[0], lo + chunks[0]) - 1
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


__all__ = [
    "available_memory",
    "check_decoded_size",
    "check_input_path",
    "check_present",
    "expected_chunks",
    "first_axis_span",
    "human",
]
