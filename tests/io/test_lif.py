from __future__ import annotations

import numpy as np
import pytest
from readlif.reader import LifFile

from cascope import io
from cascope.errors import InputError
from cascope.io.lif import list_series


@pytest.fixture
def lif_images(rng):
    twelve = rng.integers(0, 4096, (4, 2, 3, 10, 12), dtype=np.uint16)
    twelve[0, 0, 0, 0, :3] = [4095, 257, 1]  # values that 8 bits cannot hold
    eight = rng.integers(0, 256, (1, 1, 5, 7, 9), dtype=np.uint8)
    sixteen = rng.integers(0, 65536, (6, 1, 1, 8, 8), dtype=np.uint16)
    return {"timelapse 12bit": (twelve, 12), "stack 8bit": (eight, 8), "fast 16bit": (sixteen, 16)}


def test_lif_series_bit_depth_and_values(make_lif, lif_images):
    path = make_lif(lif_images, voxel_um=(2.0, 0.5, 0.25), dt=0.1)
    assert list_series(path) == list(lif_images)
    m = io.read(path)
    twelve = lif_images["timelapse 12bit"][0]
    assert (m.axes, m.shape, m.dtype) == ("TCZYX", twelve.shape, np.dtype("uint16"))
    assert m.metadata["bit_depth"] == [12, 12]
    np.testing.assert_array_equal(m[...], twelve)
    assert m[0, 0, 0, 0, :3].tolist() == [4095, 257, 1]
    assert m.voxel_size == pytest.approx({"Z": 2.0, "Y": 0.5, "X": 0.25})
    assert m.frame_rate == pytest.approx(10.0)

    stack = io.read(path, series="stack 8bit")
    assert (stack.axes, stack.dtype) == ("ZYX", np.dtype("uint8"))
    np.testing.assert_array_equal(stack[...], lif_images["stack 8bit"][0][0, 0])

    fast = io.read(path, series=2)
    assert fast.axes == "TYX" and fast.metadata["bit_depth"] == [16]
    np.testing.assert_array_equal(fast[...], lif_images["fast 16bit"][0][:, 0, 0])


def test_lif_matches_readlif_planes(make_lif, lif_images):
    """readlif's own plane reader (an independent decoder) agrees with the memory map."""
    path = make_lif(lif_images)
    m = io.read(path, channel=1)
    img = LifFile(str(path)).get_image(0)
    for t, z in [(0, 0), (3, 2), (1, 1)]:
        plane = np.asarray(img.get_frame(z=z, t=t, c=1))
        np.testing.assert_array_equal(m[t, z], plane)


def test_lif_errors(make_lif, lif_images, tmp_path):
    path = make_lif(lif_images)
    with pytest.raises(InputError, match="no series 'nope'"):
        io.read(path, series="nope")
    with pytest.raises(InputError, match="--series 7 does not exist"):
        io.read(path, series=7)
    cut = tmp_path / "cut.lif"
    cut.write_bytes(path.read_bytes()[:-500])
    with pytest.raises(InputError, match="truncated"):
        io.read(cut, series=2)
    junk = tmp_path / "junk.lif"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(InputError, match="not a readable LIF"):
        io.read(junk)
