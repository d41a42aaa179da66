"""Every bad input to ``cascope denoise`` exits non-zero with one line and leaves no output."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile

from cascope.cli import main


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys) -> tuple[int, str]:
    """Run the real entry point in-process; return its exit code and stderr."""
    monkeypatch.setattr(sys, "argv", ["cascope", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


def run_subprocess(args: list[str]) -> tuple[int, str]:
    """Run ``python -m cascope`` as a user would; return its exit code and stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "cascope", *args], capture_output=True, text=True, timeout=120
    )
    return proc.returncode, proc.stderr


def _movie(path: Path, frames: int = 20, dtype=np.uint16) -> Path:
    data = np.random.default_rng(0).integers(100, 200, (frames, 24, 24)).astype(dtype)
    tifffile.imwrite(path, data, metadata={"axes": "TYX"}, photometric="minisblack")
    return path


def truncated_tiff(tmp: Path) -> tuple[Path, list[str]]:
    path = _movie(tmp / "movie.tif", frames=40)
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.truncate(size // 2)
    return path, []


def empty_file(tmp: Path) -> tuple[Path, list[str]]:
    path = tmp / "movie.tif"
    path.touch()
    return path, []


def wrong_axes_letter(tmp: Path) -> tuple[Path, list[str]]:
    return _movie(tmp / "movie.tif"), ["--axes", "TYQ"]


def wrong_axes_length(tmp: Path) -> tuple[Path, list[str]]:
    return _movie(tmp / "movie.tif"), ["--axes", "TZYX"]


def nan_frames(tmp: Path) -> tuple[Path, list[str]]:
    data = np.full((80, 16, 16), 100.0, np.float32)
    data[70, 4, 4] = np.nan  # found only in a late block, after earlier blocks were written
    path = tmp / "movie.tif"
    tifffile.imwrite(path, data, metadata={"axes": "TYX"}, photometric="minisblack")
    return path, ["--block", "16"]


def zero_length_time(tmp: Path) -> tuple[Path, list[str]]:
    import h5py

    path = tmp / "movie.h5"
    with h5py.File(path, "w") as fh:
        fh.create_dataset("data", shape=(0, 16, 16), dtype="uint16")
    return path, ["--dataset", "data", "--axes", "TYX"]


def missing_file(tmp: Path) -> tuple[Path, list[str]]:
    return tmp / "nowhere.tif", []


CASES: dict[str, Callable[[Path], tuple[Path, list[str]]]] = {
    "truncated TIFF": truncated_tiff,
    "empty file": empty_file,
    "unknown axis letter": wrong_axes_letter,
    "axes of the wrong length": wrong_axes_length,
    "NaN frames": nan_frames,
    "zero-length time axis": zero_length_time,
    "missing file": missing_file,
}


@pytest.mark.parametrize("make", CASES.values(), ids=CASES.keys())
def test_bad_input_gives_one_line_and_no_output(tmp_path, make):
    inp, extra = make(tmp_path)
    out = tmp_path / "out" / "denoised.tif"
    code, err = run_subprocess(["denoise", str(inp), "-o", str(out), *extra])
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "error" in lines[0].lower() and inp.name in lines[0]
    assert not out.exists()
    leftovers = list(out.parent.iterdir()) if out.parent.exists() else []
    assert leftovers == []


def test_output_equal_to_input_is_refused(tmp_path, monkeypatch, capsys):
    inp = _movie(tmp_path / "movie.tif")
    before = inp.read_bytes()
    for extra in ([], ["--force"]):
        code, err = run_cli(["denoise", str(inp), "-o", str(inp), *extra], monkeypatch, capsys)
        assert code != 0
        assert len(err.strip().splitlines()) == 1 and "input" in err
    assert inp.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["movie.tif"]


def test_existing_output_needs_force(tmp_path, monkeypatch, capsys):
    inp = _movie(tmp_path / "movie.tif")
    out = tmp_path / "den.tif"
    out.write_bytes(b"keep me")
    code, err = run_cli(["denoise", str(inp), "-o", str(out)], monkeypatch, capsys)
    assert code != 0 and "--force" in err and out.read_bytes() == b"keep me"
    code, _ = run_cli(["denoise", str(inp), "-o", str(out), "--force"], monkeypatch, capsys)
    assert code == 0
    assert tifffile.imread(out).shape == (20, 24, 24)


def test_good_input_is_denoised_to_float32_or_in_its_dtype(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(3)
    clean = np.full((30, 32, 32), 500.0)
    noisy = rng.poisson(clean).astype(np.uint16)
    inp = tmp_path / "movie.tif"
    tifffile.imwrite(inp, noisy, metadata={"axes": "TYX"}, photometric="minisblack")
    out = tmp_path / "den.tif"
    args = ["denoise", str(inp), "-o", str(out), "--method", "median", "--block", "7"]
    code, err = run_cli(args, monkeypatch, capsys)
    assert code == 0, err
    as_float = tifffile.imread(out)
    assert as_float.dtype == np.float32 and as_float.shape == noisy.shape
    assert np.abs(as_float - clean).mean() < 0.6 * np.abs(noisy - clean).mean()
    out = tmp_path / "den_uint16.tif"
    code, err = run_cli([*args[:3], str(out), *args[4:], "--dtype", "same"], monkeypatch, capsys)
    assert code == 0, err
    result = tifffile.imread(out)
    assert result.dtype == np.uint16 and result.shape == noisy.shape
    np.testing.assert_array_equal(result, np.clip(np.rint(as_float), 0, 65535))


def test_a_refused_option_value_gives_one_line_and_no_output(tmp_path, monkeypatch, capsys):
    inp = _movie(tmp_path / "movie.tif")
    out = tmp_path / "results"
    code, err = run_cli(
        ["run", str(inp), "-o", str(out), "--denoise", "gaussian", "--dtype", "int8"],
        monkeypatch,
        capsys,
    )
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "dtype" in err and "'int8'" in err and "Traceback" not in err
    assert not out.exists()


def test_an_output_the_system_refuses_gives_one_line(tmp_path, monkeypatch, capsys):
    inp = _movie(tmp_path / "movie.tif")
    (tmp_path / "a_file").write_text("not a folder")
    out = tmp_path / "a_file" / "den.tif"  # a path through a file
    code, err = run_cli(["denoise", str(inp), "-o", str(out)], monkeypatch, capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "a_file" in err and "Traceback" not in err
    code, err = run_cli(
        ["run", "-c", str(tmp_path / "none.yaml"), str(inp), "-o", str(tmp_path / "r")],
        monkeypatch,
        capsys,
    )
    assert code == 1 and "none.yaml: No such file or directory" in err


@pytest.mark.parametrize("device", ["meta", "gpu0", "CPU"])
def test_an_unknown_device_is_refused_before_any_work(tmp_path, monkeypatch, capsys, device):
    inp = _movie(tmp_path / "movie.tif")
    out = tmp_path / "den.tif"
    args = ["denoise", str(inp), "-o", str(out), "--method", "n2v", "--steps", "2"]
    code, err = run_cli(
        [*args, "--patch", "4", "16", "16", "--device", device], monkeypatch, capsys
    )
    assert code == 1 and f"--device {device}: use auto, cpu or cuda" in err
    assert not out.exists()


def _model_folder(tmp: Path, monkeypatch, capsys) -> Path:
    inp = _movie(tmp / "train.tif")
    model = tmp / "model"
    args = ["train", "denoiser", str(inp), "-m", "n2v", "-o", str(model), "--steps", "2"]
    code, err = run_cli([*args, "--patch", "4", "16", "16", "--device", "cpu"], monkeypatch, capsys)
    assert code == 0, err
    return model


def _float_movie(path: Path, data: np.ndarray) -> Path:
    tifffile.imwrite(path, data, metadata={"axes": "TYX"}, photometric="minisblack")
    return path


def test_refused_values_and_files_give_one_line(tmp_path, monkeypatch, capsys):
    """Each case: the command, and the words its one-line error must hold (no traceback)."""
    inp = _movie(tmp_path / "movie.tif")
    model = _model_folder(tmp_path, monkeypatch, capsys)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.yaml").write_text((model / "model.yaml").read_text())
    (broken / "weights.safetensors").write_bytes(b"not a tensor file")
    one_frame = _float_movie(tmp_path / "one.tif", np.ones((1, 16, 16), np.float32))
    nan_frame = np.random.default_rng(1).normal(100, 5, (6, 16, 16)).astype(np.float32)
    nan_frame[4, 2, 2] = np.nan
    nan_movie = _float_movie(tmp_path / "nan.tif", nan_frame)
    flat = _float_movie(tmp_path / "flat.tif", np.full((6, 16, 16), 5.0, np.float32))
    complex_movie = tmp_path / "complex.tif"
    tifffile.imwrite(complex_movie, np.ones((4, 8, 8), np.complex64))
    (tmp_path / "bad.yaml").write_text("input: [unclosed\n")
    background_subtracted = tifffile.imread(inp).astype(np.float32) - 1000  # all below zero
    negative = _float_movie(tmp_path / "negative.tif", background_subtracted)
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((16, 16, 3), np.uint8), photometric="rgb")
    out = tmp_path / "out.tif"
    train = ["train", "denoiser", str(inp), "-o", str(tmp_path / "m2"), "--steps", "2"]
    cases = [
        (["denoise", str(inp), "-o", str(out), "-m", "n2v", "--patch", "0", "16", "16"], "patch.0"),
        (
            ["denoise", str(inp), "-o", str(out), "--model", str(model), "--tile", "4", "-8", "8"],
            "tile.1",
        ),
        (
            [*train[:2], str(one_frame), *train[3:], "-m", "deepcad", "--patch", "4", "16", "16"],
            "at least 2",
        ),
        (
            [*train, "-m", "deepcad", "--patch", "4", "16", "16", "--lr", "1e6"],
            "lower the learning rate",
        ),
        (["denoise", str(inp), "-o", str(out), "--model", str(broken)], "corrupt or truncated"),
        (
            ["denoise", str(inp), "-o", str(out), "--model", str(model), "-m", "median"],
            "one of them",
        ),
        (["run", "-c", str(tmp_path / "bad.yaml"), "-o", str(tmp_path / "r")], "is not valid YAML"),
        (["evaluate", "denoise", str(flat), "-r", str(flat)], "positive data range"),
        (["evaluate", "denoise", str(nan_movie), "-r", str(flat)], "NaN/infinite"),
        (["detect", str(inp), "-o", str(tmp_path / "e.csv"), "--frame-rate", "0"], "--frame-rate"),
        (["detect", str(inp), "-o", str(tmp_path / "e.csv"), "--threshold", "nan"], "finite"),
        (["qc", str(nan_movie)], "NaN/infinite value(s) in T 4"),
        (
            ["preprocess", str(nan_movie), "-o", str(out), "--axes", "ZYX"],
            "nan.tif: contains 1 NaN/infinite value(s) in Z 4",
        ),
        (["qc", str(complex_movie), "--axes", "TYX"], "not intensities"),
        (["qc", str(inp), "--channel", "5"], "the recording has one channel"),
        (["info", str(inp), "--dataset", "raw"], "for HDF5 and Zarr files only"),
        (["denoise", str(rgb), "-o", str(out), "-m", "gaussian"], "needs one channel picked"),
        (["detect", str(negative), "-o", str(tmp_path / "e.csv")], "needs positive intensities"),
        (["denoise", str(inp), "-o", str(out), "-m", "median", "--axes", "YXT"], "must be Y and X"),
    ]
    for args, words in cases:
        code, err = run_cli(args, monkeypatch, capsys)
        assert code == 1, (args, err)
        assert words in err and len(err.strip().splitlines()) == 1, (args, err)
    assert not out.exists() and not (tmp_path / "e.csv").exists()


def test_resuming_with_another_network_names_the_checkpoint(tmp_path, monkeypatch, capsys):
    inp = _movie(tmp_path / "movie.tif")
    model = tmp_path / "model"
    base = ["train", "denoiser", str(inp), "-o", str(model), "--steps", "2"]
    base += ["--patch", "4", "16", "16", "--device", "cpu"]
    code, err = run_cli([*base, "-m", "n2v"], monkeypatch, capsys)
    assert code == 0, err
    code, err = run_cli([*base, "-m", "deepcad", "--resume", "--force"], monkeypatch, capsys)
    assert code == 1 and "written by a different network" in err and "last.pt" in err, err


def test_a_config_without_input_runs_on_the_movie_given(tmp_path, monkeypatch, capsys):
    inp = _movie(tmp_path / "movie.tif")
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text("qc: false\ndenoise:\n  method: gaussian\nevents: null\n")
    out = tmp_path / "results"
    code, err = run_cli(["run", str(inp), "-c", str(cfg), "-o", str(out)], monkeypatch, capsys)
    assert code == 0, err
    assert tifffile.imread(out / "denoised.tif").shape == (20, 24, 24)


def test_dataset_reaches_networks_and_detection(tmp_path, monkeypatch, capsys):
    import h5py

    rng = np.random.default_rng(2)
    movie = rng.poisson(100, (12, 16, 16)).astype(np.uint16)
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as fh:  # two datasets: the choice must be made, and be honoured
        fh.create_dataset("raw", data=movie)
        fh.create_dataset("other", data=np.zeros((3, 4, 4), np.uint16))
    where = ["--dataset", "raw", "--axes", "TYX"]
    small = ["--steps", "2", "--patch", "4", "16", "16", "--device", "cpu"]
    model = tmp_path / "model"
    commands = [
        ["train", "denoiser", str(path), "-m", "n2v", "-o", str(model), *small, *where],
        ["denoise", str(path), "-o", str(tmp_path / "a.tif"), "-m", "n2v", *small, *where],
        ["denoise", str(path), "-o", str(tmp_path / "b.tif"), "--model", str(model), *where],
        ["detect", str(path), "-o", str(tmp_path / "e.csv"), *where],
    ]
    for args in commands:
        code, err = run_cli(args, monkeypatch, capsys)
        assert code == 0, (args, err)
    for name in ("a.tif", "b.tif"):
        assert tifffile.imread(tmp_path / name).shape == movie.shape
    # without --dataset the file is ambiguous
    ambiguous = ["denoise", str(path), "-o", str(tmp_path / "c.tif"), "--model", str(model)]
    code, err = run_cli([*ambiguous, "--axes", "TYX"], monkeypatch, capsys)
    assert code == 1 and "choose a dataset" in err and "raw" in err, err
