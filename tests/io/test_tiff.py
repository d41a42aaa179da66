from __future__ import annotations

import numpy as np
import pytest
import tifffile

from cascope import io
from cascope.errors import InputError


def test_sima_two_photon_movie(real_data):
    m = io.read(real_data / "sima_example_2p_T20.tif")
    assert (m.axes, m.shape, m.dtype) == ("TYX", (20, 128, 256), np.dtype("uint16"))
    ref = tifffile.imread(real_data / "sima_example_2p_T20.tif")
    np.testing.assert_array_equal(m[5], ref[5])
    np.testing.assert_array_equal(m[2:4, 10:20, ::3], ref[2:4, 10:20, ::3])
    assert m[...].max() <= 4095  # 12-bit data


@pytest.mark.parametrize(
    ("name", "frames", "top"),
    [("astrocast_sample_0_T100.tiff", 100, 32), ("astrocast_sample_1_T75.tiff", 75, None)],
)
def test_astrocast_calibration_offset(real_data, name, frames, top):
    path = real_data / name
    m = io.read(path, axes="TYX")
    raw = tifffile.imread(path)
    assert m.shape == (frames, 100, 100)
    assert m.metadata["calibration"]["offset"] == -32768
    assert m.metadata["layout"] == "memmap"  # lazy: nothing decoded up front
    assert m.dtype.kind == "i"  # signed, wide enough for the calibrated range
    values = m[...]
    np.testing.assert_array_equal(values, raw.astype(np.int64) - 32768)
    assert values.min() >= 0
    if top is not None:
        assert values.min() == 0 and values.max() == top
    np.testing.assert_array_equal(m[3, 5:9], raw[3, 5:9].astype(np.int64) - 32768)


def test_astrocast_file_axes_and_spacing(real_data):
    m = io.read(real_data / "astrocast_sample_1_T75.tiff")
    assert m.axes == "ZYX"  # ImageJ stored the frames as slices
    assert m.voxel_size == {"Z": 2.0, "Y": 1.0, "X": 1.0}


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("rivulet_neuron_small_zyx.tif", (29, 98, 96)),
        ("rivulet_neuron_small2_zyx.tif", (51, 76, 176)),
    ],
)
def test_rivulet_neuron_stacks(real_data, name, shape):
    v = io.read(real_data / name, axes="ZYX")
    assert (v.axes, v.shape, v.dtype) == ("ZYX", shape, np.dtype("uint8"))
    ref = tifffile.imread(real_data / name)
    np.testing.assert_array_equal(v[...], ref)
    assert v[...].max() > 0


def test_imagej_roundtrip_metadata(tmp_path, rng):
    data = rng.integers(0, 4096, (6, 3, 16, 20), dtype=np.uint16)
    out = io.write(
        tmp_path / "hs.tif",
        data,
        axes="TZYX",
        voxel_size={"Z": 2.5, "Y": 0.4, "X": 0.5},
        frame_rate=15.0,
    )
    with tifffile.TiffFile(out) as tf:
        assert tf.is_imagej and not tf.is_bigtiff
    m = io.read(out)
    assert m.axes == "TZYX" and m.metadata["layout"] == "memmap"
    np.testing.assert_array_equal(m[...], data)
    assert m.voxel_size == pytest.approx({"Z": 2.5, "Y": 0.4, "X": 0.5})
    assert m.frame_rate == pytest.approx(15.0)


@pytest.mark.parametrize("dtype", [np.int16, np.float64, np.int32])
def test_ome_roundtrip_for_types_imagej_cannot_hold(tmp_path, rng, dtype):
    data = (rng.normal(0, 100, (4, 2, 10, 12))).astype(dtype)
    out = io.write(
        tmp_path / "o.tif", data, axes="TCYX", voxel_size={"Y": 0.3, "X": 0.3}, frame_rate=2.0
    )
    with tifffile.TiffFile(out) as tf:
        assert tf.is_ome
    m = io.read(out)
    assert m.axes == "TCYX" and m.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(m[...], data)
    assert m.voxel_size == pytest.approx({"Y": 0.3, "X": 0.3})
    assert m.frame_rate == pytest.approx(2.0)


def test_ome_suffix_forces_ome(tmp_path):
    out = io.write(tmp_path / "a.ome.tif", np.ones((2, 4, 4), np.uint8), axes="TYX")
    with tifffile.TiffFile(out) as tf:
        assert tf.is_ome


def test_compressed_tiff_read_lazily(tmp_path, rng):
    data = rng.integers(0, 255, (5, 32, 32), dtype=np.uint8)
    p = tmp_path / "c.tif"
    tifffile.imwrite(p, data, compression="zlib", imagej=True, metadata={"axes": "TYX"})
    m = io.read(p)
    assert m.metadata["layout"] == "chunked"
    np.testing.assert_array_equal(m[1:3, 4], data[1:3, 4])
    np.testing.assert_array_equal(m.to_numpy(), data)


def test_bigtiff_read(tmp_path, rng):
    data = rng.integers(0, 100, (3, 8, 8), dtype=np.uint16)
    p = tmp_path / "b.tif"
    tifffile.imwrite(p, data, bigtiff=True, metadata={"axes": "TYX"})
    m = io.read(p)
    assert m.axes == "TYX" and m.metadata["layout"] == "memmap"
    np.testing.assert_array_equal(m[...], data)


def test_layout_chooses_bigtiff_ome_above_4gb():
    from cascope.io.tiff import tiff_layout

    big = tiff_layout((9000, 512, 512), np.float32, "TYX")
    small = tiff_layout((100, 512, 512), np.float32, "TYX")
    assert big["ome"] and big["bigtiff"]
    assert small["imagej"]


def test_folder_of_frames_natural_order(tmp_path, rng):
    frames = rng.integers(0, 1000, (12, 9, 11), dtype=np.uint16)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        tifffile.imwrite(folder / f"frame_{i}.tif", f)  # frame_10 sorts after frame_9
    (folder / "notes.txt").write_text("not a frame")
    m = io.read(folder)
    assert (m.axes, m.shape) == ("TYX", (12, 9, 11))
    np.testing.assert_array_equal(m[...], frames)
    np.testing.assert_array_equal(m[9:11, 2], frames[9:11, 2])
    np.testing.assert_array_equal(m[10], frames[10])
    np.testing.assert_array_equal(m[::-3, :, 4], frames[::-3, :, 4])
    globbed = io.read(tmp_path / "frames" / "frame_1*.tif")
    np.testing.assert_array_equal(globbed[...], frames[[1, 10, 11]])


def test_frame_sequence_mismatched_frame(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    tifffile.imwrite(folder / "a1.tif", np.zeros((4, 4), np.uint8))
    tifffile.imwrite(folder / "a2.tif", np.zeros((5, 4), np.uint8))
    m = io.read(folder)
    with pytest.raises(InputError, match="a2.tif"):
        m[...]


def test_channel_selection(tmp_path, rng):
    data = rng.integers(0, 255, (3, 2, 6, 6), dtype=np.uint8)
    p = io.write(tmp_path / "c.tif", data, axes="TCYX")
    m = io.read(p, channel=1)
    assert m.axes == "TYX"
    np.testing.assert_array_equal(m[...], data[:, 1])
