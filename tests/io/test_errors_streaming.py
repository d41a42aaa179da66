from __future__ import annotations

import h5py
import numpy as np
import pytest
import tifffile

from cascope import io
from cascope.errors import CascopeError, InputError, OutputError


def _truncate(src, dst, fraction=0.6):
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_truncated_tiff(tmp_path, rng, compression):
    full = tmp_path / "full.tif"
    tifffile.imwrite(
        full, rng.integers(0, 4000, (10, 64, 64), dtype=np.uint16), compression=compression
    )
    bad = _truncate(full, tmp_path / "bad.tif")
    with pytest.raises(InputError, match=r"bad\.tif.*truncated"):
        io.read(bad)


def test_truncated_real_tiff(tmp_path, real_data):
    bad = _truncate(real_data / "sima_example_2p_T20.tif", tmp_path / "sima_cut.tif")
    with pytest.raises(InputError, match="truncated"):
        io.read(bad)


@pytest.mark.parametrize("name", ["empty.tif", "empty.h5", "empty.lif"])
def test_empty_file(tmp_path, name):
    p = tmp_path / name
    p.touch()
    with pytest.raises(InputError, match=r"empty \(0 bytes\)") as err:
        io.read(p)
    assert err.value.path == p


def test_garbage_file_is_one_input_error(tmp_path):
    p = tmp_path / "noise.tif"
    p.write_bytes(b"this is not a tiff at all" * 10)
    with pytest.raises(InputError, match=r"noise\.tif.*not a readable TIFF"):
        io.read(p)


def test_unknown_suffix_and_missing(tmp_path):
    p = tmp_path / "movie.avi"
    p.write_bytes(b"x")
    with pytest.raises(InputError, match=r"unknown file type '\.avi'"):
        io.read(p)
    with pytest.raises(InputError, match="does not exist"):
        io.read(tmp_path / "missing.tif")
    with pytest.raises(InputError, match="unknown file type"):
        io.write(tmp_path / "out.avi", np.zeros((2, 3, 3)), axes="TYX")


@pytest.mark.parametrize(
    ("axes", "problem"), [("TYXQ", "not a valid"), ("TY", "2 dimensions"), ("TTX", "not a valid")]
)
def test_wrong_axes_string(tmp_path, axes, problem):
    p = io.write(tmp_path / "m.tif", np.zeros((2, 4, 4), np.uint8), axes="TYX")
    with pytest.raises(InputError, match=problem):
        io.read(p, axes=axes)


def test_zero_length_time_axis(tmp_path):
    p = tmp_path / "zero.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("data", shape=(0, 8, 8), dtype="uint16")
    with pytest.raises(InputError, match="T axis has length 0"):
        io.read(p, axes="TYX")
    with pytest.raises(InputError, match="nothing to write"):
        io.write(tmp_path / "z.tif", np.zeros((0, 4, 4)), axes="TYX")
    assert not (tmp_path / "z.tif").exists()


def test_existing_output_and_input_protected(tmp_path):
    data = np.arange(48, dtype=np.uint16).reshape(3, 4, 4)
    p = io.write(tmp_path / "a.tif", data, axes="TYX")
    with pytest.raises(OutputError, match="exists"):
        io.write(p, data + 1, axes="TYX")
    movie = io.read(p)
    with pytest.raises(OutputError, match="overwrite the input"):
        io.write(p, movie, force=True)
    io.write(p, data + 1, axes="TYX", force=True)
    np.testing.assert_array_equal(io.read(p)[...], data + 1)


@pytest.mark.parametrize("suffix", [".tif", ".h5", ".zarr"])
def test_failed_stream_leaves_nothing(tmp_path, suffix):
    out = tmp_path / f"out{suffix}"
    with pytest.raises(InputError, match="NaN"):
        with io.open_writer(out, (6, 8, 8), np.float32, axes="TYX") as w:
            for start in range(0, 6, 2):
                block = np.ones((2, 8, 8), np.float32)
                if start == 4:
                    block[0, 0, 0] = np.nan
                io.check_finite(block, path="input.tif", where=f" in frames {start}-{start + 2}")
                w.write(block, start)
    assert list(tmp_path.iterdir()) == []


def test_incomplete_stream_is_refused(tmp_path):
    out = tmp_path / "part.tif"
    with pytest.raises(OutputError, match="2 of 4 planes were never written"):
        with io.open_writer(out, (4, 5, 5), np.uint8, axes="TYX") as w:
            w.write(np.zeros((2, 5, 5)), 0)
    assert not out.exists()


@pytest.mark.parametrize("suffix", [".tif", ".ome.tif", ".h5", ".ome.zarr"])
def test_streamed_equals_one_shot(tmp_path, rng, suffix):
    data = rng.normal(100, 20, (11, 2, 9, 13)).astype(np.float32)
    meta = {"axes": "TZYX", "voxel_size": {"Z": 3.0, "Y": 0.5, "X": 0.5}, "frame_rate": 4.0}
    one = io.write(tmp_path / f"one{suffix}", data, **meta)
    streamed = tmp_path / f"streamed{suffix}"
    order = [6, 0, 9, 3] if suffix != ".tif" else [0, 3, 6, 9]
    with io.open_writer(streamed, data.shape, data.dtype, **meta) as w:
        for start in order:  # blocks may arrive in any order
            w.write(data[start : start + 3], start)
    a, b = io.read(one), io.read(streamed)
    np.testing.assert_array_equal(a[...], b[...])
    np.testing.assert_array_equal(b[...], data)
    assert (a.axes, a.voxel_size, a.frame_rate) == (b.axes, b.voxel_size, b.frame_rate)
    assert b.voxel_size == pytest.approx(meta["voxel_size"]) and b.frame_rate == 4.0


def test_writer_converts_floats_to_integer_output(tmp_path):
    with io.open_writer(tmp_path / "u.tif", (1, 2, 3), np.uint8, axes="TYX") as w:
        w.write(np.array([[[-5.0, 0.4, 0.6], [254.6, 300.0, 7.0]]]), 0)
    back = io.read(tmp_path / "u.tif", axes="TYX")  # ImageJ cannot say a single plane is T
    np.testing.assert_array_equal(back[...], [[[0, 0, 1], [255, 255, 7]]])


def test_write_copies_lazy_movie_in_blocks(tmp_path, real_data):
    src = io.read(real_data / "sima_example_2p_T20.tif")
    out = io.write(tmp_path / "copy.h5", src)
    copy = io.read(out)
    assert copy.axes == "TYX"
    np.testing.assert_array_equal(copy[...], src[...])


def test_errors_are_cascope_errors(tmp_path):
    p = tmp_path / "x.h5"
    p.write_bytes(b"\x89HDF garbage")
    with pytest.raises(CascopeError, match=r"x\.h5"):
        io.read(p)


def test_writer_like_a_movie_keeps_its_metadata_and_protects_it(tmp_path):
    data = np.arange(96, dtype=np.uint16).reshape(6, 4, 4)
    src = io.write(
        tmp_path / "in.tif", data, axes="TYX", frame_rate=7.5, voxel_size={"Y": 0.5, "X": 0.5}
    )
    movie = io.read(src)
    with pytest.raises(OutputError, match="overwrite the input"):
        io.open_writer_like(src, movie, force=True)
    out = tmp_path / "out.h5"
    with io.open_writer_like(out, movie, np.float32) as w:
        w.write(movie[...] / 2, 0)
    back = io.read(out)
    assert (back.shape, back.axes, back.dtype) == (data.shape, "TYX", np.float32)
    assert back.frame_rate == pytest.approx(7.5)
    assert back.voxel_size["X"] == pytest.approx(0.5)
    np.testing.assert_allclose(back[...], data / 2)
    # explicit metadata given to write() still wins over the movie's own
    again = io.write(tmp_path / "again.tif", movie, frame_rate=3.0)
    assert io.read(again).frame_rate == pytest.approx(3.0)
