import numpy as np
import pytest
import torch

from cascope.training import apply_transform, get_loss, invert_transform, n_transforms


@pytest.mark.parametrize("stack", [True, False])
def test_the_group_has_distinct_elements_and_inverts(stack, rng):
    a = rng.normal(size=(3, 4, 4) if stack else (4, 4))
    seen = set()
    for i in range(n_transforms(stack=stack)):
        b = apply_transform(a, i, stack=stack)
        seen.add(b.tobytes())
        np.testing.assert_array_equal(invert_transform(b, i, stack=stack), a)
    assert len(seen) == n_transforms(stack=stack)


def test_leading_axes_are_untouched(rng):
    a = rng.normal(size=(2, 3, 4, 4))
    b = apply_transform(a, 15, stack=True)
    np.testing.assert_array_equal(b[0], apply_transform(a[0], 15, stack=True))


def test_masked_losses_use_masked_voxels_only():
    pred = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[1.0, 100.0], [2.0, 100.0]]]])
    mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    assert get_loss("l1")(pred, target, mask).item() == pytest.approx(1.5)
    assert get_loss("l2")(pred, target, mask).item() == pytest.approx(2.5)
    assert get_loss("l1+l2")(pred, target, mask).item() == pytest.approx(4.0)


def test_unknown_loss_is_named():
    with pytest.raises(ValueError, match="unknown loss"):
        get_loss("l3")
