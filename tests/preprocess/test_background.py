from __future__ import annotations

import numpy as np
import pytest

from cascope.errors import InputError
from cascope.preprocess import add_offset, ellipsoid_footprint, subtract_offset, tophat_background


def _scene(rng: np.random.Generator):
    yy, xx = np.mgrid[0:64, 0:64]
    background = 200.0 + 1.5 * xx + 40.0 * np.sin(yy / 20.0)  # smooth, varies by ~130
    objects = np.zeros((64, 64))
    centres = [(10, 12), (30, 40), (50, 20), (45, 55)]
    for y, x in centres:
        objects[(yy - y) ** 2 + (xx - x) ** 2 <= 4] = 80.0  # radius-2 discs
    return background, objects, centres


def test_tophat_removes_smooth_background_and_keeps_small_objects(rng):
    background, objects, centres = _scene(rng)
    movie = np.stack([background + objects] * 3)
    fg, bg = tophat_background(movie, axes="TYX", radius=6)
    # background gone: far from objects the foreground is small compared with the background range
    yy, xx = np.mgrid[0:64, 0:64]
    far = np.ones((64, 64), bool)
    for y, x in centres:
        far &= (yy - y) ** 2 + (xx - x) ** 2 > 5**2
    assert np.percentile(fg[0][far], 95) < 0.05 * np.ptp(background)
    # objects kept at (nearly) full height
    for y, x in centres:
        assert fg[0, y, x] == pytest.approx(80.0, abs=8.0)
    np.testing.assert_allclose(fg + bg, movie, atol=1e-3)
    assert fg.min() >= 0


def test_anisotropic_radius_needs_the_axis_and_uses_it(rng):
    vol = np.zeros((9, 32, 32))
    vol[:, 16, 16] = 50.0  # a thin rod along Z: wide in Z, narrow in Y/X
    fg_flat, _ = tophat_background(vol, axes="ZYX", radius={"Y": 3, "X": 3})
    assert fg_flat[4, 16, 16] == pytest.approx(50.0)
    # a Z radius smaller than the rod does not remove it either; a 3D element sees its length
    fg_3d, _ = tophat_background(vol, axes="ZYX", radius={"Z": 2, "Y": 3, "X": 3})
    assert fg_3d[4, 16, 16] == pytest.approx(50.0)
    slab = np.zeros((9, 32, 32))
    slab[3:6] = 30.0  # a thin bright plane in Z, extended in Y/X: only a Z radius removes it
    fg_xy, _ = tophat_background(slab, axes="ZYX", radius={"Y": 3, "X": 3})
    fg_z, _ = tophat_background(slab, axes="ZYX", radius={"Z": 3, "Y": 1, "X": 1})
    assert fg_xy[4].max() == 0.0
    assert fg_z[4, 16, 16] == pytest.approx(30.0)
    with pytest.raises(InputError, match="Z"):
        tophat_background(np.zeros((4, 8, 8)), axes="TYX", radius={"Z": 2, "Y": 2, "X": 2})


def test_ellipsoid_footprint_shape():
    fp = ellipsoid_footprint({"Z": 1, "Y": 3, "X": 3}, "ZYX")
    assert fp.shape == (3, 7, 7)
    assert fp[1, 3, 0] and not fp[0, 3, 0] and fp[0, 3, 3]


def test_offset_frame_subtract_and_add_back(rng):
    data = rng.integers(100, 4000, (5, 12, 10)).astype(np.uint16)
    dark = rng.normal(100, 3, (12, 10))
    sub = subtract_offset(data, dark, axes="TYX")
    np.testing.assert_allclose(sub[2], data[2] - dark, rtol=1e-5)
    np.testing.assert_allclose(add_offset(sub, dark, axes="TYX"), data, rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(subtract_offset(data, 100, axes="TYX"), data - 100.0)
    with pytest.raises(InputError, match="offset frame"):
        subtract_offset(data, np.zeros((3, 3)), axes="TYX")
