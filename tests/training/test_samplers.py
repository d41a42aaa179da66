import numpy as np
import pytest

from cascope.training import (
    PatchSampler,
    blind_spot_pairing,
    noise2noise_pairing,
    supervised_pairing,
    temporal_interleave_pairing,
)


def test_supervised_windows_are_aligned(rng):
    x = rng.normal(size=(20, 30, 30)).astype(np.float32)
    s = PatchSampler([(x, 2 * x)], (4, 8, 8), pairing=supervised_pairing(), augment="stack")
    b = s.sample(5)
    assert b.input.shape == (5, 1, 4, 8, 8) and b.mask is None
    np.testing.assert_allclose(b.target.numpy(), 2 * b.input.numpy())


def test_temporal_interleave_splits_even_and_odd_frames():
    t = np.arange(16, dtype=np.float32)[:, None, None] * np.ones((1, 4, 4), np.float32)
    s = PatchSampler([(t,)], (8, 4, 4), pairing=temporal_interleave_pairing(), seed=3)
    b = s.sample(6)
    assert b.input.shape == (6, 1, 4, 4, 4)
    frames_in = b.input[:, 0, :, 0, 0].numpy()
    frames_out = b.target[:, 0, :, 0, 0].numpy()
    # neighbouring frames of one window: input and target differ by exactly one frame
    np.testing.assert_array_equal(np.abs(frames_in - frames_out), 1)
    assert {int(f[0]) % 2 for f in frames_in} == {0, 1}  # swapped at random


def test_noise2noise_swaps_the_two_recordings(rng):
    a = np.zeros((8, 8), np.float32)
    b = np.ones((8, 8), np.float32)
    s = PatchSampler([(a, b)], (4, 4), pairing=noise2noise_pairing(), seed=0)
    batch = s.sample(20)
    inputs = batch.input.numpy().reshape(20, -1)[:, 0]
    assert set(inputs.tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(batch.input + batch.target, np.ones_like(batch.input))


def test_blind_spot_masks_and_replaces_only_masked_pixels(rng):
    x = rng.normal(size=(64, 64)).astype(np.float32)
    s = PatchSampler([(x,)], (32, 32), pairing=blind_spot_pairing(fraction=0.05), seed=1)
    b = s.sample(4)
    mask = b.mask.numpy().astype(bool)
    changed = b.input.numpy() != b.target.numpy()
    assert not changed[~mask].any()
    assert changed[mask].mean() > 0.9  # replaced by another pixel's (different) value
    assert 0.03 < mask.mean() < 0.07


def test_regions_restrict_windows():
    t = np.arange(40, dtype=np.float32)[:, None, None] * np.ones((1, 4, 4), np.float32)
    s = PatchSampler([(t, t)], (4, 4, 4), pairing=supervised_pairing(), regions=[(slice(30, 40),)])
    assert s.sample(16).input.min() >= 30


def test_centers_place_windows_on_events():
    x = np.zeros((30, 30, 30), np.float32)
    s = PatchSampler(
        [(x, x)],
        (4, 4, 4),
        pairing=supervised_pairing(),
        centers=[np.array([[15, 15, 15]])],
        center_fraction=1.0,
    )
    assert s._choose_window()[1] == (slice(13, 17),) * 3


def test_squeeze_gives_2d_patches_from_a_movie(rng):
    x = rng.normal(size=(10, 16, 16)).astype(np.float32)
    s = PatchSampler([(x,)], (1, 8, 8), pairing=blind_spot_pairing(), squeeze=True, augment="image")
    assert s.sample(3).input.shape == (3, 1, 8, 8)


def test_state_dict_continues_the_same_sequence(rng):
    x = rng.normal(size=(20, 20)).astype(np.float32)
    s = PatchSampler([(x, x)], (5, 5), pairing=supervised_pairing(), augment="image", seed=7)
    s.sample(3)
    state = s.state_dict()
    a = s.sample(3).input
    s2 = PatchSampler([(x, x)], (5, 5), pairing=supervised_pairing(), augment="image", seed=99)
    s2.load_state_dict(state)
    np.testing.assert_array_equal(a, s2.sample(3).input)


def test_misaligned_items_are_rejected():
    with pytest.raises(ValueError, match="aligned"):
        PatchSampler([(np.zeros((4, 4)), np.zeros((4, 5)))], (2, 2), pairing=supervised_pairing())
