"""Reader, writer, sample data and the npe2 manifest."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cascope.io import read, read_labels, write
from cascope.napari._reader import get_reader
from cascope.napari._writer import write_image_with_labels, write_labels

pytestmark = pytest.mark.napari

MANIFEST = Path(__file__).resolve().parents[2] / "src" / "cascope" / "napari" / "napari.yaml"
VOXEL = {"Z": 2.0, "Y": 0.5, "X": 0.25}


def _layers(path):
    reader = get_reader(str(path))
    assert reader is not None
    return reader(str(path))


@pytest.mark.parametrize("suffix", [".tif", ".ome.tif", ".h5", ".zarr"])
def test_reader_volume_axes_scale(tmp_path, rng, suffix):
    data = rng.integers(0, 1000, (5, 12, 16), dtype=np.uint16)
    path = write(tmp_path / f"vol{suffix}", data, axes="ZYX", voxel_size=VOXEL)
    [(arr, kwargs, kind)] = _layers(path)
    assert kind == "image"
    np.testing.assert_array_equal(np.asarray(arr), data)
    assert kwargs["axis_labels"] == ["z", "y", "x"]
    assert kwargs["scale"] == pytest.approx([2.0, 0.5, 0.25])
    assert kwargs["metadata"]["cascope"]["axes"] == "ZYX"


def test_reader_movie_time_axis(tmp_path, rng):
    data = rng.integers(0, 1000, (7, 10, 11), dtype=np.uint16)
    path = write(tmp_path / "movie.tif", data, axes="TYX", frame_rate=20.0, voxel_size=VOXEL)
    [(arr, kwargs, _)] = _layers(path)
    assert np.asarray(arr).shape == (7, 10, 11)
    assert kwargs["axis_labels"] == ["t", "y", "x"]
    assert kwargs["scale"] == pytest.approx([1.0, 0.5, 0.25])
    assert kwargs["metadata"]["cascope"]["frame_rate"] == pytest.approx(20.0)


def test_reader_ome_zarr_labels_and_viewer(make_napari_viewer, tmp_path, rng):
    img = rng.integers(0, 1000, (4, 16, 16), dtype=np.uint16)
    lab = np.zeros((4, 16, 16), np.uint16)
    lab[1:3, 2:6, 2:6] = 1
    path = write(
        tmp_path / "img.ome.zarr", img, axes="ZYX", voxel_size=VOXEL, labels={"cells": lab}
    )
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="cascope")
    assert [layer.name for layer in viewer.layers] == ["img", "cells"]
    image, labels = viewer.layers
    np.testing.assert_array_equal(np.asarray(labels.data), lab)
    assert labels._type_string == "labels"
    assert tuple(image.scale) == pytest.approx((2.0, 0.5, 0.25))
    assert tuple(labels.scale) == pytest.approx((2.0, 0.5, 0.25))
    assert tuple(image.axis_labels) == ("z", "y", "x")


def test_reader_lif(real_data):
    lifs = sorted(real_data.rglob("*.lif"))
    if not lifs:
        pytest.skip("no LIF file in the real data")
    movie = read(lifs[0])
    [(arr, kwargs, _), *_] = _layers(lifs[0])
    shown = movie.axes.replace("C", "")
    assert kwargs["axis_labels"] == list(shown.lower())
    assert arr.shape == movie.shape


def test_reader_declines_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "broken.tif").write_bytes(b"not a tiff")
    assert get_reader(str(tmp_path / "notes.txt")) is None
    assert get_reader(str(tmp_path / "broken.tif")) is None
    assert get_reader([str(tmp_path / "a.tif"), str(tmp_path / "b.tif")]) is None


def test_write_labels_tiff_with_backup(tmp_path):
    lab = np.zeros((3, 8, 8), np.int64)
    lab[1, 2:5, 2:5] = 7
    meta = {"scale": [2.0, 0.5, 0.25], "metadata": {}, "axis_labels": ["z", "y", "x"]}
    out = tmp_path / "labels.tif"
    assert write_labels(str(out), lab, meta) == [str(out)]
    back = read(out)
    np.testing.assert_array_equal(back.to_numpy(), lab)
    assert back.axes == "ZYX" and back.voxel_size == pytest.approx(VOXEL)
    write_labels(str(out), lab * 0, meta)
    backups = list(tmp_path.glob("labels.bak-*.tif"))
    assert len(backups) == 1
    assert read(backups[0]).to_numpy().max() == 7
    assert read(out).to_numpy().max() == 0


def test_write_image_with_labels_ome_zarr(tmp_path, rng):
    img = rng.integers(0, 100, (3, 8, 8), dtype=np.uint16)
    lab = (img > 50).astype(np.int32)
    meta = {"scale": [2.0, 0.5, 0.25], "metadata": {}, "axis_labels": ["z", "y", "x"]}
    out = tmp_path / "out.zarr"
    write_image_with_labels(
        str(out), [(img, {**meta, "name": "img"}, "image"), (lab, {**meta, "name": "fg"}, "labels")]
    )
    np.testing.assert_array_equal(read(out).to_numpy(), img)
    np.testing.assert_array_equal(read_labels(out, "fg").to_numpy(), lab)
    assert read(out).voxel_size == pytest.approx(VOXEL)


def test_sample_data_layers():
    from cascope.napari._sample_data import axon_volume, msct_movie

    layers = axon_volume()
    assert [k for _, _, k in layers] == ["image", "labels"]
    assert layers[0][0].shape == layers[1][0].shape == (24, 96, 96)
    movie = msct_movie()
    assert movie[0][0].ndim == 3 and movie[1][2] == "labels"


def test_npe2_validate_manifest():
    from npe2 import PluginManifest

    pm = PluginManifest.from_file(MANIFEST)
    assert {c.id for c in pm.contributions.commands} >= {
        "cascope.get_reader",
        "cascope.denoise",
        "cascope.detect_events",
    }
    # every widget's python_name points at a class that exists
    commands = {c.id: c.python_name for c in pm.contributions.commands}
    for w in pm.contributions.widgets:
        module, name = commands[w.command].split(":")
        assert callable(getattr(importlib.import_module(module), name)), w.command
    result = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", str(MANIFEST)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_reader_synthesised_lif(make_lif, rng):
    planes = rng.integers(0, 4096, (3, 1, 4, 10, 12), dtype=np.uint16)  # T, C, Z, Y, X at 12 bits
    path = make_lif({"timelapse": (planes, 12)}, voxel_um=(2.0, 0.5, 0.25), dt=0.5)
    [(arr, kwargs, kind)] = _layers(path)
    assert kind == "image"
    assert kwargs["axis_labels"] == ["t", "z", "y", "x"]
    assert tuple(kwargs["scale"]) == pytest.approx((1.0, 2.0, 0.5, 0.25))  # time in frames
    assert kwargs["metadata"]["cascope"]["frame_rate"] == pytest.approx(2.0)
    np.testing.assert_array_equal(np.asarray(arr), planes[:, 0])
    assert np.asarray(arr).dtype == np.uint16
