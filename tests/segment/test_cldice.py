import numpy as np

from cascope.metrics import cldice


def test_cldice_perfect_broken_and_thick():
    truth = np.zeros((5, 30, 30), bool)
    truth[1:4, 14:17, 2:28] = True
    assert cldice(truth, truth) == 1.0
    broken = truth.copy()
    broken[:, :, 12:18] = False
    thick = np.zeros_like(truth)
    thick[0:5, 13:18, 2:28] = True
    # a break hurts the centreline score far more than a thicker tube of the same voxel error
    assert cldice(truth, broken) < cldice(truth, thick)
    assert cldice(truth, thick) > 0.95
    assert cldice(truth, np.zeros_like(truth)) == 0.0
