"""Apply a trained event detector: the model bundle, event probabilities, streamed detection.

The model folder (``cascope.models`` format) records the preprocessing (ALS λ, p), the training
crop and the detection threshold chosen on validation data, so detection with a saved model
needs no other input.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray
from torch import nn

from cascope.config.events import DetectConfig, EventTrainConfig
from cascope.errors import InputError
from cascope.events.detect import StreamingDetector
from cascope.events.preprocess import Normalization, preprocess
from cascope.training import TrainResult
from cascope.training.driver import ModelBundle


class EventModel(ModelBundle):
    """A trained event detector and what detection needs besides the weights.

    Parameters
    ----------
    model : torch.nn.Module
        The 3D U-Net (one logit channel); also reachable as :attr:`network`.
    threshold : float
        Detection threshold on the event probability (chosen on validation data).
    als_lam, als_p : float
        The ALS baseline of the preprocessing (the detector's normalisation, kept in
        :attr:`normalization`).
    window : (int, int, int)
        The training crop (T, Y, X), used as the prediction tile.
    config : EventTrainConfig, optional
        How it was trained (``None`` when read from a model folder).
    provenance : dict, optional
        Training facts and versions.
    history : TrainResult, optional
        The training run's losses.
    """

    task: ClassVar[str] = "events"

    def __init__(
        self,
        model: nn.Module,
        threshold: float,
        als_lam: float,
        als_p: float,
        window: tuple[int, int, int],
        *,
        config: EventTrainConfig | None = None,
        provenance: dict[str, Any] | None = None,
        history: TrainResult | None = None,
    ) -> None:
        norm = {"als_lam": als_lam, "als_p": als_p}
        super().__init__(model, config, norm, provenance or {}, history)
        self.threshold = threshold
        self.window = window

    @property
    def network(self) -> nn.Module:
        """The network (the bundle's model)."""
        return self.model

    @property
    def als_lam(self) -> float:
        """Smoothness λ of the ALS baseline."""
        return float(self.normalization["als_lam"])

    @property
    def als_p(self) -> float:
        """Asymmetry p of the ALS baseline."""
        return float(self.normalization["als_p"])

    def document(self) -> dict[str, Any]:
        """Return the ``model.yaml`` sections: the detection settings and the training run."""
        doc: dict[str, Any] = {
            "task": self.task,
            "events": {
                "threshold": self.threshold,
                "als_lam": self.als_lam,
                "als_p": self.als_p,
                "window": list(self.window),
            },
        }
        if self.history is not None:
            h = self.history
            doc["training"] = {
                "config": None if self.config is None else self.config.model_dump(mode="json"),
                "steps": h.steps_done,
                "seconds": h.seconds,
                "final_loss": h.losses[-1] if h.losses else None,
                "nnpu_prior": self.provenance.get("nnpu_prior"),
            }
        return doc


def load_event_model(path: str | Path, *, device: str = "cpu") -> EventModel:
    """Read a model folder written by :func:`~cascope.events.train_event_detector`."""
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
    )


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
    predict = sigmoid_predictor(torch_predictor(network, device=device))
    return predict_tiled(predict, nm.view(movie), tile=tile, overlap=overlap, batch_size=batch_size)


def sigmoid_predictor(predict: Any) -> Any:
    """Wrap a logit predictor so that it returns probabilities (float32, clipped logits)."""

    def run(batch: NDArray[np.float32]) -> NDArray[np.float32]:
        z = np.asarray(predict(batch), dtype=np.float32)
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -60, 60))), dtype=np.float32)

    return run


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
    predict = sigmoid_predictor(torch_predictor(model.network, device=cfg.device))
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
