"""Choose an event detector's threshold on validation movies (event-F1 grid or per-voxel PR)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from torch import nn

from cascope.config.events import EventTrainConfig
from cascope.events.detect import threshold_from_event_f1, threshold_from_pr
from cascope.events.predict import probability

#: Event-F1 candidates this close to the best on validation data count as equally good.
F1_TOLERANCE = 0.02


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
        truth = label_centroids(np.asarray(lab))
        _, curve = threshold_from_event_f1(p, truth, thresholds=cand, label_coverage=coverage)
        f1 += curve["f1"].to_numpy() / len(probs)
    # F1 on a few dozen validation events (PU-corrected: capped at 1) is noisy and often flat
    # near its maximum: take the middle of the candidates within F1_TOLERANCE of the best
    near = cand[f1 >= f1.max() - F1_TOLERANCE]
    return float(near[(len(near) - 1) // 2])


def label_centroids(labels: NDArray[Any]) -> NDArray[np.float64]:
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
