import numpy as np
import pytest
from scipy import ndimage

from cascope.errors import InputError
from cascope.segment import (
    connected_components,
    label_statistics,
    label_volume,
    sobel_edges,
    threshold_value,
)


def _blobs(rng):
    img = rng.normal(10, 1, (8, 40, 40)).astype(np.float32)
    img[2:6, 5:15, 5:15] += 50
    img[2:6, 25:35, 25:35] += 50
    return img


@pytest.mark.parametrize("method", ["otsu", "triangle", "li"])
def test_automatic_thresholds_separate_blobs_from_background(rng, method):
    img = _blobs(rng)
    thr = threshold_value(img, method=method)
    assert 12 < thr < 60
    lab = label_volume(img, method=method, min_size=10)
    assert lab.max() == 2
    assert (lab[2:6, 5:15, 5:15] > 0).all() and (lab[2:6, 25:35, 25:35] > 0).all()
    assert lab[:, 18:22].max() == 0


def test_constant_threshold_needs_value(rng):
    with pytest.raises(InputError):
        threshold_value(_blobs(rng), method="constant")
    assert threshold_value(_blobs(rng), method="constant", value=3) == 3.0


def test_connectivity_and_min_size():
    mask = np.zeros((3, 6, 6), bool)
    mask[1, 1, 1] = mask[1, 2, 2] = True  # edge neighbours: one component at 18/26, two at 6
    mask[1, 4:6, 4:6] = True
    assert connected_components(mask, connectivity=6).max() == 3
    assert connected_components(mask, connectivity=18).max() == 2
    assert connected_components(mask, connectivity=26, min_size=3).max() == 1


def test_label_statistics_match_independent_computation(rng):
    img = _blobs(rng)
    lab = label_volume(img, min_size=10)
    table = label_statistics(lab, img, voxel_size=(0.5, 0.2, 0.2))
    for _, row in table.iterrows():
        m = lab == row["label"]
        assert row["voxels"] == m.sum()
        assert row["mean"] == pytest.approx(img[m].mean(), rel=1e-5)
        assert row["volume_um3"] == pytest.approx(m.sum() * 0.02)
        assert row["centroid_y"] == pytest.approx(np.argwhere(m)[:, 1].mean())


def test_sobel_edges_peak_on_boundaries():
    img = np.zeros((6, 20, 20), np.float32)
    img[:, :, 10:] = 1.0
    edges = sobel_edges(img)
    assert edges[3, 10, 9:11].min() > 0
    assert edges[3, 10, :8].max() == 0
    ref = np.hypot(ndimage.sobel(img, axis=2, mode="nearest"), 0)
    np.testing.assert_allclose(edges[3], ref[3], atol=1e-5)


@pytest.mark.parametrize(
    ("depth", "height", "recipe", "stack"),
    [(12, 3, "sparse", "gaussian"), (6, 4, "dense", "bilateral")],
)
def test_seed_chain_separates_parallel_axons_and_reports_its_recipe(depth, height, recipe, stack):
    from cascope.segment import label_volume, seed_labels

    rng = np.random.default_rng(0)
    vol = rng.poisson(3, (depth, 80, 80)).astype(np.float32)
    vol[:, :, 70:] = 0  # zero padding beside the imaged field, as in rotated captures
    mid = slice(depth // 2 - 1, depth // 2 + 1)
    for y in (15, 35, 55):
        vol[mid, y : y + height, 5:65] += 30
    lab, info = seed_labels(vol, min_size=50)
    # the recipe follows the foreground fraction, and each planted axon is one label
    assert (info["recipe"], info["stack"]) == (recipe, stack)
    assert int(lab.max()) == 3
    for y in (15, 35, 55):
        core = lab[mid, y + 1 : y + 2, 10:60]
        assert len(np.unique(core)) == 1 and core.min() > 0
    # label_volume's "seed" method is the same chain
    np.testing.assert_array_equal(label_volume(vol, method="seed", min_size=50), lab)


def test_uneven_illumination_does_not_make_a_sparse_field_dense():
    from cascope.segment import seed_labels

    # Arrange: three thin axons on an evenly lit field and on the same field vignetted (the
    # centre twenty times brighter than the corners); Otsu over the raw stack would split the
    # bright centre from the dim rim instead of axons from background
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:120, :120]
    spot = np.exp(-((yy - 60) ** 2 + (xx - 60) ** 2) / (2 * 35.0**2))
    density = {}
    for amp in (0.0, 38.0):
        light = np.broadcast_to((2 + amp * spot).astype(np.float32), (8, 120, 120))
        vol = rng.poisson(light).astype(np.float32)
        for y in (20, 60, 100):
            vol[3:5, y : y + 3, 10:110] += 40
        # Act
        _, info = seed_labels(vol, min_size=50)
        # Assert: both fields are sparse
        assert info["recipe"] == "sparse", (amp, info)
        density[amp] = info["density"]
    # the measured fraction follows the structures, not the light
    assert abs(density[38.0] - density[0.0]) < 0.05
