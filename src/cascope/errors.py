"""Exceptions that cascope raises for problems a user can fix.

The CLI turns any :class:`CascopeError` into a one-line message and a non-zero exit code, so every
message must name the file (when there is one) and the problem in words a biologist understands.
"""

from __future__ import annotations

from pathlib import Path


class CascopeError(Exception):
    """Base class of the errors a user can act on."""


class InputError(CascopeError, ValueError):
    """An input file or array cannot be used: unreadable, truncated, empty, NaN, wrong axes.

    Parameters
    ----------
    problem : str
        What is wrong, in one sentence.
    path : str or Path, optional
        The file the problem is in.
    """

    def __init__(self, problem: str, path: str | Path | None = None) -> None:
        self.problem = problem
        self.path = Path(path) if path is not None else None
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)


class OutputError(CascopeError):
    """An output cannot be written: it exists already, or it would overwrite an input."""


class TrainingDiverged(CascopeError, FloatingPointError):
    """A training run blew up past recovery.

    A loss stopped being finite before there was a good state to go back to, the run kept
    blowing up after going back, or it ended no better than the untrained network.
    """
