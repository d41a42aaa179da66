"""One movie larger than a machine: time blocks with halos, denoised on Dask workers.

The client reads only the movie's header (and a few planes for the noise level), creates the
output OME-Zarr with one chunk per block along time, and submits one task per block
(:func:`cascope.tiling.block_spans`: the planes a block owns and those it reads). Each worker
reads its block with its halo, filters it, and writes its owned planes — whole chunks — into the
output store itself: no locks, nothing gathered. A block run twice (a lost worker) writes the
same bytes. The output is built under a temporary name and renamed when every block is written.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from cascope.config.denoise_classical import ClassicalDenoiseConfig
from cascope.errors import InputError
from cascope.study._blocks import BlockTask, block_tasks, gather

log = logging.getLogger(__name__)


def denoise_block(config: dict[str, Any], task: BlockTask) -> dict[str, Any]:
    """Denoise the planes a block owns (reading its context) into its zarr array (worker).

    Returns
    -------
    dict
        ``start, stop``, ``context`` (the planes read), ``seconds``, ``peak_rss`` (bytes, this
        worker process so far), ``pid``.
    """
    from cascope import io
    from cascope.denoise.classical import denoise_array
    from cascope.denoise.stream import cast_output

    t0 = time.perf_counter()
    movie = task.read()
    cfg = ClassicalDenoiseConfig.model_validate(config)
    lo, hi = task.context
    raw = np.asarray(movie[lo:hi])
    io.check_finite(raw, path=movie.source, axis=movie.axes[0], start=lo)
    result = task.owned_part(denoise_array(raw, axes=movie.axes, config=cfg))
    task.store_planes(result, cast=cast_output)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return task.report(t0, context=(lo, hi), peak_rss=peak)


def denoise_distributed(
    input_path: str | Path,
    output_path: str | Path,
    *,
    config: ClassicalDenoiseConfig,
    client: Any,
    axes: str | None = None,
    dataset: str | None = None,
    force: bool = False,
    retries: int = 2,
    progress: bool = False,
) -> tuple[Path, list[dict[str, Any]]]:
    """Denoise a recording with a classical filter over a Dask cluster into an OME-Zarr.

    The result equals :func:`cascope.denoise.stream.denoise_file` with the same configuration
    bitwise: the same filter runs on the same blocks with the same halos, and the noise level
    is estimated once, by the client, for every block.

    Parameters
    ----------
    input_path : str or Path
        The recording (OME-Zarr, TIFF, HDF5: any format :func:`cascope.io.read` reads lazily);
        every worker must reach it at this path.
    output_path : str or Path
        The output OME-Zarr (``.zarr`` / ``.ome.zarr``), on a file system the workers share.
    config : ClassicalDenoiseConfig
        Filter and parameters; ``config.block`` planes per task (and per chunk).
    client : distributed.Client
        Where the blocks run.
    axes, dataset
        As in :func:`cascope.io.read`.
    force : bool
        Replace an existing output (never the input).
    retries : int
        Extra attempts of a block whose task failed.
    progress : bool
        Show a progress bar over the planes.

    Returns
    -------
    output : Path
    blocks : list of dict
        What each block task returned (timings, the worker's peak resident memory).
    """
    from cascope import io
    from cascope.denoise.stream import (
        check_planes,
        check_vst_offset,
        output_dtype,
        resolve_noise_sigma,
        stream_halo,
    )
    from cascope.io.zarr import ZarrBlockWriter, default_chunks
    from cascope.tiling import block_spans

    src = Path(input_path).expanduser().resolve()
    out = Path(output_path).expanduser().resolve()
    if not out.name.lower().endswith(".zarr"):
        raise InputError(
            "a movie denoised over a cluster is written as OME-Zarr: name the output .ome.zarr",
            out,
        )
    io.check_output(out, inputs=[src], force=force)
    movie = io.read(src, axes=axes, dataset=dataset)
    check_planes(movie)
    if 0 in movie.shape:
        raise InputError(f"the recording is empty (shape {movie.shape})", src)
    check_vst_offset(movie, config)
    cfg = resolve_noise_sigma(movie, config)
    halo = stream_halo(movie.axes, cfg)
    dtype = output_dtype(movie.dtype, cfg.dtype)
    n = int(movie.shape[0])
    block = min(cfg.block, n)
    inner = default_chunks(tuple(movie.shape), dtype, movie.axes)[1:]
    spans = block_spans(n, block, halo)
    doc = cfg.model_dump(mode="json")
    log.info("denoising %s in %d blocks of %d planes (halo %d)", src, len(spans), block, halo)
    with io.atomic_output(out, inputs=[src], force=force) as tmp:
        ZarrBlockWriter(
            tmp,
            tuple(movie.shape),
            dtype,
            axes=movie.axes,
            voxel_size=movie.voxel_size,
            frame_rate=movie.frame_rate,
            chunks=(block, *inner),
        )
        tasks = block_tasks(str(src), axes, dataset, spans, str(tmp / "0"))
        futures = [
            client.submit(
                denoise_block,
                doc,
                task,
                key=f"cascope-denoise-{task.owned[0]}-{os.getpid()}-{tmp.name[-8:]}",
                retries=retries,
                pure=False,
            )
            for task in tasks
        ]
        results = gather(
            client,
            futures,
            label=cfg.method,
            progress=progress,
            total=n,
            amount=lambda res: int(res["stop"] - res["start"]),
        )
    return out, sorted(results, key=lambda r: int(r["start"]))
