"""The file-to-file driver every denoiser shares: check, open lazily, stream into a new file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cascope.io import Movie, check_output, open_writer_like, read
from cascope.tiling import BlockWriter

#: ``job(movie) -> (recording to write like, output dtype, run(writer))``.
FileJob = Callable[[Movie], tuple[Movie, np.dtype[Any], Callable[[BlockWriter], Any]]]


def denoise_file_with(
    job: FileJob,
    input_path: str | Path,
    output_path: str | Path,
    *,
    axes: str | None = None,
    dataset: str | None = None,
    force: bool = False,
) -> Path:
    """Denoise a recording file into a new file with ``job``, streamed in blocks.

    The output is refused before anything is read (it is the input, or exists without
    ``force``); :func:`cascope.io.read` names a missing, empty, truncated or zero-length input
    and wrong axes. ``job`` checks the recording and sets itself up (a noise level, a trained
    model), then writes through the writer it is given: the output is written under a
    temporary name and renamed only when complete, so an error part-way leaves no output file.

    Parameters
    ----------
    job : callable
        ``job(movie)`` returns the recording the output is shaped like, the output dtype, and
        ``run(writer)``, which streams the result into ``writer``.
    input_path, output_path : str or Path
        The recording to read and the file to write (its format follows the suffix).
    axes : str, optional
        Axes of the input when the file does not say.
    dataset : str, optional
        Dataset inside an HDF5 file.
    force : bool
        Replace an existing output (never the input).

    Returns
    -------
    Path
        The output file.
    """
    src = Path(input_path)
    check_output(output_path, inputs=[src], force=force)
    movie = read(src, axes=axes, dataset=dataset, kind="movie")
    like, dtype, run = job(movie)
    with open_writer_like(output_path, like, dtype, force=force, inputs=[src]) as writer:
        run(writer)
    return Path(output_path)
