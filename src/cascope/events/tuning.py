"""Threshold tuning: the score threshold that best separates labelled events from the rest.

Two criteria, both usable with partial labels (only a fraction of the events labelled): the
per-voxel precision-recall curve (:func:`threshold_from_pr`) and the event-level F1 of a grid of
thresholds (:func:`threshold_from_event_f1`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from cascope.events.labels import MIN_SIZE, label_events


def _check_coverage(label_coverage: float) -> None:
    if not 0 < label_coverage <= 1:
        raise ValueError("label_coverage must lie in (0, 1]")


def threshold_from_pr(
    scores: ArrayLike,
    truth: ArrayLike,
    *,
    max_voxels: int = 2_000_000,
    seed: int = 0,
    label_coverage: float = 1.0,
) -> float:
    """Per-voxel precision-recall curve; the threshold of the point closest to ``P = R = 1``.

    Parameters
    ----------
    scores : array-like
        Scores of every voxel.
    truth : array-like of bool or int
        Event voxels (non-zero).
    max_voxels : int
        Voxels sampled at random for the curve (all event voxels are kept).
    seed : int
        Seed of that sample.
    label_coverage : float
        Fraction ``c`` of the events that are labelled (partial labels, labelled at random). The
        recall on labelled voxels estimates the true recall, and the true precision is estimated
        as ``min(1, precision_labelled / c)``: detections of unlabeled events are not counted
        as false positives.

    Returns
    -------
    float
    """
    _check_coverage(label_coverage)
    from sklearn.metrics import precision_recall_curve

    s = np.asarray(scores, dtype=np.float32).ravel()
    y = np.asarray(truth).ravel() > 0
    if not y.any():
        raise ValueError("no event voxels in the truth: cannot build a precision-recall curve")
    if s.size > max_voxels:
        rng = np.random.default_rng(seed)
        neg = np.flatnonzero(~y)
        keep = np.concatenate(
            [np.flatnonzero(y), rng.choice(neg, max(1, max_voxels - int(y.sum())), replace=False)]
        )
        # reweight the subsampled negatives so precision stays that of the full movie
        w = np.where(y[keep], 1.0, len(neg) / max(1, len(keep) - int(y.sum())))
        p, r, t = precision_recall_curve(y[keep], s[keep], sample_weight=w)
    else:
        p, r, t = precision_recall_curve(y, s)
    p = np.minimum(p / label_coverage, 1.0)
    d = (1 - p[:-1]) ** 2 + (1 - r[:-1]) ** 2
    return float(t[int(np.argmin(d))])


def threshold_from_event_f1(
    scores: ArrayLike,
    true_events: Any,
    *,
    thresholds: Sequence[float] | NDArray[np.floating[Any]] | None = None,
    max_distance: float = 6.0,
    min_size: Sequence[int] = MIN_SIZE,
    label_coverage: float = 1.0,
) -> tuple[float, pd.DataFrame]:
    """Grid search of the threshold that maximises event F1 (centroid distance < ``max_distance``).

    Parameters
    ----------
    scores : array-like, (T, Y, X)
        Score movie.
    true_events : DataFrame or (N, 3) array
        True event centroids ``t, y, x``.
    thresholds : sequence of float, optional
        Candidates (default: 0.05 .. 0.95 in steps of 0.05).
    max_distance : float
        Match distance.
    min_size : sequence of int
        Size filter of the detection.
    label_coverage : float
        Fraction ``c`` of the true events that ``true_events`` holds (partial labels, chosen at
        random). Recall on the labelled events estimates the true recall; the true precision is
        estimated as ``min(1, matched / (c * n_pred))``, so detections of unlabeled events are
        not counted as false positives (1: complete labels, plain F1).

    Returns
    -------
    threshold : float
        The best candidate (the lowest among ties).
    curve : pandas.DataFrame
        ``threshold, precision, recall, f1, n_pred`` per candidate (estimated true precision
        and F1 when ``label_coverage < 1``).
    """
    from cascope.metrics import match_events

    _check_coverage(label_coverage)
    cand = np.arange(0.05, 0.951, 0.05) if thresholds is None else np.asarray(thresholds, float)
    sc = np.asarray(scores, dtype=np.float32)
    rows = []
    for thr in cand:
        _, tab = label_events(sc, threshold=float(thr), min_size=min_size)
        m = match_events(tab, true_events, max_distance=max_distance)
        precision, f1 = m.precision, m.f1
        if label_coverage < 1:
            precision = min(1.0, m.precision / label_coverage)
            total = precision + m.recall
            f1 = 2 * precision * m.recall / total if total > 0 else 0.0
        rows.append(
            {
                "threshold": float(thr),
                "precision": precision,
                "recall": m.recall,
                "f1": f1,
                "n_pred": len(tab),
            }
        )
    curve = pd.DataFrame(rows)
    best = float(curve["threshold"].iloc[int(np.argmax(curve["f1"].to_numpy()))])
    return best, curve
