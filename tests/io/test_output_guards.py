"""A full disk under an HDF5 output is one line and nothing left; train --force never deletes
a folder of other files, and says so before training."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tifffile
from tests.cli.test_bad_inputs import run_cli

from cascope.errors import OutputError
from cascope.io import check_output


def _limit_file_size(limit: int = 100_000):
    def cap() -> None:
        # without the signal a write past the limit fails with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return cap


def _movie(path: Path) -> Path:
    data = np.random.default_rng(0).integers(100, 200, (40, 64, 64)).astype(np.uint16)
    tifffile.imwrite(path, data, metadata={"axes": "TYX"})
    return path


def test_hdf5_output_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    src = _movie(tmp_path / "in.tif")
    out = tmp_path / "out.h5"
    proc = subprocess.run(
        [sys.executable, "-m", "cascope", "denoise", str(src), "-m", "gaussian", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_file_size(),
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])  # not -11 / 139
    assert len(lines) == 1 and str(out) in lines[0] and "too large" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_every_hdf5_writer_survives_a_full_disk(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import numpy as np
        from pathlib import Path
        from cascope.errors import OutputError
        from cascope.io import MsctStream, write, write_msct_h5

        out = Path({str(tmp_path)!r})
        try:
            write(out / "a.h5", np.ones((40, 64, 64), np.float32), axes="TYX")
        except OutputError as err:
            print("refused:", err)
        stream = MsctStream(
            input=np.ones((40, 64, 64), np.float32),
            label=np.zeros((40, 64, 64), np.uint16),
            events=np.zeros((0, 7), np.int64),
        )
        try:
            write_msct_h5(out / "b.h5", {{"train": {{"s0": stream}}}})
        except OutputError as err:
            print("refused:", err)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_file_size(),
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    refused = [ln for ln in proc.stdout.splitlines() if ln.startswith("refused:")]
    assert len(refused) == 2 and "a.h5" in refused[0] and "b.h5" in refused[1]
    assert list(tmp_path.iterdir()) == []


def _folder_of_other_files(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    (folder / "model.yaml").write_text("format_version: 1\n")
    return folder


@pytest.mark.parametrize(
    "command",
    [
        ["train", "denoiser", "{movie}", "--method", "n2v", "--steps", "5000"],
        ["train", "segmenter", "{movie}", "--labels", "{movie}", "--steps", "5000"],
        ["train", "events", "{movie}", "--labels", "{movie}", "--steps", "5000"],
    ],
    ids=["denoiser", "segmenter", "events"],
)
def test_train_force_onto_a_folder_of_other_files_is_refused_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, command: list[str]
) -> None:
    movie = _movie(tmp_path / "movie.tif")
    folder = _folder_of_other_files(tmp_path)
    args = [a.replace("{movie}", str(movie)) for a in command]
    code, err = run_cli([*args, "-o", str(folder), "--force"], monkeypatch, capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert str(folder) in lines[0] and "notes.txt" in lines[0]
    assert (folder / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "project.ckpt").exists()  # no training step was taken


def test_a_model_folder_may_be_replaced_but_not_a_file(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    for name in ("model.yaml", "weights.safetensors"):
        (model / name).write_text("")
    holds = ("model.yaml", "weights.safetensors")
    assert check_output(model, force=True, holds=holds) == model.resolve()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        check_output(tmp_path / "file", force=True, holds=holds)
