"""The ``cascope`` command line.

One typer app; each command parses, builds a config and calls the library.

Heavy imports (torch, scikit-image, ...) live inside the commands so ``cascope --help`` is instant.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from cascope.cli._apps import app

# Every public module of this package adds its commands to ``app`` through ``register(app)``;
# each imports only typer at module level.
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}").register(app)


def main() -> None:
    """Run the CLI; a :class:`~cascope.errors.CascopeError` becomes one line and exit code 1."""
    from cascope.errors import CascopeError

    try:
        app()
    except CascopeError as err:
        from rich.console import Console

        Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(1)


__all__ = ["app", "main"]
