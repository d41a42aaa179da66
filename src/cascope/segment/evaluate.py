"""Scores of a segmentation: per-class precision/recall/F1, confusion, mean IoU, instance F1.

Thin views over :mod:`cascope.metrics` (one implementation for every stage): the class scores come
from :func:`cascope.metrics.classification_report` and the instance matching from
:func:`cascope.metrics.match_instances`. This module only keeps the segmentation-facing names,
argument order ``(truth, pred)`` and the flat dictionary the benchmark writes. Centreline Dice
lives in :mod:`cascope.metrics.cldice`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cascope.errors import InputError
from cascope.metrics import ClassificationReport, MatchResult, classification_report
from cascope.metrics import match_instances as _match_instances

CLASS_NAMES = ("background", "axon", "border")


@dataclass(frozen=True)
class ClassScores(ClassificationReport):
    """Per-class scores of a semantic segmentation.

    A :class:`cascope.metrics.ClassificationReport` (``precision``, ``recall``, ``f1``,
    ``iou`` per class, NaN where a class is absent from both truth and prediction;
    ``confusion[true, predicted]``; ``normalized_confusion``; ``mean_iou``) with a flat
    dictionary form for tables.
    """

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
    names = CLASS_NAMES if n_classes == len(CLASS_NAMES) else None
    try:
        rep = classification_report(pred, truth, n_classes=n_classes, names=names)
    except ValueError as err:
        raise InputError(str(err)) from err
    return ClassScores(
        names=rep.names,
        confusion=rep.confusion,
        precision=rep.precision,
        recall=rep.recall,
        f1=rep.f1,
        iou=rep.iou,
    )


@dataclass(frozen=True)
class InstanceScores:
    """One-to-one instance matching at an IoU threshold (a view of a :class:`MatchResult`).

    Attributes
    ----------
    match : cascope.metrics.MatchResult
        The shared matching result (its pairs are ``(predicted, true)``).
    """

    match: MatchResult

    @property
    def tp(self) -> int:
        """Matched pairs."""
        return self.match.tp

    @property
    def fp(self) -> int:
        """Unmatched predicted instances."""
        return self.match.fp

    @property
    def fn(self) -> int:
        """Unmatched true instances."""
        return self.match.fn

    @property
    def pairs(self) -> NDArray[np.int64]:
        """``(true label, predicted label)`` of every match, (M, 2)."""
        return self.match.pairs[:, ::-1]

    @property
    def ious(self) -> NDArray[np.float64]:
        """IoU of every match, (M,)."""
        return self.match.scores

    @property
    def precision(self) -> float:
        """Fraction of predicted instances matched."""
        return self.match.precision

    @property
    def recall(self) -> float:
        """Fraction of true instances matched."""
        return self.match.recall

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall (1 when both are empty)."""
        return self.match.f1


def instance_scores(truth: ArrayLike, pred: ArrayLike, *, iou: float = 0.5) -> InstanceScores:
    """Match instances of two label images by IoU.

    Parameters
    ----------
    truth, pred : array-like of int
        Instance labels of the same shape, 0 background.
    iou : float
        A pair is a candidate when its IoU is at least this, in ``(0, 1]``; candidates are
        matched one-to-one by :func:`cascope.metrics.match_instances` (Hungarian: most pairs,
        then highest total IoU).

    Returns
    -------
    InstanceScores
    """
    t, p = (np.asarray(a) for a in (truth, pred))
    t, p = (a.astype(np.uint8) if a.dtype == bool else a for a in (t, p))
    try:
        return InstanceScores(_match_instances(p, t, iou_threshold=iou))
    except ValueError as err:
        raise InputError(str(err)) from err
