import numpy as np
import pytest

from cascope.errors import InputError
from cascope.metrics import classification_report, match_instances
from cascope.segment import class_scores, instance_scores


def test_class_scores_are_the_shared_classification_report(rng):
    truth = rng.integers(0, 3, (6, 20, 20))
    pred = np.where(rng.random(truth.shape) < 0.8, truth, rng.integers(0, 3, truth.shape))
    scores = class_scores(truth, pred)
    shared = classification_report(pred, truth, n_classes=3)
    for what in ("precision", "recall", "f1", "iou"):
        np.testing.assert_array_equal(getattr(scores, what), getattr(shared, what))
    np.testing.assert_array_equal(scores.confusion, shared.confusion)
    # confusion is [true, predicted]: a row sums to the true count of its class
    np.testing.assert_array_equal(scores.confusion.sum(axis=1), np.bincount(truth.ravel()))
    np.testing.assert_allclose(np.diag(scores.normalized_confusion), scores.recall)
    flat = scores.as_dict()
    assert flat["f1_axon"] == scores.f1[1] and flat["mean_iou"] == scores.mean_iou
    with pytest.raises(InputError):
        class_scores(truth, pred + 3)


def test_instance_scores_are_the_shared_matching():
    truth = np.zeros((4, 12, 12), np.int32)
    truth[:, 1:5, 1:5] = 1
    truth[:, 7:11, 7:11] = 2
    pred = np.zeros_like(truth)
    pred[:, 1:5, 1:4] = 5  # IoU 0.75 with label 1
    pred[:, 0:2, 8:11] = 6  # a false positive
    scores = instance_scores(truth, pred)
    shared = match_instances(pred, truth)
    assert (scores.tp, scores.fp, scores.fn) == (1, 1, 1)
    assert scores.f1 == shared.f1 == 0.5
    assert scores.pairs.tolist() == [[1, 5]]  # (true, predicted)
    np.testing.assert_allclose(scores.ious, [0.75])
    assert instance_scores(truth > 0, truth > 0).f1 == 1.0  # boolean masks are one instance
    with pytest.raises(InputError):
        instance_scores(truth, pred[:2])
