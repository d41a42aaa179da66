"""Event detection in one movie larger than a machine, over Dask workers.

Three passes of tasks (time blocks of :func:`cascope.tiling.block_spans`), the event model
sent to every worker once:

1. **Scores.** With an event model each worker reads its prediction block with the halo
   ``cascope detect`` reads (half a tile), predicts it as the streamed detector does, and
   writes its owned planes — whole chunks — into a probability OME-Zarr (a temporary one
   unless kept). The intensity-threshold detector's z-scores need each pixel's median over
   every frame: each task reads all frames of a (Y, X) region with a margin of the smoothing's
   reach and writes the region's z-scores.
2. **Events.** Each worker reads a detection block with its halo from the probabilities,
   finds the events the block owns (:func:`cascope.events.detect.owned_events`, the ownership
   rule of the streamed detector: an event belongs to the block of its first frame) and returns
   only its small event table. The client numbers the events: block ``k``'s ids follow those
   of the blocks before it, so the ids are those of one streamed pass.
3. **Labels** (when a label movie is asked for). Each worker writes the planes it owns of the
   label OME-Zarr: the events of its own block and those of the earlier blocks that reach into
   it (found again from the probabilities), with their global ids.

Every pass is a pure function of its inputs: a block run again after a lost worker writes
the same bytes. The result equals :func:`cascope.events.train.detect_events` on one machine
with the same configuration (on the same device and precision).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cascope.config.events import DetectConfig
from cascope.errors import InputError
from cascope.study._blocks import BlockTask, block_tasks, gather

log = logging.getLogger(__name__)

_MODELS: dict[str, Any] = {}


def _event_model(payload: Any) -> Any:
    """Return the event model of a payload, loaded once per worker process."""
    from cascope.events.train import load_event_model
    from cascope.study._task import unpack_model

    if payload.digest not in _MODELS:
        _MODELS[payload.digest] = load_event_model(unpack_model(payload), device="cpu")
    return _MODELS[payload.digest]


def predict_block(
    payload: Any, norm: Any, config: dict[str, Any], task: BlockTask
) -> dict[str, Any]:
    """Write the event probability of the planes a block owns (reading its context) (worker).

    Returns
    -------
    dict
        ``start, stop``, ``seconds``, ``pid``.
    """
    import torch

    from cascope.events.predict import sigmoid_predictor
    from cascope.tiling import predict_tiled, torch_predictor

    t0 = time.perf_counter()
    cfg = DetectConfig.model_validate(config)
    model = _event_model(payload)
    movie = task.read()
    lo, hi = task.context
    arr = np.asarray(norm.view(movie)[lo:hi], dtype=np.float32)
    predict = sigmoid_predictor(torch_predictor(model.network, device=cfg.device))
    with torch.inference_mode():
        prob = predict_tiled(
            predict, arr, tile=cfg.tile, overlap=cfg.overlap, batch_size=cfg.batch_size
        )
    out = np.asarray(task.owned_part(prob), dtype=np.float32)
    if not np.isfinite(out).all():
        start, stop = task.owned
        raise InputError(
            f"the event probability is not finite in frames {start}-{stop - 1}: "
            "the model or its normalisation is broken",
            Path(task.source),
        )
    task.store_planes(out)
    return task.report(t0)


def baseline_tile(
    source: str,
    axes: str | None,
    dataset: str | None,
    norm: Any,
    foreground: Any,
    region: tuple[int, int, int, int],
    store: str,
) -> dict[str, Any]:
    """Write the threshold detector's z-scores of a (Y, X) region, all frames, into ``store``.

    The region ``(y0, y1, x0, x1)`` is read with a margin of the smoothing's reach, so its
    scores are those of :func:`cascope.events.detect.baseline_scores` on the whole movie.
    """
    import zarr

    from cascope import io
    from cascope.events.detect import BASELINE_SIGMA, robust_z

    t0 = time.perf_counter()
    movie = io.read(source, axes=axes, dataset=dataset)
    y0, y1, x0, x1 = region
    m = _margin()
    ny, nx = int(movie.shape[1]), int(movie.shape[2])
    ylo, yhi, xlo, xhi = max(0, y0 - m), min(ny, y1 + m), max(0, x0 - m), min(nx, x1 + m)
    raw = np.asarray(movie[:, ylo:yhi, xlo:xhi])
    z = robust_z(norm.apply(raw, 0), sigma=BASELINE_SIGMA)[
        :, y0 - ylo : y1 - ylo, x0 - xlo : x1 - xlo
    ]
    out = np.asarray(np.where(foreground[None, y0:y1, x0:x1], z, 0.0), dtype=np.float32)
    if not np.isfinite(out).all():
        raise InputError("the z-scores are not finite (NaN pixels in the movie?)", Path(source))
    zarr.open_array(store, mode="r+")[:, y0:y1, x0:x1] = out
    return {"region": region, "seconds": time.perf_counter() - t0, "pid": os.getpid()}


def _margin() -> int:
    """Pixels a smoothed z-score depends on either side (the Gaussian's truncation, 4 sd)."""
    from cascope.events.detect import BASELINE_SIGMA

    return max(int(4.0 * float(s) + 0.5) for s in BASELINE_SIGMA[1:])


def _tile_side(n_frames: int, budget: int = 64 << 20) -> int:
    """Side of the (Y, X) regions of the z-score tasks: all frames of one fit ``budget`` bytes."""
    side = int(math.sqrt(budget / (4 * max(1, n_frames))))
    return max(16, side // 16 * 16)


def _window_events(
    prob: Any, k: int, n: int, cfg: DetectConfig, threshold: float, first_id: int
) -> tuple[int, list[dict[str, Any]], list[Any], int]:
    from cascope.events.detect import owned_events

    start, stop = k * cfg.block, min(n, (k + 1) * cfg.block)
    lo, hi = max(0, start - cfg.halo), min(n, stop + cfg.halo)
    window = np.asarray(prob[lo:hi], dtype=np.float32)
    rows, comps, truncated = owned_events(
        window,
        lo=lo,
        own=(start, stop),
        n_frames=n,
        threshold=threshold,
        min_size=cfg.min_size,
        first_id=first_id,
    )
    return lo, rows, comps, truncated


def events_block(
    store: str, k: int, config: dict[str, Any], threshold: float, *_after: Any
) -> dict[str, Any]:
    """Events owned by detection block ``k`` (ids from 1), from the probabilities in ``store``.

    ``_after`` holds the prediction tasks this block reads, so Dask runs it after them.

    Returns
    -------
    dict
        ``k``, ``rows`` (the block's event table rows), ``truncated``.
    """
    import zarr

    prob = zarr.open_array(store, mode="r")
    cfg = DetectConfig.model_validate(config)
    _, rows, _, truncated = _window_events(prob, k, int(prob.shape[0]), cfg, threshold, first_id=1)
    return {"k": k, "rows": rows, "truncated": truncated}


def labels_block(
    store: str, target: str, k: int, config: dict[str, Any], threshold: float, offsets: list[int]
) -> dict[str, Any]:
    """Write the event ids of the planes detection block ``k`` owns into ``target``.

    The events of block ``k`` and of the earlier blocks whose windows reach into it are found
    again from the probabilities and painted in block order, as one streamed pass paints them;
    ``offsets[j]`` is the number of events before block ``j``.
    """
    import zarr

    prob = zarr.open_array(store, mode="r")
    cfg = DetectConfig.model_validate(config)
    n = int(prob.shape[0])
    start, stop = k * cfg.block, min(n, (k + 1) * cfg.block)
    out = np.zeros((stop - start, *prob.shape[1:]), np.uint32)
    for j in range(max(0, k - math.ceil(cfg.halo / cfg.block)), k + 1):
        lo, rows, comps, _ = _window_events(prob, j, n, cfg, threshold, offsets[j] + 1)
        for row, comp in zip(rows, comps, strict=True):
            bt, by, bx = comp.box
            a, b = max(start, lo + bt.start), min(stop, lo + bt.stop)
            if a >= b:
                continue
            vox = comp.voxels[a - lo - bt.start : b - lo - bt.start]
            region = out[a - start : b - start, by, bx]
            region[vox] = row["id"]
    zarr.open_array(target, mode="r+")[start:stop] = out
    return {"k": k, "start": start, "stop": stop, "pid": os.getpid()}


def _submit_network(
    client: Any, job: dict[str, Any], model: Any, norm: Any, movie: Any, cfg: Any, store: Path
) -> list[tuple[Any, tuple[int, int]]]:
    """Create the probability store; one prediction task per time block (and its frames)."""
    from cascope.io.zarr import ZarrBlockWriter
    from cascope.study._task import pack_model
    from cascope.tiling import block_spans

    shape = tuple(int(s) for s in movie.shape)
    chunks = (min(cfg.block, shape[0]), *shape[1:])
    ZarrBlockWriter(
        store, shape, np.float32, axes="TYX", frame_rate=movie.frame_rate, chunks=chunks
    )
    payload, norm_f = client.scatter([pack_model(model), norm], broadcast=True)
    doc = cfg.model_dump(mode="json")
    spans = block_spans(shape[0], cfg.block, int(cfg.tile[0]) // 2)
    tasks = block_tasks(job["src"], job["axes"], job["dataset"], spans, str(store / "0"))
    return [
        (
            client.submit(
                predict_block,
                payload,
                norm_f,
                doc,
                task,
                key=f"cascope-detect-prob-{task.owned[0]}-{job['tag']}",
                retries=job["retries"],
                pure=False,
            ),
            task.owned,
        )
        for task in tasks
    ]


def _submit_baseline(
    client: Any, job: dict[str, Any], model: Any, norm: Any, movie: Any, cfg: Any, store: Path
) -> list[tuple[Any, tuple[int, int]]]:
    """Create the z-score store; one task per (Y, X) region, over all frames."""
    from scipy import ndimage

    from cascope.io.zarr import ZarrBlockWriter

    shape = tuple(int(s) for s in movie.shape)
    side = int(job["region"])
    chunks = (min(cfg.block, shape[0]), min(side, shape[1]), min(side, shape[2]))
    ZarrBlockWriter(
        store, shape, np.float32, axes="TYX", frame_rate=movie.frame_rate, chunks=chunks
    )
    fg = ndimage.binary_dilation(norm.foreground, iterations=2)
    norm_f, fg_f = client.scatter([norm, fg], broadcast=True)
    out = []
    for y0 in range(0, shape[1], side):
        for x0 in range(0, shape[2], side):
            region = (y0, min(shape[1], y0 + side), x0, min(shape[2], x0 + side))
            fut = client.submit(
                baseline_tile,
                job["src"],
                job["axes"],
                job["dataset"],
                norm_f,
                fg_f,
                region,
                str(store / "0"),
                key=f"cascope-detect-z-{y0}-{x0}-{job['tag']}",
                retries=job["retries"],
                pure=False,
            )
            out.append((fut, (0, shape[0])))
    return out


def detect_distributed(
    input_path: str | Path,
    table_path: str | Path,
    *,
    model: str | Path | None,
    client: Any,
    config: DetectConfig | None = None,
    labels_path: str | Path | None = None,
    probability_path: str | Path | None = None,
    region: int | None = None,
    axes: str | None = None,
    dataset: str | None = None,
    force: bool = False,
    retries: int = 2,
    progress: bool = False,
) -> pd.DataFrame:
    """Detect events in one recording over a Dask cluster.

    With an event model the table (and label movie) equal
    :func:`cascope.events.train.detect_events` with the same configuration on one machine, on
    the same device and precision: the probability of every frame is predicted from the same
    block and halo, and each event is found in the same detection window by the block that owns
    its first frame. Without one the intensity-threshold detector runs: its z-scores need every
    frame of a pixel (the pixel's median), so they are computed per (Y, X) region over all
    frames, equal to :func:`cascope.events.detect.baseline_scores`; its events equal
    :func:`cascope.events.detect.detect_threshold_baseline` when none is longer than the halo
    (which is warned of).

    Parameters
    ----------
    input_path : str or Path
        The (T, Y, X) recording; every worker must reach it at this path.
    table_path : str or Path
        Event table (``.csv`` or ``.parquet``), written by the client.
    model : str or Path or None
        Event model folder (``cascope train events``), sent to each worker once; None: the
        intensity-threshold detector (``config.threshold`` a z-score, 4 for ``"auto"``).
    client : distributed.Client
        Where the blocks run.
    config : DetectConfig, optional
        Threshold, tile, ``block`` (frames per task and per chunk) and ``halo``.
    labels_path : str or Path, optional
        Event label movie, an OME-Zarr (``.zarr``) that the workers write.
    probability_path : str or Path, optional
        Keep the probability (or z-score) movie as this OME-Zarr (default: a temporary one).
    region : int, optional
        Threshold detector: side in pixels of the (Y, X) regions whose z-scores one task
        computes over all frames (default: all frames of a region fit 64 MiB as float32).
    axes, dataset
        As in :func:`cascope.io.read`.
    force : bool
        Replace existing outputs (never the input).
    retries : int
        Extra attempts of a block whose task failed.
    progress : bool
        Show a progress bar per pass.

    Returns
    -------
    pandas.DataFrame
        The event table written.
    """
    from cascope import io
    from cascope.events.features import write_table
    from cascope.events.preprocess import preprocess
    from cascope.events.train import load_event_model
    from cascope.io import remove_stale_temporaries, temp_path
    from cascope.io.zarr import ZarrBlockWriter
    from cascope.tiling import block_spans

    cfg = config or DetectConfig()
    src = Path(input_path).expanduser().resolve()
    table = Path(table_path).expanduser().resolve()
    zarrs = {"--labels-out": labels_path, "--probability-out": probability_path}
    outs = {flag: Path(p).expanduser().resolve() for flag, p in zarrs.items() if p is not None}
    for flag, path in outs.items():
        if not path.name.lower().endswith(".zarr"):
            raise InputError(
                f"over a cluster the workers write {flag} themselves: name it .ome.zarr", path
            )
    io.check_outputs(
        [("--output", table, "table"), *((f, p, "image") for f, p in outs.items())],
        inputs=[src],
        force=force,
    )
    movie = io.read(src, axes=axes, dataset=dataset)
    if movie.ndim != 3:
        raise InputError(f"event detection needs a (T, Y, X) movie, got axes {movie.axes}", src)
    shape = tuple(int(s) for s in movie.shape)
    n = shape[0]
    if model is not None:
        em = load_event_model(model, device="cpu")
        thr = em.threshold if cfg.threshold == "auto" else float(cfg.threshold)
        norm = preprocess(movie, lam=em.als_lam, p=em.als_p)
    else:
        thr = 4.0 if cfg.threshold == "auto" else float(cfg.threshold)
        norm = preprocess(movie)
    doc = cfg.model_dump(mode="json")
    tag = f"{os.getpid()}-{time.time_ns() % 10**8}"
    remove_stale_temporaries(table)
    scratch = temp_path(table, "probability")
    scratch.mkdir(parents=True)
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, scratch, ignore_errors=True)
        prob_dir = scratch / "probability.ome.zarr"
        if "--probability-out" in outs:  # renamed into place when the table is written
            keep = io.atomic_output(outs["--probability-out"], inputs=[src], force=force)
            prob_dir = stack.enter_context(keep)
        job = {"src": str(src), "axes": axes, "dataset": dataset, "tag": tag, "retries": retries}
        job["region"] = region or _tile_side(n)
        submit = _submit_network if model is not None else _submit_baseline
        preds = submit(client, job, model, norm, movie, cfg, prob_dir)
        prob_store = str(prob_dir / "0")
        det_spans = block_spans(n, cfg.block, cfg.halo)
        blocks = [
            client.submit(
                events_block,
                prob_store,
                k,
                doc,
                thr,
                *[p for p, (a, b) in preds if a < c.stop and b > c.start],
                key=f"cascope-detect-events-{k}-{tag}",
                retries=retries,
                pure=False,
            )
            for k, (_, c) in enumerate(det_spans)
        ]
        gather(client, [p for p, _ in preds], label="scores", progress=progress)
        found = gather(client, blocks, label="events", progress=progress)
        offsets = np.cumsum([0] + [len(r["rows"]) for r in found]).tolist()
        rows: list[dict[str, Any]] = []
        for r, off in zip(found, offsets, strict=False):
            rows.extend({**row, "id": row["id"] + off} for row in r["rows"])
        truncated = sum(int(r["truncated"]) for r in found)
        if truncated:
            log.warning(
                "%d events were longer than the %d-frame halo and may be cut at block borders",
                truncated,
                cfg.halo,
            )
        from cascope.events.detect import TABLE_COLUMNS

        result = pd.DataFrame(rows, columns=TABLE_COLUMNS)
        if "--labels-out" in outs:
            with io.atomic_output(outs["--labels-out"], inputs=[src], force=force) as tmp:
                ZarrBlockWriter(
                    tmp,
                    shape,
                    np.uint32,
                    axes="TYX",
                    voxel_size=movie.voxel_size,
                    frame_rate=movie.frame_rate,
                    chunks=(min(cfg.block, n), *shape[1:]),
                )
                paint = [
                    client.submit(
                        labels_block,
                        prob_store,
                        str(tmp / "0"),
                        k,
                        doc,
                        thr,
                        offsets,
                        key=f"cascope-detect-labels-{k}-{tag}",
                        retries=retries,
                        pure=False,
                    )
                    for k in range(len(det_spans))
                ]
                gather(client, paint, label="labels", progress=progress)
        write_table(result, table, force=force, inputs=[src])
    return result


__all__ = [
    "baseline_tile",
    "detect_distributed",
    "events_block",
    "labels_block",
    "predict_block",
]
