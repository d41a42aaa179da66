"""Train the event-detection U-Net with PU data through the one training driver.

The trained :class:`~cascope.events.EventModel` records the preprocessing (ALS λ, p), the
training crop, the PU options and the detection threshold chosen on validation data
(:mod:`cascope.events.threshold`), so detection with a saved model
(:mod:`cascope.events.predict`) needs no other input.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from torch import nn

from cascope.config.events import EventTrainConfig
from cascope.errors import InputError
from cascope.events.predict import (
    EventModel,
    detect_events,
    load_event_model,
    probability,
)
from cascope.events.preprocess import preprocess
from cascope.events.pu import PUSampler, bce_loss, nnpu_loss
from cascope.events.threshold import F1_TOLERANCE, choose_threshold
from cascope.training import Loss, TrainResult
from cascope.training.driver import train_model

__all__ = [
    "F1_TOLERANCE",
    "EventModel",
    "build_network",
    "choose_threshold",
    "detect_events",
    "load_event_model",
    "probability",
    "train_event_detector",
    "train_from_msct_h5",
]

log = logging.getLogger(__name__)

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


def _pu_loss(cfg: EventTrainConfig, sampler: PUSampler) -> tuple[Loss, float | None]:
    """Return the PU risk (with its class prior, estimated unless given) or BCE of a config."""
    pu = cfg.pu
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
        loss: Loss = nnpu_loss(
            prior=prior,
            label_coverage=pu.label_coverage,
            beta=pu.beta,
            gamma=pu.gamma,
            pos_weight=pu.pos_weight,
            surrogate=surrogate,
        )
    else:
        loss = bce_loss(pos_weight=pu.pos_weight)
    return loss, prior


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
    loss, prior = _pu_loss(cfg, sampler)
    val_sampler = None
    if valid is not None:
        val_sampler = PUSampler(
            _prepare(valid[0], valid[1], cfg),
            window=cfg.window,
            cache=cfg.cache,
            unlabeled_ratio=pu.unlabeled_ratio,
            augment=False,
            seed=cfg.training.seed + 1,
        )
    model = train_model(
        lambda: build_network(cfg),
        sampler,
        loss,
        training=cfg.training,
        bundle=EventModel,
        val_sampler=val_sampler,
        output=output,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        progress=progress,
        device=device,
        threshold=0.5,
        als_lam=cfg.als_lam,
        als_p=cfg.als_p,
        window=cfg.window,
        config=cfg,
    )
    model.provenance["nnpu_prior"] = prior
    if valid is not None and cfg.threshold_method != "fixed":
        model.threshold = choose_threshold(model.network, *valid, cfg=cfg, device=device)
    log.info("event detector threshold %.3f", model.threshold)
    if output is not None:
        model.save(output, force=force)
    assert model.history is not None
    return model, model.history


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
