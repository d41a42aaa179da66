"""Scores of a segmentation: per-class precision/recall/F1, confusion, mean IoU, instance F1.

These are the segmentation-specific summaries the benchmark and the tests report; centreline Dice
lives in :mod:`cascope.metrics.cldice`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cascope.errors import InputError

CLASS_NAMES = ("background", "axon", "border")


@dataclass(frozen=True)
class ClassScores:
    """Per-class scores of a semantic segmentation.

    Attributes
    ----------
    precision, recall, f1, iou : ndarray of float64, (K,)
        Per class (NaN where a class is absent from both truth and prediction).
    confusion : ndarray of int64, (K, K)
        ``confusion[true, predicted]`` voxel counts.
    """

    precision: NDArray[np.float64]
    recall: NDArray[np.float64]
    f1: NDArray[np.float64]
    iou: NDArray[np.float64]
    confusion: NDArray[np.int64]

    @property
    def normalized_confusion(self) -> NDArray[np.float64]:
        """Row-normalised confusion matrix (each true class sums to 1; its diagonal is recall)."""
        rows = self.confusion.sum(axis=1, keepdims=True).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.confusion / rows

    @property
    def mean_iou(self) -> float:
        """Mean IoU over the classes present."""
        return float(np.nanmean(self.iou))

    def as_dict(self, names: tuple[str, ...] = CLASS_NAMES) -> dict[str, float]:
        """Flat ``{"f1_axon": ..., "recall_border": ..., "mean_iou": ...}`` dictionary."""
        out: dict[str, float] = {}
        for k in range(len(self.f1)):
            name = names[k] if k < len(names) else str(k)
            for what in ("precision", "recall", "f1", "iou"):
                out[f"{what}_{name}"] = float(getattr(self, what)[k])
        out["mean_iou"] = self.mean_iou
        return out


def class_scores(truth: ArrayLike, pred: ArrayLike, *, n_classes: int = 3) -> ClassScores:
    """Compare two class maps voxel by voxel.

    Parameters
    ----------
    truth, pred : array-like of int
        Class maps of the same shape with values ``0 .. n_classes - 1``.
    n_classes : int
        Number of classes.

    Returns
    -------
    ClassScores
    """
    t = np.asarray(truth).ravel().astype(np.int64)
    p = np.asarray(pred).ravel().astype(np.int64)
    if t.shape != p.shape:
        raise InputError(f"truth and prediction differ in size ({t.size} vs {p.size})")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= n_classes):
        raise InputError(f"class values must lie in 0..{n_classes - 1}")
    conf = np.bincount(t * n_classes + p, minlength=n_classes**2).reshape(n_classes, n_classes)
    tp = np.diag(conf).astype(np.float64)
    n_pred = conf.sum(axis=0).astype(np.float64)
    n_true = conf.sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / n_pred
        recall = tp / n_true
        f1 = 2 * tp / (n_pred + n_true)
        iou = tp / (n_pred + n_true - tp)
    return ClassScores(precision, recall, f1, iou, conf.astype(np.int64))


@dataclass(frozen=True)
class InstanceScores:
    """Instance matching at an IoU threshold (one-to-one; unique above IoU 0.5).

    Attributes
    ----------
    tp, fp, fn : int
        Matched, unmatched predicted and unmatched true instances.
    pairs : ndarray of int64, (M, 2)
        ``(true label, predicted label)`` of every match.
    ious : ndarray of float64, (M,)
        IoU of every match.
    """

    tp: int
    fp: int
    fn: int
    pairs: NDArray[np.int64] = field(repr=False)
    ious: NDArray[np.float64] = field(repr=False)

    @property
    def precision(self) -> float:
        """Fraction of predicted instances matched."""
        return self.tp / max(self.tp + self.fp, 1)

    @property
    def recall(self) -> float:
        """Fraction of true instances matched."""
        return self.tp / max(self.tp + self.fn, 1)

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall (1 when both are empty)."""
        total = 2 * self.tp + self.fp + self.fn
        return 1.0 if total == 0 else 2 * self.tp / total


def instance_scores(truth: ArrayLike, pred: ArrayLike, *, iou: float = 0.5) -> InstanceScores:
    """Match instances of two label images by IoU.

    Parameters
    ----------
    truth, pred : array-like of int
        Instance labels of the same shape, 0 background.
    iou : float
        A pair matches when its IoU is above this (>= 0.5, so matches are unique).

    Returns
    -------
    InstanceScores
    """
    if iou < 0.5:
        raise InputError("the IoU threshold must be at least 0.5 for unique matching")
    t = np.asarray(truth).ravel().astype(np.int64)
    p = np.asarray(pred).ravel().astype(np.int64)
    if t.shape != p.shape:
        raise InputError("truth and prediction differ in size")
    t_ids, t_sizes = np.unique(t[t > 0], return_counts=True)
    p_ids, p_sizes = np.unique(p[p > 0], return_counts=True)
    both = (t > 0) & (p > 0)
    scale = int(p.max()) + 1
    codes, inter = np.unique(t[both] * scale + p[both], return_counts=True)
    pt, pp = codes // scale, codes % scale
    st = t_sizes[np.searchsorted(t_ids, pt)]
    sp = p_sizes[np.searchsorted(p_ids, pp)]
    ious = inter / (st + sp - inter)
    ok = ious > iou
    tp = int(ok.sum())
    return InstanceScores(
        tp=tp,
        fp=len(p_ids) - tp,
        fn=len(t_ids) - tp,
        pairs=np.stack([pt[ok], pp[ok]], axis=1),
        ious=ious[ok].astype(np.float64),
    )
