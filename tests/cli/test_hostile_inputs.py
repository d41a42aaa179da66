"""Hostile and damaged input files: every reading command refuses them with one line."""

from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from tests.cli.test_bad_inputs import run_cli


def bomb_tiff(tmp: Path, side: int = 40000) -> Path:
    """One zlib strip declaring side x side uint8 from a few KB of data."""
    data = zlib.compress(bytes(1 << 22), 9)
    tags = [
        (256, 4, side),
        (257, 4, side),
        (258, 3, 8),
        (259, 3, 8),
        (262, 3, 1),
        (273, 4, 0),
        (277, 3, 1),
        (278, 4, side),
        (279, 4, len(data)),
    ]
    ifd_off = 8
    data_off = ifd_off + 2 + 12 * len(tags) + 4
    body = struct.pack("<H", len(tags))
    for tag, typ, val in tags:
        if tag == 273:
            val = data_off
        fmt = "<HHIHH" if typ == 3 else "<HHII"
        body += (
            struct.pack(fmt, tag, typ, 1, val, 0)
            if typ == 3
            else struct.pack(fmt, tag, typ, 1, val)
        )
    p = tmp / "bomb.tif"
    p.write_bytes(b"II*\x00" + struct.pack("<I", ifd_off) + body + b"\0\0\0\0" + data)
    return p


def huge_zarr(tmp: Path) -> Path:
    import zarr

    p = tmp / "huge.zarr"
    a = zarr.create_array(
        str(p),
        shape=(10**9, 16, 16),
        chunks=(10, 16, 16),
        dtype="uint16",
        dimension_names=["t", "y", "x"],
        zarr_format=3,
    )
    a[:10] = 1
    return p


def missing_chunk_zarr(tmp: Path) -> Path:
    import zarr

    p = tmp / "miss.zarr"
    a = zarr.create_array(
        str(p),
        shape=(40, 16, 16),
        chunks=(10, 16, 16),
        dtype="uint16",
        dimension_names=["t", "y", "x"],
        zarr_format=3,
    )
    a[:] = 5
    (p / "c" / "2" / "0" / "0").unlink()
    return p


def garbage_chunk_zarr(tmp: Path) -> Path:
    p = missing_chunk_zarr(tmp)
    (p / "c" / "2" / "0" / "0").write_bytes(os.urandom(300))
    return p


def huge_h5(tmp: Path) -> Path:
    import h5py

    p = tmp / "huge.h5"
    with h5py.File(p, "w") as f:
        d = f.create_dataset("movie", shape=(10**9, 16, 16), chunks=(10, 16, 16), dtype="u2")
        d.attrs["axes"] = "TYX"
        d[:10] = 1
    return p


def symlink_loop(tmp: Path) -> Path:
    p = tmp / "loop.tif"
    p.symlink_to(p)
    return p


def _stack(path: Path, data) -> Path:
    import tifffile

    tifffile.imwrite(path, data, photometric="minisblack", metadata={"axes": "TYX"})
    return path


def truncated_tiff(tmp: Path) -> Path:
    import numpy as np

    path = _stack(tmp / "cut.tif", np.arange(40 * 24 * 24, dtype=np.uint16).reshape(40, 24, 24))
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size // 2)
    return path


def empty_tiff(tmp: Path) -> Path:
    path = tmp / "empty.tif"
    path.touch()
    return path


def junk_tiff(tmp: Path) -> Path:
    path = tmp / "junk.tif"
    path.write_bytes(os.urandom(5000))
    return path


def nan_plane(tmp: Path) -> Path:
    import numpy as np

    data = np.random.default_rng(0).normal(100, 5, (12, 24, 24)).astype(np.float32)
    data[9, 3, 3] = np.nan
    return _stack(tmp / "nan.tif", data)


def one_plane(tmp: Path) -> Path:
    import numpy as np
    import tifffile

    path = tmp / "plane.tif"  # 2-D: neither a movie nor a volume
    tifffile.imwrite(path, np.ones((24, 24), np.uint16), metadata={"axes": "YX"})
    return path


def fifo(tmp: Path) -> Path:
    path = tmp / "pipe.tif"
    os.mkfifo(path)
    return path


CASES = {
    "truncated": (truncated_tiff, "truncated|corrupt|cannot be read|not a valid"),
    "empty": (empty_tiff, "empty"),
    "junk": (junk_tiff, "not a TIFF|corrupt|cannot be read|not a valid"),
    "nan_plane": (nan_plane, "NaN"),
    "wrong_dims": (one_plane, "axes|dimension|plane|frames"),
    "garbage_chunk": (garbage_chunk_zarr, "chunk \\(2, 0, 0\\)"),
    "bomb": (bomb_tiff, "decompression bomb|memory"),
    "huge_zarr": (huge_zarr, "declares shape"),
    "huge_h5": (huge_h5, "declares shape"),
    "missing_chunk": (missing_chunk_zarr, "first missing: chunk \\(2, 0, 0\\)"),
    "symlink_loop": (symlink_loop, "loops"),
    "fifo": (fifo, "FIFO"),
}
_VOLUME = ["--axes", "ZYX"]
_TINY = ["--steps", "2", "--patch", "4", "16", "16", "--device", "cpu"]

#: Every command that reads a recording: how it is called on input ``p`` with output ``o``.
COMMANDS = {
    "info": lambda p, o: ["info", str(p)],
    "qc": lambda p, o: ["qc", str(p)],
    "denoise": lambda p, o: ["denoise", str(p), "-m", "gaussian", "-o", str(o)],
    "detect": lambda p, o: ["detect", str(p), "-o", str(o.with_suffix(".csv"))],
    "preprocess": lambda p, o: ["preprocess", str(p), "-o", str(o), *_VOLUME],
    "label": lambda p, o: ["label", str(p), "-o", str(o), *_VOLUME],
    "measure": lambda p, o: [
        "measure",
        str(p),
        "--labels",
        str(_labels(o)),
        "-o",
        str(o.with_suffix(".csv")),
        *_VOLUME,
    ],
    "evaluate": lambda p, o: ["evaluate", "denoise", str(p), "-r", str(_labels(o))],
    "train-denoiser": lambda p, o: [
        "train",
        "denoiser",
        str(p),
        "-m",
        "n2v",
        "-o",
        str(o.with_suffix("")),
        *_TINY,
    ],
    "run": lambda p, o: ["run", str(p), "-o", str(o.with_suffix("")), "--denoise", "gaussian"],
    "semantic": lambda p, o: ["semantic", str(p), "-o", str(o), *_VOLUME],
    # the model is opened after INPUT is read: a bad INPUT is refused before it is needed
    "segment": lambda p, o: (
        ["segment", str(p), "--model", str(o.parent / "m"), "-o", str(o)] + _VOLUME
    ),
    # the movie is its own label movie here: whichever is read first, the file is named
    "features": lambda p, o: ["features", str(p), str(p), "-o", str(o.with_suffix(".csv"))],
    "evaluate-segmentation": lambda p, o: (
        ["evaluate", "segmentation", str(p), "-r", str(_labels(o))] + _VOLUME
    ),
    "train-segmenter": lambda p, o: [
        *("train", "segmenter", str(p), "--labels", str(_labels(o)), "-o", str(o.with_suffix(""))),
        *("--steps", "2", "--patch", "4", "16", "16", "--device", "cpu", *_VOLUME),
    ],
    "train-events": lambda p, o: [
        *("train", "events", str(p), "--labels", str(_labels(o)), "-o", str(o.with_suffix(""))),
        *("--steps", "2", "--window", "4", "16", "16", "--base", "4", "--depth", "2"),
        *("--device", "cpu"),
    ],
    "benchmark": lambda p, o: [
        *("benchmark", "denoise", str(p), "-m", "gaussian", "--crop", "40", "64", "64"),
        *("--json", str(o.with_suffix(".json"))),
    ],
}

# ``info`` reads headers only: a NaN value or a damaged chunk in the data is not its business
_SUCCEEDS = {("nan_plane", "info"), ("garbage_chunk", "info")}
# one plane is an image these take (a 2-D N2V network trains on it); the others need a stack
_SUCCEEDS |= {("wrong_dims", c) for c in ("info", "qc", "denoise", "train-denoiser")}


def _labels(out: Path) -> Path:
    """A valid companion file (labels, or a reference) beside the output folder."""
    import numpy as np
    import tifffile

    path = out.parent.parent / "companion.tif"
    if not path.exists():
        tifffile.imwrite(path, np.ones((12, 24, 24), np.uint16), metadata={"axes": "ZYX"})
    return path


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_input_one_line(case, command, tmp_path, monkeypatch, capsys, request):
    make, pattern = CASES[case]
    path = make(tmp_path)
    out = tmp_path / "out" / "result.tif"
    out.parent.mkdir()
    code, err = run_cli(COMMANDS[command](path, out), monkeypatch, capsys)
    if (case, command) in _SUCCEEDS:
        assert code == 0, err
        return
    lines = err.strip().splitlines()
    assert code == 1, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(path) in lines[0]
    import re

    if command == "features":  # the file is its own label movie: a float one is refused as such
        pattern += "|labels must be integers"
    assert re.search(pattern, lines[0]), lines[0]
    assert list(out.parent.iterdir()) == []


def test_garbage_chunk_names_the_chunk(tmp_path, monkeypatch, capsys):
    path = garbage_chunk_zarr(tmp_path)
    code, err = run_cli(["qc", str(path)], monkeypatch, capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "chunk (2, 0, 0)" in err and str(path) in err


def _cascope(args: list[str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cascope", *args], capture_output=True, text=True, **kw
    )


def test_fifo_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "pipe.tif"
    os.mkfifo(fifo)
    proc = _cascope(["qc", str(fifo)], timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert str(fifo) in lines[0] and "FIFO" in lines[0]


def test_bomb_refused_under_a_memory_cap(tmp_path):
    bomb = bomb_tiff(tmp_path)

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    proc = _cascope(["qc", str(bomb)], timeout=60, preexec_fn=cap)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "MemoryError" not in proc.stderr and str(bomb) in lines[0]


def test_huge_zarr_denoise_refused_under_a_memory_cap(tmp_path):
    src = huge_zarr(tmp_path)
    out = tmp_path / "out.tif"

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    proc = _cascope(
        ["denoise", str(src), "-m", "gaussian", "-o", str(out)], timeout=60, preexec_fn=cap
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert str(src) in lines[0] and "declares shape" in lines[0]
    assert not out.exists()
