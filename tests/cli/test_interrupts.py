"""Interrupted CLI runs leave nothing behind: SIGTERM cleans at once, SIGKILL on the next run.

Each command is started as a user would start it (``python -m cascope``), caught while its
hidden temporaries exist, and stopped; two runs onto one output: exactly one succeeds.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile


@pytest.fixture(scope="module")
def movie(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("in") / "m.tif"
    rng = np.random.default_rng(0)
    data = rng.poisson(200, (200, 96, 96)).astype(np.uint16)
    tifffile.imwrite(path, data, metadata={"axes": "TYX"}, photometric="minisblack")
    return path


@pytest.fixture(scope="module")
def long_movie(tmp_path_factory) -> Path:
    """Long enough that detection is still at work when it is stopped, on an idle fast CPU.

    Detection reads some million voxels a second and starts after the imports (about 2 s): at
    1500 frames an idle machine finished before the signal came, at 12000 it works for seconds.
    """
    path = tmp_path_factory.mktemp("in") / "long.tif"
    data = np.random.default_rng(1).poisson(200, (12000, 64, 64)).astype(np.uint16)
    tifffile.imwrite(path, data, metadata={"axes": "TYX"}, photometric="minisblack")
    return path


#: slow enough to be caught mid-way: (arguments after the input, output name, fast arguments)
COMMANDS = {
    "denoise": (["denoise", "-m", "bm4d", "--block", "4"], "d.tif", ["-m", "gaussian"]),
    "train denoiser": (
        ["train", "denoiser", "-m", "n2v", "--steps", "5000", "--patch", "4", "32", "32"],
        "model",
        None,
    ),
    "run": (["run", "--denoise", "bm4d"], "results", ["--denoise", "gaussian"]),
    "detect": (["detect", "--block", "64"], "events.csv", []),
}


def _args(command: str, movie: Path, out: Path, fast: bool = False) -> list[str]:
    slow, _, quick = COMMANDS[command]
    words = [w for w in slow if " " not in w]
    n = 2 if command == "train denoiser" else 1
    head, options = words[:n], words[n:]
    if fast:
        options = quick if quick is not None else ["-m", "n2v", "--steps", "2"]
        if command == "train denoiser":
            options = [*options, "--patch", "4", "32", "32"]
    if command == "detect":  # the label movie is streamed to disk while events are found
        options = [*options, "--labels-out", str(out.with_name("labels.tif"))]
    return [sys.executable, "-m", "cascope", *head, str(movie), "-o", str(out), *options]


def _hidden(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".")]


def _caught(folder: Path, proc: subprocess.Popen, *, temporaries: bool = True) -> bool:
    """Wait until the run has temporaries on disk; False when it finished first.

    Without ``temporaries`` (a command that writes only at its end), wait into its work.
    """
    if not temporaries:
        time.sleep(2.5)
        return proc.poll() is None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _hidden(folder):
            time.sleep(0.3)  # well inside the work, not at its first byte
            return proc.poll() is None
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_interrupted_run_leaves_nothing_after_the_next_run(
    command, sig, movie, long_movie, tmp_path
):
    movie = long_movie if command == "detect" else movie
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / COMMANDS[command][1]
    proc = subprocess.Popen(
        _args(command, movie, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        late = command == "detect"  # reads the whole movie before it writes
        caught = _caught(folder, proc, temporaries=not late)
        assert caught, "the run wrote no temporary, or ended before it was caught"
        proc.send_signal(sig)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    if sig == signal.SIGTERM:
        assert code == 143  # cleaned up like Ctrl-C
        assert list(folder.iterdir()) == []
    else:
        assert code == -signal.SIGKILL
        assert late or _hidden(folder)  # nothing could clean
    done = subprocess.run(
        _args(command, movie, out, fast=True), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    left = sorted(p.name for p in folder.iterdir())
    assert left == sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert out.name in left


def test_two_writers_of_one_output_exactly_one_succeeds(movie, tmp_path):
    out = tmp_path / "d.tif"
    cmd = _args("denoise", movie, out, fast=True)
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, err in results if code == 1)
    assert len(loser.strip().splitlines()) == 1
    assert "another cascope process" in loser or "exists already" in loser
    assert tifffile.imread(out).shape == (200, 96, 96)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.tif"]
