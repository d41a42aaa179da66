"""Time blocks of one recording computed on Dask workers: what a block task gets, and gathering.

A movie larger than a machine is split along time by :func:`cascope.tiling.block_spans`; each
block is one task that reads its planes with their halo and writes the planes it owns into a
zarr array every worker reaches. :class:`BlockTask` is what such a task is given and
:func:`gather` waits for the tasks, with a progress bar, cancelling all of them on a failure.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from cascope.io import Movie


@dataclass(frozen=True)
class BlockTask:
    """One time block of a recording, computed by a worker into a shared zarr array.

    Attributes
    ----------
    source : str
        The recording; every worker must reach it at this path.
    axes, dataset : str or None
        As in :func:`cascope.io.read`.
    owned : tuple of int
        ``(start, stop)``: the planes the block computes and writes.
    context : tuple of int
        ``(lo, hi)``: the planes it reads (the owned ones with their halo).
    store : str
        The zarr array the owned planes are written into.
    """

    source: str
    axes: str | None
    dataset: str | None
    owned: tuple[int, int]
    context: tuple[int, int]
    store: str

    def read(self) -> Movie:
        """Open the recording (lazily) as every task of the block reads it."""
        from cascope import io

        return io.read(self.source, axes=self.axes, dataset=self.dataset)

    def owned_part(self, result: Any) -> NDArray[Any]:
        """Keep the owned planes of a result computed over the context."""
        (start, stop), (lo, _) = self.owned, self.context
        return np.asarray(result[start - lo : stop - lo])

    def store_planes(
        self,
        planes: NDArray[Any],
        cast: Callable[[NDArray[Any], np.dtype[Any]], NDArray[Any]] | None = None,
    ) -> None:
        """Write the owned planes into the store (whole chunks when blocks are chunk-aligned).

        Parameters
        ----------
        planes : ndarray
            The owned planes of the result.
        cast : callable, optional
            Converts them to the store's type first (``cast(planes, dtype)``).
        """
        import zarr

        start, stop = self.owned
        target = zarr.open_array(self.store, mode="r+")
        target[start:stop] = planes if cast is None else cast(planes, np.dtype(target.dtype))

    def report(self, started: float, **extra: Any) -> dict[str, Any]:
        """Return the task's report: ``start, stop``, ``seconds`` since ``started``, ``pid``."""
        start, stop = self.owned
        seconds = time.perf_counter() - started
        return {"start": start, "stop": stop, **extra, "seconds": seconds, "pid": os.getpid()}


def block_tasks(
    source: str, axes: str | None, dataset: str | None, spans: Sequence[Any], store: str
) -> list[BlockTask]:
    """One :class:`BlockTask` per ``(owned, context)`` pair of slices (:func:`block_spans`)."""
    return [
        BlockTask(source, axes, dataset, (o.start, o.stop), (c.start, c.stop), store)
        for o, c in spans
    ]


def gather(
    client: Any,
    futures: list[Any],
    *,
    label: str,
    progress: bool = False,
    total: int | None = None,
    amount: Callable[[Any], int] | None = None,
) -> list[Any]:
    """Wait for every future, showing progress as each completes; on a failure cancel them all.

    Parameters
    ----------
    client : distributed.Client
        The client the futures were submitted to.
    futures : list
        The tasks.
    label : str
        Text of the progress bar.
    progress : bool
        Show the progress bar.
    total : int, optional
        Length of the bar (default: the number of futures).
    amount : callable, optional
        What one result adds to the bar (default 1), e.g. the planes a block wrote.

    Returns
    -------
    list
        The results, in the order of ``futures``.
    """
    from distributed import as_completed

    from cascope._progress import progress_bar

    results: dict[Any, Any] = {}
    done = 0
    try:
        with progress_bar(label, len(futures) if total is None else total, enabled=progress) as up:
            for fut in as_completed(futures):
                results[fut.key] = res = fut.result()
                done += 1 if amount is None else amount(res)
                up(done)
    except BaseException:
        client.cancel(futures)
        raise
    return [results[f.key] for f in futures]
