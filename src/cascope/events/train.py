"""Train the event-detection U-Net with PU data on the shared trainer, and detect with it.

The model folder (``cascope.models`` format) records the preprocessing (ALS λ, p), the training
crop, the PU options and the detection threshold chosen on validation data, so detection with a
saved model needs no other input.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray
from torch import nn

from cascope.config.events import DetectConfig, EventTrainConfig
from cascope.errors import InputError
from cascope.events.detect import StreamingDetector, threshold_from_event_f1, threshold_from_pr
from cascope.events.preprocess import Normalization, preprocess
from cascope.events.pu import PUSampler, bce_loss, nnpu_loss
from cascope.training import TrainResult

log = logging.getLogger(__name__)

#: Event-F1 candidates this close to the best on validation data count as equally good.
F1_TOLERANCE = 0.02


@dataclass
class EventModel:
    """A trained event detector and what detection needs besides the weights."""

    network: nn.Module
    threshold: float
    als_lam: float
    als_p: float
    window: tuple[int, int, int]


def build_network(cfg: EventTrainConfig) -> nn.Module:
    """Build the 3D U-Net of a training config (1 input channel, 1 logit channel)."""
    from cascope.models import UNet

    m = cfg.model
    return UNet(1, 1, ndim=3, depth=m.depth, base=m.base, norm=m.norm)


def _prepare(
    movies: Sequence[Any], labels: Sequence[Any], cfg: EventTrainConfig
) -> list[tuple[NDArray[np.float32], NDArray[Any], NDArray[np.bool_]]]:
    if len(movies) != len(labels) or not movies:
        raise InputError(f"give one label movie per movie ({len(movies)} vs {len(labels)})")
    items = []
    for k, (mov, lab) in enumerate(zip(movies, labels, strict=True)):
        if tuple(mov.shape) != tuple(lab.shape) or len(mov.shape) != 3:
            raise InputError(f"movie {k} {tuple(mov.shape)} and labels {tuple(lab.shape)} differ")
        norm = preprocess(mov, lam=cfg.als_lam, p=cfg.als_p)
        items.append((norm.apply(np.asarray(mov)), np.asarray(lab), norm.foreground))
    return items


def probability(
    network: nn.Module,
    movie: Any,
    *,
    norm: Normalization | None = None,
    tile: Sequence[int] = (32, 64, 64),
    overlap: float = 0.25,
    batch_size: int = 4,
    device: str = "auto",
    lam: float = 1e4,
    p: float = 0.01,
) -> NDArray[np.float32]:
    """Event probability of every voxel of a (T, Y, X) movie (in memory; blended tiles)."""
    from cascope.tiling import predict_tiled, torch_predictor

    nm = preprocess(movie, lam=lam, p=p) if norm is None else norm
    predict = _sigmoid(torch_predictor(network, device=device))
    return predict_tiled(predict, nm.view(movie), tile=tile, overlap=overlap, batch_size=batch_size)


def _sigmoid(predict: Any) -> Any:
    def run(batch: NDArray[np.float32]) -> NDArray[np.float32]:
        z = np.asarray(predict(batch), dtype=np.float32)
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -60, 60))), dtype=np.float32)

    return run


def train_event_detector(
    movies: Sequence[Any],
    labels: Sequence[Any],
    *,
    config: EventTrainConfig | None = None,
    valid: tuple[Sequence[Any], Sequence[Any]] | None = None,
    output: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = False,
    device: str = "auto",
    force: bool = False,
) -> tuple[EventModel, TrainResult]:
    """Train a 3D U-Net on movies with (partial) event labels by PU sampling and risk.

    Parameters
    ----------
    movies : sequence of array-like, each (T, Y, X)
        Raw recordings (preprocessed here).
    labels : sequence of array-like of int, each (T, Y, X)
        Event labels (instances or 0/1); unlabeled events may be missing.
    config : EventTrainConfig, optional
        Crop, network, PU and trainer options.
    valid : (movies, labels), optional
        Validation recordings: the trainer's validation loss and the detection threshold
        (``config.threshold_method``) come from them. Without them the threshold is 0.5.
    output : str or Path, optional
        Model folder to write.
    checkpoint_dir : str or Path, optional
        Resumable checkpoints (default ``<output>.ckpt`` when ``output`` is given).
    resume : bool
        Continue from the last checkpoint.
    progress : bool
        Show the trainer's progress bar.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``.
    force : bool
        Replace an existing model folder.

    Returns
    -------
    model : EventModel
    result : TrainResult
    """
    from cascope.models import count_parameters, save_model
    from cascope.training import Trainer, seed_everything

    cfg = config or EventTrainConfig()
    items = _prepare(movies, labels, cfg)
    pu = cfg.pu
    sampler = PUSampler(
        items,
        window=cfg.window,
        cache=cfg.cache,
        unlabeled_ratio=pu.unlabeled_ratio,
        augment=cfg.augment,
        seed=cfg.training.seed,
    )
    if sampler.n_pos.sum() == 0:
        raise InputError("the labels contain no event: nothing to learn from")
    prior: float | None = None
    if pu.mode == "nnpu":
        prior = pu.prior
        if prior is None:
            prior = (
                0.0
                if pu.label_coverage >= 1
                else sampler.class_prior(pu.label_coverage, seed=cfg.training.seed)
            )
        surrogate = pu.surrogate
        if surrogate == "auto":
            surrogate = "sigmoid" if prior > 0 else "logistic"
        log.info(
            "nnPU voxel prior %.4g (label coverage %.3g, %s), %s loss",
            prior,
            pu.label_coverage,
            "given" if pu.prior is not None else "estimated",
            surrogate,
        )
        loss = nnpu_loss(
            prior=prior,
            label_coverage=pu.label_coverage,
            beta=pu.beta,
            gamma=pu.gamma,
            pos_weight=pu.pos_weight,
            surrogate=surrogate,
        )
    else:
        loss = bce_loss(pos_weight=pu.pos_weight)
    val_sampler = None
    v_items: list[Any] = []
    if valid is not None:
        v_items = _prepare(valid[0], valid[1], cfg)
        val_sampler = PUSampler(
            v_items,
            window=cfg.window,
            cache=cfg.cache,
            unlabeled_ratio=pu.unlabeled_ratio,
            augment=False,
            seed=cfg.training.seed + 1,
        )
    # the initial weights come from the global torch generator: seed it so a training run is
    # reproducible on its own, whatever ran before it in the process
    seed_everything(cfg.training.seed)
    network = build_network(cfg)
    if checkpoint_dir is None and output is not None:
        checkpoint_dir = Path(f"{output}.ckpt")
    trainer = Trainer(
        network,
        sampler,
        loss,
        config=cfg.training,
        val_sampler=val_sampler,
        device=device,
        checkpoint_dir=checkpoint_dir,
    )
    result = trainer.fit(resume=resume, progress=progress)
    network = trainer.model.eval()
    threshold = 0.5
    if v_items and cfg.threshold_method != "fixed":
        threshold = choose_threshold(network, valid[0], valid[1], cfg=cfg, device=device)  # type: ignore[index]
    model = EventModel(network, threshold, cfg.als_lam, cfg.als_p, cfg.window)
    log.info(
        "trained the event detector (%d parameters, %d steps, %.1f s), threshold %.3f",
        count_parameters(network),
        result.steps_done,
        result.seconds,
        threshold,
    )
    if output is not None:
        save_model(
            output,
            network,
            force=force,
            extra={
                "task": "events",
                "events": {
                    "threshold": threshold,
                    "als_lam": cfg.als_lam,
                    "als_p": cfg.als_p,
                    "window": list(cfg.window),
                },
                "training": {
                    "config": cfg.model_dump(mode="json"),
                    "steps": result.steps_done,
                    "seconds": result.seconds,
                    "final_loss": result.losses[-1] if result.losses else None,
                    "nnpu_prior": prior,
                },
            },
        )
    return model, result


def choose_threshold(
    network: nn.Module,
    movies: Sequence[Any],
    labels: Sequence[Any],
    *,
    cfg: EventTrainConfig,
    device: str = "auto",
) -> float:
    """Choose the detection threshold on validation movies (event-F1 grid or per-voxel PR).

    The validation labels are taken to be as partial as the training labels
    (``cfg.pu.label_coverage``): precision is then PU-corrected, so detections of unlabeled
    events do not count as false positives.
    """
    coverage = cfg.pu.label_coverage
    probs = [
        probability(network, m, device=device, lam=cfg.als_lam, p=cfg.als_p, tile=cfg.window)
        for m in movies
    ]
    if cfg.threshold_method == "pr":
        return threshold_from_pr(
            np.concatenate([p.ravel() for p in probs]),
            np.concatenate([np.asarray(lab).ravel() for lab in labels]),
            label_coverage=coverage,
        )
    # confident networks put the best threshold high: refine the grid near 1
    cand = np.r_[np.arange(0.05, 0.951, 0.05), 0.97, 0.98, 0.99]
    f1 = np.zeros(len(cand))
    for p, lab in zip(probs, labels, strict=True):
        truth = _label_centroids(np.asarray(lab))
        _, curve = threshold_from_event_f1(p, truth, thresholds=cand, label_coverage=coverage)
        f1 += curve["f1"].to_numpy() / len(probs)
    # F1 on a few dozen validation events (PU-corrected: capped at 1) is noisy and often flat
    # near its maximum: take the middle of the candidates within F1_TOLERANCE of the best
    near = cand[f1 >= f1.max() - F1_TOLERANCE]
    return float(near[(len(near) - 1) // 2])


def _label_centroids(labels: NDArray[Any]) -> NDArray[np.float64]:
    """Centroids ``(t, y, x)`` of labelled events.

    Per instance id, so touching instances are not merged; binary labels are split into
    26-connected components.
    """
    from scipy import ndimage

    from cascope.events.detect import label_events

    if labels.size and labels.max() > 1:
        ids = np.unique(labels[labels > 0])
        return np.asarray(ndimage.center_of_mass(labels > 0, labels, ids), float).reshape(-1, 3)
    _, table = label_events(labels > 0, threshold=0.5, min_size=(1, 1, 1))
    return table[["t", "y", "x"]].to_numpy(float)


def train_from_msct_h5(
    path: str | Path, *, config: EventTrainConfig | None = None, **kwargs: Any
) -> tuple[EventModel, TrainResult]:
    """Train on a file in the mSCT HDF5 layout (``train`` streams; ``valid`` for the threshold).

    Keyword arguments are passed to :func:`train_event_detector`.
    """
    from cascope.io import read_msct_h5

    data = read_msct_h5(path)
    if not data.get("train"):
        raise InputError("has no 'train' streams", path)
    train = list(data["train"].values())
    valid = list(data.get("valid", {}).values())
    return train_event_detector(
        [s.input for s in train],
        [s.label for s in train],
        config=config,
        valid=([s.input for s in valid], [s.label for s in valid]) if valid else None,
        **kwargs,
    )


def load_event_model(path: str | Path, *, device: str = "cpu") -> EventModel:
    """Read a model folder written by :func:`train_event_detector`."""
    from cascope.models import load_model

    network, doc = load_model(path, device=device)
    if doc.get("task") != "events" or "events" not in doc:
        raise InputError("is not an event-detection model (task is not 'events')", path)
    ev = doc["events"]
    return EventModel(
        network,
        float(ev["threshold"]),
        float(ev["als_lam"]),
        float(ev["als_p"]),
        tuple(int(v) for v in ev["window"]),  # type: ignore[arg-type]
    )  # type: ignore[arg-type]


def detect_events(
    movie: Any,
    model: EventModel,
    *,
    config: DetectConfig | None = None,
    labels_out: Any = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Detect events in a movie of any length, streamed in time blocks.

    Parameters
    ----------
    movie : array-like or Movie, (T, Y, X)
        The recording (read block by block).
    model : EventModel
        The trained detector.
    config : DetectConfig, optional
        Threshold, tiling and block options.
    labels_out : array-like, optional
        ``(T, Y, X)`` integer array receiving the event ids.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        The event table of :func:`~cascope.events.detect.label_events` (``score_*`` hold
        probabilities).
    """
    from cascope.tiling import predict_streamed, torch_predictor

    cfg = config or DetectConfig()
    shape = tuple(int(s) for s in movie.shape)
    norm = preprocess(movie, lam=model.als_lam, p=model.als_p)
    thr = model.threshold if cfg.threshold == "auto" else float(cfg.threshold)
    det = StreamingDetector(
        shape,
        threshold=thr,
        block=cfg.block,
        halo=cfg.halo,
        min_size=cfg.min_size,
        labels_out=labels_out,
    )
    predict = _sigmoid(torch_predictor(model.network, device=cfg.device))
    with torch.inference_mode():
        predict_streamed(
            predict,
            norm.view(movie),
            det,
            tile=cfg.tile,
            block=cfg.block,
            overlap=cfg.overlap,
            batch_size=cfg.batch_size,
            progress=progress,
        )
    return det.finish()
