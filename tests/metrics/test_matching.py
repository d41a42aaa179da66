import numpy as np
import pandas as pd
import pytest

from cascope.metrics import average_precision, match_events, match_instances


def test_instances_hand_built():
    true = np.zeros((10, 10), dtype=np.int32)
    pred = np.zeros((10, 10), dtype=np.int32)
    true[0:4, 0:4] = 5  # 16 px
    pred[0:4, 0:3] = 2  # 12 px inside it: IoU 12/16 = 0.75 -> match
    true[6:10, 6:10] = 7  # 16 px
    pred[6:10, 8:10] = 9  # 8 px inside: IoU 0.5 -> match at the threshold
    pred[0:2, 8:10] = 4  # nothing there -> FP
    true[8:10, 0:2] = 1  # missed -> FN
    m = match_instances(pred, true, iou_threshold=0.5)
    assert (m.tp, m.fp, m.fn) == (2, 1, 1)
    assert sorted(map(tuple, m.pairs.tolist())) == [(2, 5), (9, 7)]
    assert sorted(m.scores.tolist()) == pytest.approx([0.5, 0.75])
    assert m.precision == pytest.approx(2 / 3)
    assert m.recall == pytest.approx(2 / 3)
    assert m.f1 == pytest.approx(2 * 2 / (3 + 3))
    strict = match_instances(pred, true, iou_threshold=0.6)
    assert strict.tp == 1 and strict.pairs.tolist() == [[2, 5]]


def test_instances_hungarian_beats_greedy():
    # At IoU >= 0.3, greedy by best IoU would pair p1-tA (0.5) and leave tB unmatched; the
    # one-to-one optimum pairs p1-tB and p2-tA.
    true = np.zeros((1, 12), dtype=np.int32)
    pred = np.zeros((1, 12), dtype=np.int32)
    true[0, 0:4] = 1  # tA
    true[0, 4:8] = 2  # tB
    pred[0, 2:6] = 10  # p1: 2 px in tA (IoU 2/6), 2 px in tB (IoU 2/6)
    pred[0, 0:2] = 11  # p2: 2 px in tA, IoU 2/4
    m = match_instances(pred, true, iou_threshold=0.3)
    assert m.tp == 2
    assert sorted(map(tuple, m.pairs.tolist())) == [(10, 2), (11, 1)]


def test_instances_3d_against_brute_force(rng):
    true = rng.integers(0, 6, (6, 10, 10)).astype(np.int64)
    pred = np.where(rng.random(true.shape) < 0.85, true, 0)
    pred[pred == 3] = 30
    m = match_instances(pred, true, iou_threshold=0.5)
    ious = {}
    for a in np.unique(pred[pred > 0]):
        for b in np.unique(true[true > 0]):
            inter = np.sum((pred == a) & (true == b))
            ious[(a, b)] = inter / np.sum((pred == a) | (true == b))
    for (a, b), s in zip(m.pairs.tolist(), m.scores, strict=True):
        assert ious[(a, b)] == pytest.approx(s)
    assert m.tp == 5 and m.fp == 0 and m.fn == 0


def test_instances_empty():
    z = np.zeros((4, 4), dtype=np.int32)
    m = match_instances(z, z)
    assert (m.tp, m.fp, m.fn, m.f1) == (0, 0, 0, 1.0)
    one = z.copy()
    one[0, 0] = 1
    assert match_instances(z, one).recall == 0.0
    with pytest.raises(ValueError, match="integer"):
        match_instances(z.astype(float), z)


def test_events_hand_built_with_tables():
    true = pd.DataFrame({"t": [10, 50, 90], "y": [5, 5, 5], "x": [5, 20, 40]})
    pred = pd.DataFrame(
        {
            "t": [11, 50, 200, 52],
            "y": [5, 8, 5, 5],
            "x": [6, 20, 40, 21],
        }
    )
    m = match_events(pred, true, max_distance=6.0)
    # pred 0 -> true 0 (dist sqrt 2); pred 1 (dist 3) and pred 3 (dist sqrt 5) both near
    # true 1: one-to-one keeps the closer, pred 3; pred 2 is far from everything.
    assert (m.tp, m.fp, m.fn) == (2, 2, 1)
    assert sorted(map(tuple, m.pairs.tolist())) == [(0, 0), (3, 1)]
    assert sorted(m.scores.tolist()) == pytest.approx([np.sqrt(2), np.sqrt(5)])
    assert m.precision == pytest.approx(0.5) and m.recall == pytest.approx(2 / 3)


def test_events_distance_is_strict_and_scaled():
    true = np.array([[0.0, 0.0, 0.0]])
    assert match_events([[6.0, 0.0, 0.0]], true).tp == 0
    assert match_events([[5.99, 0.0, 0.0]], true).tp == 1
    # frames count half: 10 frames away is 5 units away
    assert match_events([[10.0, 0.0, 0.0]], true, scale=(0.5, 1, 1)).tp == 1


def test_events_maximise_number_of_matches():
    # p0 is closest to t0, but p1 can only reach t0: the optimum matches both.
    true = np.array([[0.0, 0, 0], [0, 0, 5]])
    pred = np.array([[0.0, 0, 1], [0, 0, -4]])
    m = match_events(pred, true, max_distance=6.0)
    assert m.tp == 2
    assert sorted(map(tuple, m.pairs.tolist())) == [(0, 1), (1, 0)]


def test_average_precision_hand_worked():
    true = np.array([[0, 0, 0], [0, 0, 10], [0, 0, 20]], dtype=float)
    pred = np.array([[0, 0, 1], [0, 0, 50], [0, 0, 19]], dtype=float)
    scores = np.array([0.9, 0.8, 0.7])
    res = average_precision(pred, scores, true)
    # thresholds 0.9 / 0.8 / 0.7: (P, R) = (1, 1/3), (1/2, 1/3), (2/3, 2/3)
    np.testing.assert_allclose(res.thresholds, [0.9, 0.8, 0.7])
    np.testing.assert_allclose(res.precision, [1, 1 / 2, 2 / 3])
    np.testing.assert_allclose(res.recall, [1 / 3, 1 / 3, 2 / 3])
    # interpolated: 1/3 * 1 + 1/3 * 2/3
    assert res.ap == pytest.approx(5 / 9)


def test_average_precision_perfect_and_reversed_ranking():
    true = np.array([[0, 0, 0], [0, 0, 20]], dtype=float)
    pred = np.array([[0, 0, 0], [0, 0, 20], [0, 0, 60], [0, 0, 80]], dtype=float)
    good = average_precision(pred, [4, 3, 2, 1], true)
    bad = average_precision(pred, [1, 2, 3, 4], true)
    assert good.ap == pytest.approx(1.0)
    # FPs first: (0,0), (0,0), (1/3,1/2), (2/4,1) -> 1/2 * 1/2 + 1/2 * 1/2
    assert bad.ap == pytest.approx(0.5)
    assert average_precision(np.zeros((0, 3)), [], true).ap == 0.0
