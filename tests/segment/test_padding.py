"""Training that leaves the zero padding of a rotated capture out of the loss and the sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cascope.config.segment import AugmentConfig, SegmenterConfig
from cascope.segment import train_segmenter
from cascope.segment.train import field_centres, segmentation_pairing
from cascope.simulate import axons


def _padded(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A simulated stack whose left third is zero padding, as a rotated export leaves it."""
    sim = axons(seed=seed, shape=(8, 48, 48))
    raw = np.asarray(sim.noisy, dtype=np.float32)
    raw = raw - raw.min() + 1.0  # the imaged field never holds an exact zero
    lab = np.asarray(sim.labels, dtype=np.int32)
    field = np.ones(raw.shape, bool)
    field[:, :, :16] = False
    raw[~field] = 0
    lab[~field] = 0
    return raw, lab, field


def test_field_centres_stay_inside_the_field_with_the_foreground_share():
    # Arrange: classes with a little foreground and a field that leaves out a third
    _, lab, field = _padded(1)
    classes = (lab > 0).astype(np.uint8)
    # Act
    pts = field_centres(classes, field, foreground_fraction=0.7, seed=0)
    # Assert: every centre is imaged, and 70 % of them lie on foreground
    assert field[tuple(pts.T)].all()
    share = classes[tuple(pts.T)].mean()
    assert abs(share - 0.7) < 0.02


def test_the_loss_mask_moves_with_the_labels_under_augmentation():
    # Arrange: labels that are 1 exactly where the mask is 1
    rng = np.random.default_rng(0)
    mask = np.zeros((8, 32, 32), np.float32)
    mask[:, :, 12:] = 1
    image = rng.random(mask.shape).astype(np.float32) * mask
    pair = segmentation_pairing(AugmentConfig(flip=1.0, affine=1.0, elastic=0.0))
    torch.manual_seed(0)
    for _ in range(4):
        # Act: one augmented sample
        x, y, m = pair([image, mask.copy(), mask], rng)
        # Assert: the mask came back, transformed exactly as the labels were
        assert m is not None and m.shape == y.shape
        np.testing.assert_array_equal(m, y)


@pytest.mark.parametrize(("exclude", "gap"), [(True, 0.0), (True, 10.0), (False, 10.0)])
def test_training_with_a_padding_mask_or_gap_weights_runs(exclude, gap):
    # Arrange: two padded stacks (the gap weights, when asked, ride in the loss mask)
    raw, lab, _ = _padded(2)
    cfg = SegmenterConfig.model_validate(
        {
            "base": 4,
            "depth": 2,
            "patch": (8, 32, 32),
            "exclude_padding": exclude,
            "gap_weight": gap,
            "augment": {"enabled": False},
            "training": {"steps": 6, "batch_size": 2, "lr": 3e-3, "seed": 0},
        }
    )
    # Act
    _, result = train_segmenter([raw], [lab], config=cfg, label_kind="instance")
    # Assert: every step ran with a finite loss
    assert result.steps_done == 6
    assert np.isfinite(result.losses).all()
