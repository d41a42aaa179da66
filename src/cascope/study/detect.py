"""Event detection in one movie larger than a machine, over Dask workers.

Three passes, each a task per time block (:func:`cascope.tiling.block_spans`), the event model
sent to every worker once:

1. **Probability.** Each worker reads its prediction block with the halo ``cascope detect``
   reads (half a tile), predicts it as the streamed detector does, and writes its owned planes
   — whole chunks — into a probability OME-Zarr (a temporary one unless kept).
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
    payload: Any,
    source: str,
    axes: str | None,
    dataset: str | None,
    norm: Any,
    config: dict[str, Any],
    owned: tuple[int, int],
    context: tuple[int, int],
    store: str,
) -> dict[str, Any]:
    """Write the event probability of planes ``owned`` (reading ``context``) into ``store``.

    Returns
    -------
    dict
        ``start, stop``, ``seconds``, ``pid``.
    """
    import torch
    import zarr

    from cascope import io
    from cascope.events.train import _sigmoid
    from cascope.tiling import predict_tiled, torch_predictor

    t0 = time.perf_counter()
    cfg = DetectConfig.model_validate(config)
    model = _event_model(payload)
    movie = io.read(source, axes=axes, dataset=dataset)
    (start, stop), (lo, hi) = owned, context
    arr = np.asarray(norm.view(movie)[lo:hi], dtype=np.float32)
    predict = _sigmoid(torch_predictor(model.network, device=cfg.device))
    with torch.inference_mode():
        prob = predict_tiled(
            predict, arr, tile=cfg.tile, overlap=cfg.overlap, batch_size=cfg.batch_size
        )
    out = np.asarray(prob[start - lo : stop - lo], dtype=np.float32)
    if not np.isfinite(out).all():
        raise InputError(
            f"the event probability is not finite in frames {start}-{stop - 1}: "
            "the model or its normalisation is broken",
            Path(source),
        )
    zarr.open_array(store, mode="r+")[start:stop] = out
    return {"start": start, "stop": stop, "seconds": time.perf_counter() - t0, "pid": os.getpid()}


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


def _gather(client: Any, futures: list[Any], total: int, label: str, progress: bool) -> list[Any]:
    from distributed import as_completed

    from cascope._progress import progress_bar

    results: dict[Any, Any] = {}
    try:
        with progress_bar(label, total, enabled=progress) as update:
            for fut in as_completed(futures):
                results[fut.key] = fut.result()
                update(len(results))
    except BaseException:
        client.cancel(futures)
        raise
    return [results[f.key] for f in futures]


def detect_distributed(
    input_path: str | Path,
    table_path: str | Path,
    *,
    model: str | Path,
    client: Any,
    config: DetectConfig | None = None,
    labels_path: str | Path | None = None,
    probability_path: str | Path | None = None,
    axes: str | None = None,
    dataset: str | None = None,
    force: bool = False,
    retries: int = 2,
    progress: bool = False,
) -> pd.DataFrame:
    """Detect events in one recording with an event model over a Dask cluster.

    The table (and label movie) equal :func:`cascope.events.train.detect_events` with the same
    configuration on one machine, on the same device and precision: the probability of every
    frame is predicted from the same block and halo, and each event is found in the same
    detection window by the block that owns its first frame.

    Parameters
    ----------
    input_path : str or Path
        The (T, Y, X) recording; every worker must reach it at this path.
    table_path : str or Path
        Event table (``.csv`` or ``.parquet``), written by the client.
    model : str or Path
        Event model folder (``cascope train events``); sent to each worker once.
    client : distributed.Client
        Where the blocks run.
    config : DetectConfig, optional
        Threshold, tile, ``block`` (frames per task and per chunk) and ``halo``.
    labels_path : str or Path, optional
        Event label movie, an OME-Zarr (``.zarr``) that the workers write.
    probability_path : str or Path, optional
        Keep the probability movie as this OME-Zarr (default: a temporary one, removed).
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
    from cascope.io._atomic import remove_stale_temporaries, temp_path
    from cascope.io.zarr import ZarrBlockWriter
    from cascope.study._task import pack_model
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
    em = load_event_model(model, device="cpu")
    thr = em.threshold if cfg.threshold == "auto" else float(cfg.threshold)
    norm = preprocess(movie, lam=em.als_lam, p=em.als_p)
    doc = cfg.model_dump(mode="json")
    tag = f"{os.getpid()}-{time.time_ns() % 10**8}"
    remove_stale_temporaries(table)
    scratch = temp_path(table, "probability")
    scratch.mkdir(parents=True)
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, scratch, ignore_errors=True)
        payload, norm_f = client.scatter([pack_model(model), norm], broadcast=True)
        prob_dir = scratch / "probability.ome.zarr"
        if "--probability-out" in outs:  # renamed into place when the table is written
            keep = io.atomic_output(outs["--probability-out"], inputs=[src], force=force)
            prob_dir = stack.enter_context(keep)
        ZarrBlockWriter(
            prob_dir,
            shape,
            np.float32,
            axes="TYX",
            frame_rate=movie.frame_rate,
            chunks=(min(cfg.block, n), *shape[1:]),
        )
        prob_store = str(prob_dir / "0")
        pred_spans = block_spans(n, cfg.block, int(cfg.tile[0]) // 2)
        preds = [
            client.submit(
                predict_block,
                payload,
                str(src),
                axes,
                dataset,
                norm_f,
                doc,
                (o.start, o.stop),
                (c.start, c.stop),
                prob_store,
                key=f"cascope-detect-prob-{o.start}-{tag}",
                retries=retries,
                pure=False,
            )
            for o, c in pred_spans
        ]
        det_spans = block_spans(n, cfg.block, cfg.halo)
        blocks = [
            client.submit(
                events_block,
                prob_store,
                k,
                doc,
                thr,
                *[
                    p
                    for p, (o, _) in zip(preds, pred_spans, strict=True)
                    if o.start < c.stop and o.stop > c.start
                ],
                key=f"cascope-detect-events-{k}-{tag}",
                retries=retries,
                pure=False,
            )
            for k, (_, c) in enumerate(det_spans)
        ]
        _gather(client, preds, len(preds), "predicting", progress)
        found = _gather(client, blocks, len(blocks), "events", progress)
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
                _gather(client, paint, len(paint), "labels", progress)
        write_table(result, table, force=force, inputs=[src])
    return result


__all__ = ["detect_distributed", "events_block", "labels_block", "predict_block"]
