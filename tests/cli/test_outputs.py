"""Commands with several outputs check them all before any work, and never mix them up."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import tifffile

from cascope.cli import main


def _run(args: list[str], monkeypatch, capsys) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["cascope", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


@pytest.fixture
def movie(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.poisson(100, (30, 24, 24)).astype(np.uint16)
    data[10:13, 8:12, 8:12] += 400  # one bright event
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, data, metadata={"axes": "TYX"}, photometric="minisblack")
    return path


@pytest.fixture
def stack(tmp_path):
    vol = np.zeros((8, 24, 24), np.uint16)
    vol[2:6, 10:14, 2:22] = 1000
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, vol, metadata={"axes": "ZYX"}, photometric="minisblack")
    return path


def test_detect_refuses_outputs_that_clash_or_cannot_be_written(movie, monkeypatch, capsys):
    folder = movie.parent
    cases = [
        (["-o", str(folder / "ev.tif")], "a table is written as .csv or .parquet"),
        (["-o", str(folder / "ev.csv"), "--labels-out", str(folder / "ev.csv")], "named by both"),
        (
            ["-o", str(folder / "ev.csv"), "--labels-out", str(folder / "lab.foo")],
            "unknown file type",
        ),
    ]
    for extra, message in cases:
        code, err = _run(["detect", str(movie), *extra, "--force"], monkeypatch, capsys)
        assert code == 1 and message in err, err
        assert sorted(p.name for p in folder.iterdir()) == ["movie.tif"]  # nothing was written
    code, err = _run(["detect", str(movie), "-o", str(folder / "ev.csv")], monkeypatch, capsys)
    assert code == 0, err


def test_label_checks_every_output_first(stack, monkeypatch, capsys):
    folder = stack.parent
    base = ["label", str(stack), "-o", str(folder / "lab.tif"), "--min-size", "5"]
    for extra, message in (
        (["--stats", str(folder / "stats.xyz")], "a table is written as .csv or .parquet"),
        (["--edges", str(folder / "lab.tif")], "named by both --output and --edges"),
        (["--stats", str(stack), "--force"], "overwrite the input"),
    ):
        code, err = _run([*base, *extra], monkeypatch, capsys)
        assert code == 1 and message in err, err
        assert sorted(p.name for p in folder.iterdir()) == ["stack.tif"]
    code, err = _run([*base, "--stats", str(folder / "stats.csv")], monkeypatch, capsys)
    assert code == 0, err
    assert tifffile.imread(folder / "lab.tif").max() == 1 and (folder / "stats.csv").exists()
