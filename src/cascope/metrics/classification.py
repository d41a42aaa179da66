"""Per-class scores of a dense (semantic) prediction: precision, recall, F1, IoU, confusion."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    import pandas as pd

#: Most classes a class map may have: the confusion matrix has ``n_classes ** 2`` cells.
MAX_CLASSES = 4096


def _ratio(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


@dataclass(frozen=True)
class ClassificationReport:
    """Scores of a K-class prediction.

    Attributes
    ----------
    names : tuple of str
        Class names, index = class value.
    confusion : ndarray of int64, (K, K)
        ``confusion[true, predicted]`` counts.
    precision, recall, f1, iou : ndarray of float64, (K,)
        Per class; NaN where undefined (e.g. recall of a class absent from the truth).
    """

    names: tuple[str, ...]
    confusion: NDArray[np.int64]
    precision: NDArray[np.float64]
    recall: NDArray[np.float64]
    f1: NDArray[np.float64]
    iou: NDArray[np.float64]

    @property
    def normalized_confusion(self) -> NDArray[np.float64]:
        """Row-normalised confusion: each true class sums to 1 (its diagonal is the recall)."""
        rows = self.confusion.sum(axis=1, keepdims=True).astype(np.float64)
        return _ratio(self.confusion.astype(np.float64), rows)

    @property
    def mean_iou(self) -> float:
        """Mean IoU over classes where it is defined."""
        return float(np.nanmean(self.iou)) if np.isfinite(self.iou).any() else float("nan")

    @property
    def accuracy(self) -> float:
        """Fraction of elements whose class is right."""
        total = int(self.confusion.sum())
        return float(np.trace(self.confusion) / total) if total else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form for JSON (NaN written as ``None``)."""

        def clean(values: NDArray[np.float64]) -> list[float | None]:
            return [float(v) if np.isfinite(v) else None for v in values]

        return {
            "classes": {
                name: {
                    "precision": clean(self.precision)[k],
                    "recall": clean(self.recall)[k],
                    "f1": clean(self.f1)[k],
                    "iou": clean(self.iou)[k],
                    "support": int(self.confusion[k].sum()),
                }
                for k, name in enumerate(self.names)
            },
            "mean_iou": self.mean_iou,
            "accuracy": self.accuracy,
            "confusion": self.confusion.tolist(),
            "confusion_normalized": [clean(row) for row in self.normalized_confusion],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per class: precision, recall, F1, IoU and support (true count)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "precision": self.precision,
                "recall": self.recall,
                "f1": self.f1,
                "iou": self.iou,
                "support": self.confusion.sum(axis=1),
            },
            index=pd.Index(self.names, name="class"),
        )


def classification_report(
    pred: ArrayLike,
    true: ArrayLike,
    *,
    n_classes: int,
    names: Sequence[str] | None = None,
) -> ClassificationReport:
    """Per-class precision, recall, F1 and IoU and the confusion matrix of a class map.

    For class ``k`` with ``TP = #(pred == k and true == k)``, ``FP = #(pred == k) - TP`` and
    ``FN = #(true == k) - TP``: precision ``TP / (TP + FP)``, recall ``TP / (TP + FN)``,
    F1 ``2 TP / (2 TP + FP + FN)`` and IoU ``TP / (TP + FP + FN)``. A ratio with a zero
    denominator is NaN (left out of :attr:`ClassificationReport.mean_iou`).

    Parameters
    ----------
    pred, true : array-like of int
        Class maps of the same shape with values in ``[0, n_classes)``.
    n_classes : int
        Number of classes K.
    names : sequence of str, optional
        Class names (default ``"0"``, ``"1"``, ...).

    Returns
    -------
    ClassificationReport

    Examples
    --------
    >>> rep = classification_report([0, 1, 1, 2], [0, 1, 2, 2], n_classes=3)
    >>> rep.recall.tolist()
    [1.0, 1.0, 0.5]
    """
    p = np.asarray(pred).ravel()
    t = np.asarray(true).ravel()
    if p.shape != t.shape:
        raise ValueError(f"prediction and truth differ in size: {p.size} vs {t.size}")
    if n_classes < 1:
        raise ValueError("n_classes must be at least 1")
    if n_classes > MAX_CLASSES:  # the confusion matrix has n_classes ** 2 cells
        raise ValueError(f"{n_classes} classes exceed the {MAX_CLASSES} a class map may have")
    for what, arr in (("prediction", p), ("truth", t)):
        if not np.issubdtype(arr.dtype, np.integer) and not np.issubdtype(arr.dtype, np.bool_):
            if arr.size and not np.array_equal(arr, np.round(arr)):
                raise ValueError(f"the {what} holds non-integer class values")
        if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
            raise ValueError(f"the {what} holds values outside [0, {n_classes})")
    names_t = tuple(names) if names is not None else tuple(str(k) for k in range(n_classes))
    if len(names_t) != n_classes:
        raise ValueError(f"{len(names_t)} names for {n_classes} classes")
    flat = t.astype(np.int64) * n_classes + p.astype(np.int64)
    confusion = np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    tp = np.diag(confusion).astype(np.float64)
    fp = confusion.sum(axis=0) - tp
    fn = confusion.sum(axis=1) - tp
    return ClassificationReport(
        names=names_t,
        confusion=confusion.astype(np.int64),
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn),
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
        iou=_ratio(tp, tp + fp + fn),
    )
