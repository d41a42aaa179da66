import numpy as np
import pytest

from cascope.metrics import classification_report


def test_hand_worked_three_classes():
    true = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    pred = np.array([0, 0, 1, 1, 2, 2, 2, 0])
    rep = classification_report(pred, true, n_classes=3, names=["bg", "axon", "border"])
    # class 0: TP 2, FP 1 (pred 0 at true 2), FN 1 -> P 2/3, R 2/3, IoU 2/4
    # class 1: TP 1, FP 1, FN 1 -> P 1/2, R 1/2, IoU 1/3
    # class 2: TP 2, FP 1, FN 1 -> P 2/3, R 2/3, IoU 2/4
    np.testing.assert_allclose(rep.precision, [2 / 3, 1 / 2, 2 / 3])
    np.testing.assert_allclose(rep.recall, [2 / 3, 1 / 2, 2 / 3])
    np.testing.assert_allclose(rep.f1, [2 / 3, 1 / 2, 2 / 3])
    np.testing.assert_allclose(rep.iou, [1 / 2, 1 / 3, 1 / 2])
    assert rep.mean_iou == pytest.approx((1 / 2 + 1 / 3 + 1 / 2) / 3)
    assert rep.accuracy == pytest.approx(5 / 8)
    np.testing.assert_array_equal(rep.confusion, [[2, 1, 0], [0, 1, 1], [1, 0, 2]])
    np.testing.assert_allclose(rep.normalized_confusion.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.diag(rep.normalized_confusion), rep.recall)
    frame = rep.to_frame()
    assert list(frame.index) == ["bg", "axon", "border"]
    assert frame.loc["axon", "support"] == 2
    d = rep.to_dict()
    assert d["classes"]["border"]["iou"] == pytest.approx(0.5)


def test_matches_sklearn(rng):
    from sklearn.metrics import confusion_matrix, jaccard_score, precision_recall_fscore_support

    true = rng.integers(0, 4, (20, 30))
    pred = np.where(rng.random(true.shape) < 0.7, true, rng.integers(0, 4, true.shape))
    rep = classification_report(pred, true, n_classes=4)
    p, r, f, _ = precision_recall_fscore_support(true.ravel(), pred.ravel(), labels=range(4))
    np.testing.assert_allclose(rep.precision, p)
    np.testing.assert_allclose(rep.recall, r)
    np.testing.assert_allclose(rep.f1, f)
    np.testing.assert_allclose(
        rep.iou, jaccard_score(true.ravel(), pred.ravel(), labels=range(4), average=None)
    )
    np.testing.assert_array_equal(rep.confusion, confusion_matrix(true.ravel(), pred.ravel()))


def test_absent_class_is_nan_and_left_out_of_mean_iou():
    rep = classification_report([0, 1, 1], [0, 1, 1], n_classes=3)
    assert np.isnan(rep.iou[2]) and np.isnan(rep.recall[2])
    assert rep.mean_iou == pytest.approx(1.0)
    assert rep.to_dict()["classes"]["2"]["iou"] is None


def test_rejects_bad_values():
    with pytest.raises(ValueError, match="outside"):
        classification_report([0, 3], [0, 1], n_classes=2)
    with pytest.raises(ValueError, match="size"):
        classification_report([0, 1], [0, 1, 1], n_classes=2)
