from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cascope import io
from cascope.cli import app
from cascope.errors import InputError, OutputError
from cascope.io.msct_h5 import MsctStream, events_from_labels, read_msct_h5, write_msct_h5

runner = CliRunner()


def _stream(rng, n=6, h=12, w=10):
    label = np.zeros((n, h, w), np.uint16)
    label[1:3, 2:5, 3:6] = 1
    label[4:6, 7:9, 1:2] = 2
    noisy = rng.normal(0, 1, (n, h, w)).astype(np.float32) + 3 * (label > 0)
    return MsctStream.from_arrays(noisy, label, events_from_labels(label))


def test_msct_roundtrip(tmp_path, rng):
    streams = {
        "train": {"s0": _stream(rng), "s1": _stream(rng, n=4)},
        "valid": {"v0": _stream(rng)},
    }
    out = write_msct_h5(tmp_path / "msct.h5", streams)
    back = read_msct_h5(out)
    assert set(back) == {"train", "valid"} and set(back["train"]) == {"s0", "s1"}
    for split, group in streams.items():
        for sid, s in group.items():
            r = back[split][sid]
            assert r.input.dtype == np.float32 and r.label.dtype == np.uint16
            np.testing.assert_array_equal(r.input, s.input)
            np.testing.assert_array_equal(r.label, s.label)
            np.testing.assert_array_equal(r.events, s.events)
    assert back["train"]["s0"].events.tolist() == [[1, 1, 3, 2, 5, 3, 6], [2, 4, 6, 7, 9, 1, 2]]
    with pytest.raises(OutputError):
        write_msct_h5(out, streams)


def test_msct_validation(tmp_path, rng):
    good = _stream(rng)
    bad_shape = MsctStream(good.input, good.label[:, :5], good.events)
    with pytest.raises(InputError, match="label shape"):
        write_msct_h5(tmp_path / "a.h5", {"train": {"x": bad_shape}})
    bad_box = MsctStream(good.input, good.label, np.array([[1, 0, 99, 0, 1, 0, 1]]))
    with pytest.raises(InputError, match="outside"):
        write_msct_h5(tmp_path / "b.h5", {"train": {"x": bad_box}})
    with pytest.raises(InputError, match="unknown split"):
        write_msct_h5(tmp_path / "c.h5", {"test": {"x": good}})
    assert not list(tmp_path.iterdir())
    other = io.write(tmp_path / "plain.h5", np.zeros((2, 3, 3)), axes="TYX")
    with pytest.raises(InputError, match="no 'train' or 'valid'"):
        read_msct_h5(other)


def test_info_table_and_json(real_data):
    path = real_data / "sima_example_volume_tzyxc.h5"
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 0, result.output
    assert "TZYXC" in result.output and "uint8" in result.output
    assert "T=10 × Z=3 × Y=64 × X=64 × C=2" in result.output
    result = runner.invoke(
        app, ["info", str(real_data / "astrocast_sample_0_T100.tiff"), "--axes", "TYX", "--json"]
    )
    assert result.exit_code == 0, result.output
    described = json.loads(result.output)
    assert described["shape"] == {"T": 100, "Y": 100, "X": 100}
    assert described["metadata"]["calibration"]["offset"] == -32768


def test_info_frame_rate_and_error(tmp_path):
    p = io.write(
        tmp_path / "m.tif",
        np.zeros((8, 4, 4), np.uint16),
        axes="TYX",
        frame_rate=4.0,
        voxel_size={"Y": 0.5, "X": 0.5},
    )
    result = runner.invoke(app, ["info", str(p), "--json"])
    described = json.loads(result.output)
    assert described["frame_rate_hz"] == pytest.approx(4.0)
    assert described["duration_s"] == pytest.approx(2.0)
    empty = tmp_path / "e.tif"
    empty.touch()
    result = runner.invoke(app, ["info", str(empty)])
    assert result.exit_code != 0 and isinstance(result.exception, InputError)
