"""The ``cascope`` command line.

One typer app; each command parses, builds a config and calls the library.

Heavy imports (torch, scikit-image, ...) live inside the commands so ``cascope --help`` is instant.
"""

from __future__ import annotations

import importlib
import pkgutil
import signal
import sys
import threading
from typing import TYPE_CHECKING

from cascope.cli._apps import app

if TYPE_CHECKING:
    from pydantic import ValidationError

# Every public module of this package adds its commands to ``app`` through ``register(app)``;
# at module level each imports only typer, the shared `_apps` and configurations (pydantic).
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}").register(app)


def main() -> None:
    """Run the CLI; a bad input or option becomes one line and exit code 1.

    A :class:`~cascope.errors.CascopeError` is printed as it is; an option value that a
    configuration refuses (a pydantic ``ValidationError``) as ``field: reason (got value)``;
    an operating-system error (a file that cannot be read or written) as ``path: reason``.
    """
    from pydantic import ValidationError

    from cascope.errors import CascopeError

    previous = (
        signal.signal(signal.SIGTERM, _terminate)
        if threading.current_thread() is threading.main_thread()
        else None
    )
    try:
        app()
    except (CascopeError, ValidationError, OSError) as err:
        from rich.console import Console

        if isinstance(err, ValidationError):
            message = _option_problems(err)
        elif isinstance(err, OSError) and not isinstance(err, CascopeError):
            message = _os_problem(err)
        else:
            message = str(err)
        Console(stderr=True).print(
            f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True
        )
        sys.exit(1)
    except (SystemExit, KeyboardInterrupt):
        if _terminated:
            sys.exit(128 + signal.SIGTERM)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if _terminated:
        sys.exit(128 + signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM, so every cleanup runs as for Ctrl-C."""


_terminated = False


def _terminate(signum: int, frame: object) -> None:
    """Turn SIGTERM into :class:`Terminated`; the command then exits with code 143."""
    global _terminated
    _terminated = True
    # once: a second SIGTERM during the cleanup must not interrupt it
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated(f"terminated by signal {signum}")


def _os_problem(err: OSError) -> str:
    """Say what the operating system refused, and where: ``path: Permission denied``.

    Files that cannot be written (a read-only folder, a full disk, a path through a file)
    are problems a user fixes, as are missing files.
    """
    reason = err.strerror or str(err) or type(err).__name__
    return f"{err.filename}: {reason}" if err.filename is not None else reason


def _option_problems(err: ValidationError) -> str:
    """One line naming every refused option value of a pydantic ``ValidationError``."""
    problems = []
    for e in err.errors():
        where = ".".join(str(part) for part in e["loc"]) or "value"
        problems.append(f"{where}: {e['msg']} (got {e.get('input')!r})")
    return "; ".join(problems)


__all__ = ["app", "main"]
