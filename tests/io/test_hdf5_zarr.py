from __future__ import annotations

import h5py
import numpy as np
import pytest

from cascope import io
from cascope.errors import InputError
from cascope.io.zarr import read_labels


def test_sima_hdf5_volume(real_data):
    path = real_data / "sima_example_volume_tzyxc.h5"
    m = io.read(path, dataset="imaging")
    assert (m.axes, m.shape, m.dtype) == ("TZYXC", (10, 3, 64, 64, 2), np.dtype("uint8"))
    assert m.voxel_size == pytest.approx({"Z": 1.0, "Y": 0.29258788, "X": 0.29386463})
    with h5py.File(path) as f:
        ref = f["imaging"][...]
    np.testing.assert_array_equal(m[4, 1], ref[4, 1])
    np.testing.assert_array_equal(io.read(path, channel=1)[...], ref[..., 1])


def test_hdf5_roundtrip(tmp_path, rng):
    data = rng.normal(size=(5, 4, 12, 10)).astype(np.float32)
    vs = {"Z": 2.0, "Y": 0.5, "X": 0.25}
    out = io.write(
        tmp_path / "r.h5",
        data,
        axes="TZYX",
        voxel_size=vs,
        frame_rate=3.0,
        dataset="movie/raw",
        compression="gzip",
    )
    m = io.read(out, dataset="movie/raw")
    assert m.axes == "TZYX" and m.voxel_size == vs and m.frame_rate == 3.0
    np.testing.assert_array_equal(m[...], data)
    with h5py.File(out) as f:
        np.testing.assert_allclose(f["movie/raw"].attrs["element_size_um"], [2.0, 0.5, 0.25])


def test_hdf5_dataset_errors_list_datasets(tmp_path):
    p = tmp_path / "two.h5"
    with h5py.File(p, "w") as f:
        f["a"] = np.zeros((3, 4, 4))
        f["b/c"] = np.zeros((3, 4, 4))
        f["six"] = np.zeros((2, 2, 2, 2, 4, 4))
    with pytest.raises(InputError, match=r"--dataset; image datasets: a, b/c"):
        io.read(p, axes="TYX")
    with pytest.raises(InputError, match=r"no dataset 'nope'.*a, b/c"):
        io.read(p, dataset="nope", axes="TYX")
    with pytest.raises(InputError, match="no axes attribute; give --axes"):
        io.read(p, dataset="six")
    assert io.read(p, dataset="a", kind="volume").axes == "ZYX"  # a plain stack: as expected
    assert io.read(p, dataset="b/c", axes="TYX").shape == (3, 4, 4)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_roundtrip_with_labels(tmp_path, rng, version):
    data = rng.integers(0, 4000, (6, 2, 3, 16, 18), dtype=np.uint16)
    labels = (data[:, 0] > 2000).astype(np.uint32) * 7
    vs = {"Z": 1.5, "Y": 0.2, "X": 0.3}
    out = io.write(
        tmp_path / "img.ome.zarr",
        data,
        axes="TCZYX",
        voxel_size=vs,
        frame_rate=8.0,
        ngff_version=version,
        labels={"events": labels},
        chunks=(4, 1, 3, 8, 8),
    )
    if version == "0.4":
        assert (out / ".zattrs").exists() and (out / "0" / ".zarray").exists()
    else:
        assert (out / "zarr.json").exists() and not (out / ".zattrs").exists()
    m = io.read(out)
    assert m.metadata["ngff_version"] == version
    assert m.axes == "TCZYX" and m.voxel_size == pytest.approx(vs)
    assert m.frame_rate == pytest.approx(8.0)
    np.testing.assert_array_equal(m[...], data)
    lab = read_labels(out)
    assert lab.axes == "TZYX" and lab.dtype == np.uint32
    np.testing.assert_array_equal(lab[...], labels)


def test_ngff_units_converted(tmp_path):
    import zarr

    p = tmp_path / "u.zarr"
    g = zarr.open_group(str(p), mode="w", zarr_format=2)
    g.create_array("0", shape=(4, 5, 6), dtype="uint8", chunks=(1, 5, 6))[:] = 1
    g.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": [
                {"name": "t", "type": "time", "unit": "millisecond"},
                {"name": "y", "type": "space", "unit": "nanometer"},
                {"name": "x", "type": "space", "unit": "nanometer"},
            ],
            "datasets": [
                {
                    "path": "0",
                    "coordinateTransformations": [{"type": "scale", "scale": [50.0, 200.0, 100.0]}],
                }
            ],
        }
    ]
    m = io.read(p)
    assert m.frame_rate == pytest.approx(20.0)
    assert m.voxel_size == pytest.approx({"Y": 0.2, "X": 0.1})


def test_plain_zarr_array_axes_are_assumed_or_given(tmp_path):
    import zarr

    p = tmp_path / "plain.zarr"
    zarr.create_array(str(p), shape=(3, 4, 5), dtype="float32", zarr_format=3)[:] = 1
    assert io.read(p).axes == "TYX" and io.read(p, kind="volume").axes == "ZYX"
    assert io.read(p, axes="ZYX").axes == "ZYX"
    one = tmp_path / "one.zarr"
    zarr.create_array(str(one), shape=(5,), dtype="float32", zarr_format=3)[:] = 1
    with pytest.raises(InputError, match="no axes metadata.*give --axes"):
        io.read(one)
