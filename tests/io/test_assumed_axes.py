"""A file that does not record its axes is read as what the command expects, and says so."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
import zarr

from cascope.cli import main
from cascope.io import read, write


def _stack() -> np.ndarray:
    data = np.zeros((6, 16, 16), np.uint16)
    data[2:4, 5:11, 5:11] = 500
    return data


def _plain_tiff(tmp: Path) -> Path:
    tifffile.imwrite(tmp / "plain.tif", _stack())
    return tmp / "plain.tif"


def _plain_hdf5(tmp: Path) -> Path:
    with h5py.File(tmp / "plain.h5", "w") as f:
        f["data"] = _stack()
    return tmp / "plain.h5"


def _plain_zarr(tmp: Path) -> Path:
    zarr.save_array(str(tmp / "plain.zarr"), _stack())
    return tmp / "plain.zarr"


def _frames(tmp: Path) -> Path:
    (tmp / "frames").mkdir()
    for i, plane in enumerate(_stack()):
        tifffile.imwrite(tmp / "frames" / f"p{i}.tif", plane)
    return tmp / "frames"


PLAIN = [_plain_tiff, _plain_hdf5, _plain_zarr, _frames]


@pytest.mark.parametrize("make", PLAIN, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize(
    ("kind", "expected"), [("volume", "ZYX"), ("movie", "TYX"), (None, "TYX")]
)
def test_a_plain_stack_is_read_as_the_command_expects_and_it_says_so(
    make, kind, expected, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = make(tmp_path)
    with caplog.at_level(logging.WARNING, logger="cascope.io"):
        movie = read(path, kind=kind)
    assert movie.axes == expected and movie.shape == (6, 16, 16)
    assert movie.metadata["axes_assumed"] is True
    said = [r.getMessage() for r in caplog.records if "does not record its axes" in r.getMessage()]
    assert len(said) == 1 and path.name in said[0] and ", ".join(expected) in said[0]
    assert "--axes" in said[0]
    if kind is None:  # a command that cannot know says it guessed, and what else to give
        assert "guess" in said[0] and "--axes ZYX" in said[0]


@pytest.mark.parametrize("make", PLAIN, ids=lambda f: f.__name__.strip("_"))
def test_axes_override_the_assumption_without_a_word(
    make, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = make(tmp_path)
    with caplog.at_level(logging.WARNING, logger="cascope.io"):
        movie = read(path, axes="ZYX", kind="movie")
    assert movie.axes == "ZYX" and not movie.metadata.get("axes_assumed")
    assert not [r for r in caplog.records if "does not record" in r.getMessage()]


def test_recorded_axes_are_kept_whatever_the_command_expects(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "movie.tif", _stack(), axes="TYX")
    with caplog.at_level(logging.WARNING, logger="cascope.io"):
        assert read(path, kind="volume").axes == "TYX"
    assert not caplog.records


def _cli(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", ["cascope", *args])
    with pytest.raises(SystemExit) as info:
        main()
    return info.value.code if isinstance(info.value.code, int) else 1


def test_volume_commands_take_a_plain_stack_as_z_y_x(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = _plain_tiff(tmp_path)
    out = tmp_path / "labels.tif"
    with caplog.at_level(logging.WARNING, logger="cascope.io"):
        assert _cli(["label", str(path), "-o", str(out), "--min-size", "10"], monkeypatch) == 0
        sem = tmp_path / "sem.tif"
        assert _cli(["semantic", str(out), "-o", str(sem)], monkeypatch) == 0
    written = read(out)
    assert written.axes == "ZYX" and written.shape == (6, 16, 16) and written[...].max() == 1
    assert read(sem).axes == "ZYX"
    said = [r.getMessage() for r in caplog.records if "does not record its axes" in r.getMessage()]
    assert said and all("Z, Y, X" in s and "volume" in s for s in said)


def test_segment_accepts_a_plain_stack_before_it_opens_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _plain_tiff(tmp_path)
    model = tmp_path / "no_model"
    args = ["segment", str(path), "--model", str(model), "-o", str(tmp_path / "l.tif")]
    assert _cli(args, monkeypatch) == 1
    err = capsys.readouterr().err
    assert "Z, Y, X volume" not in err and str(model) in err  # the volume was taken


def test_qc_on_a_plain_stack_keeps_t_y_x_and_says_it_guessed(tmp_path: Path) -> None:
    import subprocess

    path = _plain_tiff(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "cascope", "qc", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "does not record its axes" in ln]
    assert len(lines) == 1 and "T, Y, X" in lines[0] and "--axes ZYX" in lines[0]
    assert "along T" in proc.stdout
