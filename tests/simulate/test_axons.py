import numpy as np
import pytest
from scipy import ndimage

from cascope.errors import InputError
from cascope.simulate import axons

SIX = ndimage.generate_binary_structure(3, 1)


@pytest.fixture(scope="module")
def dense():
    return axons(seed=3, shape=(24, 96, 96), density="dense")


def test_same_seed_identical_different_seed_differs():
    a = axons(seed=1, shape=(16, 48, 48))
    b = axons(seed=1, shape=(16, 48, 48))
    c = axons(seed=2, shape=(16, 48, 48))
    np.testing.assert_array_equal(a.noisy, b.noisy)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.labels, c.labels)


def test_semantic_matches_an_independent_border_computation(dense):
    lab = dense.labels
    hi = ndimage.maximum_filter(lab, footprint=SIX, mode="nearest")
    lo = ndimage.minimum_filter(lab, footprint=SIX, mode="nearest")
    expected = np.where(lab == 0, 0, np.where(hi != lo, 2, 1))
    np.testing.assert_array_equal(dense.semantic, expected)
    counts = np.bincount(dense.semantic.ravel(), minlength=3)
    assert counts[0] > counts[2] > 0 and counts[1] > 0


def test_dense_axons_touch_and_touching_voxels_are_border(dense):
    lab = dense.labels
    touching = np.zeros(lab.shape, dtype=bool)
    for ax in range(3):
        a = np.moveaxis(lab, ax, 0)
        pair = (a[:-1] > 0) & (a[1:] > 0) & (a[:-1] != a[1:])
        t = np.moveaxis(touching, ax, 0)
        t[:-1] |= pair
        t[1:] |= pair
    assert touching.sum() > 20
    assert np.all(dense.semantic[touching] == 2)
    assert len(np.unique(lab)) - 1 == len(dense.radii) >= 10


def test_centrelines_run_inside_their_instances(dense):
    hits, total = 0, 0
    for c in dense.centrelines:
        idx = np.round(c.points).astype(int)
        hits += int((dense.labels[tuple(idx.T)] == c.label).sum())
        total += len(idx)
        assert np.all(c.points >= 0) and np.all(c.points <= np.array(dense.labels.shape) - 1)
    assert hits / total > 0.9


def test_psf_is_anisotropic():
    sim = axons(
        mode="straight",
        shape=(40, 40, 60),
        tube_direction=(0, 0, 1),
        tube_length=40,
        radius=(1.5, 1.5),
        photons=1000,
        background=0.0,
    )
    prof = sim.clean[:, :, 30] - sim.params.camera.offset
    z_width = (prof[:, 20] > prof.max() / 2).sum()
    y_width = (prof[20, :] > prof.max() / 2).sum()
    assert z_width > y_width + 1


def test_straight_tube_has_the_requested_length():
    sim = axons(mode="straight", shape=(32, 96, 96), tube_length=70.0, radius=(2.0, 2.0))
    assert sim.lengths() == {1: pytest.approx(70.0)}
    pts = sim.centrelines[0].points
    assert np.linalg.norm(pts[-1] - pts[0]) == pytest.approx(70.0)
    # the rendered tube has the volume of a cylinder of that length (plus two half-ball caps)
    expected = np.pi * 2.0**2 * 70.0 + 4 / 3 * np.pi * 2.0**3
    assert (sim.labels == 1).sum() == pytest.approx(expected, rel=0.15)


def test_straight_tube_that_does_not_fit_is_refused():
    with pytest.raises(InputError, match="does not fit"):
        axons(mode="straight", shape=(16, 32, 32), tube_length=200)


def test_fret_ratio_is_recoverable_from_the_clean_channels():
    sim = axons(seed=4, shape=(24, 96, 96), fret=True, n_axons=4)
    assert sim.axes == "CZYX" and sim.noisy.shape == (2, 24, 96, 96)
    donor = sim.clean[0] - sim.background[0]
    acceptor = sim.clean[1] - sim.background[1]
    checked = 0
    for i, ratio in enumerate(sim.ratios):
        core = (sim.labels == i + 1) & (sim.semantic == 1)
        if core.sum() < 50:
            continue
        measured = np.median(acceptor[core] / donor[core])
        assert measured == pytest.approx(ratio, rel=0.05)
        checked += 1
    assert checked >= 3
    lo, hi = sim.params.fret_ratio
    assert np.all((sim.ratios >= lo) & (sim.ratios <= hi))
