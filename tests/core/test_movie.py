import numpy as np
import pytest

from cascope.errors import InputError
from cascope.io import Movie, as_movie, check_finite, validate_axes


def test_movie_reads_only_the_requested_slice(tmp_path):
    path = tmp_path / "m.dat"
    mm = np.memmap(path, dtype=np.uint16, mode="w+", shape=(50, 16, 8))
    mm[:] = np.arange(50, dtype=np.uint16)[:, None, None]
    mm.flush()
    movie = Movie(np.memmap(path, dtype=np.uint16, mode="r", shape=(50, 16, 8)), axes="tyx")
    assert movie.axes == "TYX"
    assert movie.n_frames == 50
    assert movie.nbytes == 50 * 16 * 8 * 2
    frame = movie[7]
    assert isinstance(frame, np.ndarray) and not isinstance(frame, np.memmap)
    assert frame.shape == (16, 8) and (frame == 7).all()


@pytest.mark.parametrize(("size", "halo"), [(1, 0), (7, 0), (7, 3), (50, 2), (64, 5)])
def test_iter_blocks_covers_each_frame_once_and_halo_matches(size, halo):
    data = np.arange(50 * 4 * 3).reshape(50, 4, 3)
    movie = Movie(data, axes="TYX")
    owned_frames = []
    for owned, inner, block in movie.iter_blocks(size, halo=halo):
        np.testing.assert_array_equal(block[inner], data[owned])
        lo = owned.start - inner.start
        np.testing.assert_array_equal(block, data[lo : lo + block.shape[0]])
        assert block.shape[0] <= size + 2 * halo
        owned_frames.extend(range(owned.start, owned.stop))
    assert owned_frames == list(range(50))


def test_iter_blocks_along_z():
    data = np.arange(6 * 2 * 5 * 5).reshape(6, 2, 5, 5)
    movie = Movie(data, axes="TZYX")
    blocks = list(movie.iter_blocks(1, axis="Z"))
    assert len(blocks) == 2
    np.testing.assert_array_equal(blocks[1][2], data[:, 1:2])


@pytest.mark.parametrize(
    ("axes", "ndim", "message"),
    [("TYQ", 3, "unknown"), ("TYY", 3, "repeats"), ("TYX", 4, "data has 4"), ("TZY", 3, "Y and X")],
)
def test_bad_axes_are_named(axes, ndim, message):
    with pytest.raises(InputError, match=message):
        validate_axes(axes, ndim, path="rec.tif")


def test_as_movie_needs_axes_for_bare_arrays():
    with pytest.raises(InputError, match="axes"):
        as_movie(np.zeros((2, 3, 3)))
    movie = as_movie(np.zeros((2, 3, 3)), axes="TYX")
    assert as_movie(movie) is movie
    with pytest.raises(InputError, match="expected axes"):
        as_movie(movie, axes="ZYX")


def test_missing_axis_error():
    with pytest.raises(InputError, match="no 'Z' axis"):
        Movie(np.zeros((2, 3, 3)), axes="TYX").axis("Z")


def test_check_finite_counts_nan():
    block = np.ones((3, 4, 4), np.float32)
    check_finite(block)
    block[1, 2, 2] = np.nan
    block[2, 0, 0] = np.inf
    with pytest.raises(InputError, match="2 NaN"):
        check_finite(block, path="x.tif")


def test_check_finite_names_the_planes_that_hold_them():
    block = np.ones((12, 4, 4), np.float32)
    block[[1, 2, 3, 7, 9, 10], 0, 0] = np.nan
    with pytest.raises(
        InputError, match=r"6 NaN/infinite value\(s\) in T 101\.\.103, 107, 109\.\.110$"
    ):
        check_finite(block, axis="T", start=100)
    many = np.ones((12, 4, 4), np.float32)
    many[::2, 1, 1] = -np.inf
    with pytest.raises(InputError, match=r"in Z 0, 2, 4, 6 and 2 more ranges$"):
        check_finite(many, axis="Z")
