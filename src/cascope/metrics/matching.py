"""One-to-one matching of predicted objects to true ones: instances by IoU, events by distance.

Both matchers solve the same problem: among candidate pairs (IoU at least the threshold, or
centroid distance below the maximum) find the largest one-to-one set, and among those the one with
the best total score (highest IoU, smallest distance). Candidate pairs are sparse, so the problem
is solved exactly as one sparse minimum-weight full bipartite matching
(:func:`scipy.sparse.csgraph.min_weight_full_bipartite_matching`, LAPJVsp) over the candidates
plus one "unmatched" edge per object: memory grows with the number of candidate pairs, never with
the square of a cluster's size, and no dense all-pairs matrix is built. Before the candidates are
listed their number is counted, and a distance that would pair too many events is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cascope.io.event_table import CENTROID_COLUMNS

#: Coordinate columns read from an event table (its centroid).
EVENT_COLUMNS = CENTROID_COLUMNS


#: Most candidate pairs :func:`match_events` lists (about 100 bytes each while matching).
MAX_CANDIDATE_PAIRS = 20_000_000


def _assign(
    rows: NDArray[np.int64], cols: NDArray[np.int64], cost: NDArray[np.float64], bound: float
) -> NDArray[np.int64]:
    """Maximum-cardinality, then minimum-cost, one-to-one matching of candidate pairs.

    The candidates form the top-left block of a square sparse problem: object ``i`` may also
    stay unmatched through an edge of cost ``big`` to its own dummy partner, and the dummies of
    a candidate pair may match each other, so a full matching always exists. ``big`` exceeds
    any total of candidate costs, so the optimum first matches as many pairs as possible, then
    minimises their cost. Memory is linear in the number of candidates.

    Parameters
    ----------
    rows, cols : ndarray of int
        Candidate pairs (row index, column index), each pair at most once.
    cost : ndarray of float
        Cost of each candidate, in ``[0, bound)``.
    bound : float
        Upper bound of every cost.

    Returns
    -------
    ndarray of int64, (K,)
        Indices into the candidate arrays of the chosen pairs.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    if rows.size == 0:
        return np.zeros(0, dtype=np.int64)
    r_ids, r_inv = np.unique(rows, return_inverse=True)
    c_ids, c_inv = np.unique(cols, return_inverse=True)
    nr, nc, k = len(r_ids), len(c_ids), rows.size
    big = bound * (min(nr, nc) + 1)
    # rows: real rows, then one dummy per column; columns: real columns, then one dummy per row.
    # Every weight is shifted by 1 (a full matching has nr + nc edges, so the optimum is the
    # same) because the solver needs positive weights.
    ii = np.concatenate([r_inv, np.arange(nr), nr + np.arange(nc), nr + c_inv])
    jj = np.concatenate([c_inv, nc + np.arange(nr), np.arange(nc), nc + r_inv])
    ww = np.concatenate(
        [np.asarray(cost, np.float64) + 1.0, np.full(nr + nc, big + 1.0), np.ones(k)]
    )
    graph = csr_matrix((ww, (ii, jj)), shape=(nr + nc, nc + nr))
    _, partner = min_weight_full_bipartite_matching(graph)
    matched = np.flatnonzero(partner[:nr] < nc)
    key = r_inv.astype(np.int64) * nc + c_inv
    order = np.argsort(key, kind="stable")
    wanted = matched.astype(np.int64) * nc + partner[matched]
    return np.sort(order[np.searchsorted(key[order], wanted)]).astype(np.int64)


def _matching_size(rows: NDArray[np.int64], cols: NDArray[np.int64]) -> int:
    """Size of a maximum one-to-one matching of candidate pairs (Hopcroft-Karp)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_bipartite_matching

    if rows.size == 0:
        return 0
    _, r_inv = np.unique(rows, return_inverse=True)
    c_ids, c_inv = np.unique(cols, return_inverse=True)
    graph = csr_matrix(
        (np.ones(rows.size, np.int8), (r_inv, c_inv)), shape=(int(r_inv.max()) + 1, len(c_ids))
    )
    return int(np.count_nonzero(maximum_bipartite_matching(graph, perm_type="column") >= 0))


def _prf(tp: int, n_pred: int, n_true: int) -> tuple[float, float, float]:
    """Precision, recall, F1; all 1 when both sets are empty, 0 for an empty denominator."""
    if n_pred == 0 and n_true == 0:
        return 1.0, 1.0, 1.0
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * tp / (n_pred + n_true)
    return precision, recall, f1


@dataclass(frozen=True)
class MatchResult:
    """Outcome of a one-to-one matching.

    Attributes
    ----------
    tp, fp, fn : int
        Matched pairs, unmatched predictions, unmatched true objects.
    precision, recall, f1 : float
        ``tp / n_pred``, ``tp / n_true``, ``2 tp / (n_pred + n_true)``.
    pairs : ndarray of int64, (tp, 2)
        ``(prediction, truth)`` per match: label values for instances, row indices for events.
    scores : ndarray of float64, (tp,)
        IoU (instances) or distance (events) of each pair.
    criterion : str
        What the match threshold applies to (``"iou >= 0.5"``, ``"distance < 6"``).
    """

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    pairs: NDArray[np.int64]
    scores: NDArray[np.float64]
    criterion: str

    @classmethod
    def build(
        cls,
        pairs: NDArray[np.int64],
        scores: NDArray[np.float64],
        n_pred: int,
        n_true: int,
        criterion: str,
    ) -> MatchResult:
        """Count TP/FP/FN and the derived scores from the matched pairs."""
        tp = len(pairs)
        precision, recall, f1 = _prf(tp, n_pred, n_true)
        return cls(
            tp=tp,
            fp=n_pred - tp,
            fn=n_true - tp,
            precision=precision,
            recall=recall,
            f1=f1,
            pairs=pairs.reshape(-1, 2),
            scores=scores,
            criterion=criterion,
        )

    @property
    def mean_score(self) -> float:
        """Mean IoU or distance of the matched pairs (NaN without matches)."""
        return float(self.scores.mean()) if self.scores.size else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form for JSON (the pairs included)."""
        return {
            "criterion": self.criterion,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "mean_matched_score": None if not self.scores.size else self.mean_score,
            "pairs": self.pairs.tolist(),
        }


def match_instances(
    pred_labels: ArrayLike, true_labels: ArrayLike, *, iou_threshold: float = 0.5
) -> MatchResult:
    """Match predicted to true instances one-to-one by IoU (Hungarian).

    Overlaps come from one contingency table of (predicted label, true label) over the voxels
    where both are non-zero; a pair is a candidate when its IoU is at least ``iou_threshold``.
    The matching maximises the number of pairs, then their total IoU.

    Parameters
    ----------
    pred_labels, true_labels : array-like of int
        Instance label images of one shape (2D or 3D); 0 is background.
    iou_threshold : float
        Minimum IoU of a match, in ``(0, 1]``.

    Returns
    -------
    MatchResult
        Pairs hold label values ``(pred, true)``; scores hold their IoU.

    Examples
    --------
    >>> a = np.array([[1, 1, 0, 2, 2, 2]])
    >>> b = np.array([[3, 3, 0, 0, 0, 4]])
    >>> m = match_instances(a, b)
    >>> m.tp, m.fp, m.fn, m.pairs.tolist()
    (1, 1, 1, [[1, 3]])
    """
    p = np.asarray(pred_labels)
    t = np.asarray(true_labels)
    if p.shape != t.shape:
        raise ValueError(f"label images differ in shape: {p.shape} vs {t.shape}")
    if not 0 < iou_threshold <= 1:
        raise ValueError("iou_threshold must be in (0, 1]")
    for what, arr in (("prediction", p), ("truth", t)):
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"the {what} must be an integer label image, got {arr.dtype}")
    p_ids, p_area = np.unique(p[p > 0], return_counts=True)
    t_ids, t_area = np.unique(t[t > 0], return_counts=True)
    both = (p > 0) & (t > 0)
    pi = np.searchsorted(p_ids, p[both])
    ti = np.searchsorted(t_ids, t[both])
    key, inter = np.unique(pi.astype(np.int64) * max(len(t_ids), 1) + ti, return_counts=True)
    rows, cols = key // max(len(t_ids), 1), key % max(len(t_ids), 1)
    iou = inter / (p_area[rows] + t_area[cols] - inter)
    keep = iou >= iou_threshold
    rows, cols, iou = rows[keep], cols[keep], iou[keep].astype(np.float64)
    chosen = _assign(rows, cols, 1.0 - iou, bound=1.0)
    pairs = np.stack([p_ids[rows[chosen]], t_ids[cols[chosen]]], axis=1).astype(np.int64)
    return MatchResult.build(
        pairs, iou[chosen], len(p_ids), len(t_ids), f"iou >= {iou_threshold:g}"
    )


def as_centroids(events: Any, *, columns: Sequence[str] = EVENT_COLUMNS) -> NDArray[np.float64]:
    """Event coordinates as an ``(N, D)`` float array.

    Parameters
    ----------
    events : pandas.DataFrame or array-like
        A table with the ``columns`` (default ``t, y, x``), or an ``(N, D)`` array.
    columns : sequence of str
        Coordinate columns of a table.

    Returns
    -------
    ndarray of float64, (N, D)
    """
    if hasattr(events, "columns"):
        missing = [c for c in columns if c not in events.columns]
        if missing:
            raise ValueError(f"the event table lacks column(s) {missing}")
        arr = np.asarray(events[list(columns)], dtype=np.float64)
    else:
        arr = np.asarray(events, dtype=np.float64)
        if arr.size == 0:
            arr = arr.reshape(0, len(columns))
    if arr.ndim != 2:
        raise ValueError(f"event coordinates must be (N, D), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("event coordinates contain NaN or infinite values")
    return arr


def _event_candidates(
    pred: NDArray[np.float64], true: NDArray[np.float64], max_distance: float
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    from scipy.spatial import cKDTree

    if len(pred) == 0 or len(true) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    pred_tree, true_tree = cKDTree(pred), cKDTree(true)
    # count before listing: a distance that pairs every event with thousands of others would
    # otherwise fill the memory with candidates
    n_pairs = int(pred_tree.count_neighbors(true_tree, max_distance))
    if n_pairs > MAX_CANDIDATE_PAIRS:
        raise ValueError(
            f"a maximum distance of {max_distance:g} pairs {len(pred)} detected with {len(true)} "
            f"true events in {n_pairs:,} candidate pairs (at most {MAX_CANDIDATE_PAIRS:,}): "
            "lower the maximum distance"
        )
    sdm = pred_tree.sparse_distance_matrix(true_tree, max_distance, output_type="ndarray")
    rows, cols, dist = (
        sdm["i"].astype(np.int64),
        sdm["j"].astype(np.int64),
        sdm["v"].astype(np.float64),
    )
    # the tree keeps distances <= max_distance; a match needs a strictly smaller one
    keep = dist < max_distance
    return rows[keep], cols[keep], dist[keep]


def _scaled(events: Any, scale: Sequence[float], columns: Sequence[str]) -> NDArray[np.float64]:
    arr = as_centroids(events, columns=columns)
    s = np.asarray(scale, dtype=np.float64)
    if arr.shape[1] != s.size:
        raise ValueError(f"scale has {s.size} entries for {arr.shape[1]}-D coordinates")
    return arr * s


def match_events(
    pred: Any,
    true: Any,
    *,
    max_distance: float = 6.0,
    scale: Sequence[float] = (1.0, 1.0, 1.0),
    columns: Sequence[str] = EVENT_COLUMNS,
) -> MatchResult:
    """Match predicted to true events one-to-one by centroid distance (Hungarian).

    Coordinates ``(t, y, x)`` are multiplied by ``scale`` (e.g. to weigh frames against pixels),
    then a pair is a candidate when its Euclidean distance is strictly below ``max_distance``.
    The matching maximises the number of pairs, then minimises their total distance.

    Parameters
    ----------
    pred, true : pandas.DataFrame or array-like
        Event tables with ``columns`` or ``(N, D)`` coordinate arrays.
    max_distance : float
        Distance a match must stay below (in scaled units).
    scale : sequence of float
        Factor per coordinate.
    columns : sequence of str
        Coordinate columns of the tables.

    Returns
    -------
    MatchResult
        Pairs hold row indices ``(pred, true)``; scores hold the scaled distances.

    Examples
    --------
    >>> m = match_events([[0, 0, 0], [9, 9, 9]], [[1, 0, 0]])
    >>> m.tp, m.fp, m.fn
    (1, 1, 0)
    """
    if not max_distance > 0:
        raise ValueError("max_distance must be positive")
    p = _scaled(pred, scale, columns)
    t = _scaled(true, scale, columns)
    rows, cols, dist = _event_candidates(p, t, max_distance)
    chosen = _assign(rows, cols, dist, bound=max_distance)
    pairs = np.stack([rows[chosen], cols[chosen]], axis=1).astype(np.int64)
    return MatchResult.build(pairs, dist[chosen], len(p), len(t), f"distance < {max_distance:g}")


@dataclass(frozen=True)
class PrecisionRecallCurve:
    """Average precision and the precision-recall curve it integrates.

    Attributes
    ----------
    ap : float
        Area under the interpolated precision-recall curve.
    thresholds : ndarray of float64
        Score thresholds, descending; point ``k`` keeps predictions with ``score >= thresholds[k]``.
    precision, recall : ndarray of float64
        Raw (not interpolated) precision and recall at each threshold.
    """

    ap: float
    thresholds: NDArray[np.float64]
    precision: NDArray[np.float64]
    recall: NDArray[np.float64]

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form for JSON."""
        return {
            "ap": self.ap,
            "thresholds": self.thresholds.tolist(),
            "precision": self.precision.tolist(),
            "recall": self.recall.tolist(),
        }


def _interpolated_ap(precision: NDArray[np.float64], recall: NDArray[np.float64]) -> float:
    """All-point interpolated AP: sum of recall steps times the best precision at higher recall."""
    r = np.concatenate([[0.0], recall])
    p = np.concatenate([[0.0], precision])
    p_interp = np.maximum.accumulate(p[::-1])[::-1]
    return float(np.sum(np.diff(r) * p_interp[1:]))


def average_precision(
    pred_centroids: Any,
    scores: ArrayLike,
    true_centroids: Any,
    *,
    max_distance: float = 6.0,
    scale: Sequence[float] = (1.0, 1.0, 1.0),
    columns: Sequence[str] = EVENT_COLUMNS,
    max_thresholds: int = 1000,
) -> PrecisionRecallCurve:
    """Average precision of scored event detections, from a sweep over the score threshold.

    At each threshold the predictions with ``score >= threshold`` are matched to all true events
    with :func:`match_events` (Hungarian, not greedy), giving one (recall, precision) point;
    recall never decreases as the threshold drops because a larger prediction set cannot have a
    smaller maximum matching. AP is the area under the curve with all-point interpolation
    (Pascal VOC 2010+ / COCO style): precision at recall ``r`` is replaced by the largest precision
    at any recall ``>= r``, and ``AP = sum_k (r_k - r_{k-1}) p_interp(r_k)`` starting from
    ``r_0 = 0``.

    Parameters
    ----------
    pred_centroids : pandas.DataFrame or array-like
        Predicted events (see :func:`match_events`).
    scores : array-like, (N,)
        Confidence of each prediction (higher is more confident).
    true_centroids : pandas.DataFrame or array-like
        True events.
    max_distance, scale, columns
        As in :func:`match_events`.
    max_thresholds : int
        Every distinct score is a threshold when there are at most this many; otherwise this many
        thresholds at evenly spaced quantiles of the scores.

    Returns
    -------
    PrecisionRecallCurve
        AP in ``[0, 1]`` (0 without true events) and the curve.
    """
    p = _scaled(pred_centroids, scale, columns)
    t = _scaled(true_centroids, scale, columns)
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size != len(p):
        raise ValueError(f"{s.size} scores for {len(p)} predictions")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinite values")
    thresholds = np.unique(s)[::-1]
    if thresholds.size > max_thresholds:
        thresholds = np.unique(np.quantile(s, np.linspace(1.0, 0.0, max_thresholds)))[::-1]
    rows, cols, dist = _event_candidates(p, t, max_distance)
    precision = np.zeros(thresholds.size)
    recall = np.zeros(thresholds.size)
    for k, thr in enumerate(thresholds):
        keep = s[rows] >= thr
        tp = _matching_size(rows[keep], cols[keep])  # only the count matters here
        n_pred = int(np.count_nonzero(s >= thr))
        precision[k] = tp / n_pred if n_pred else 0.0
        recall[k] = tp / len(t) if len(t) else 0.0
    ap = _interpolated_ap(precision, recall) if len(t) else 0.0
    return PrecisionRecallCurve(ap=ap, thresholds=thresholds, precision=precision, recall=recall)
