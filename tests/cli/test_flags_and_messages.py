"""Messages that reach a command-line user name its flags, and --missing-chunks is a flag."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from tests.cli.test_bad_inputs import run_cli
from tests.cli.test_hostile_inputs import COMMANDS, missing_chunk_zarr

import cascope
from cascope.errors import InputError
from cascope.io import read

SRC = Path(cascope.__file__).parent
#: ``name=`` in a message is an API keyword (``pass axes=``, ``dataset=...``); a CLI user
#: needs the flag (``--axes TYX``, ``--dataset``)
API_KEYWORD = re.compile(r"(?<![-\w])[a-z][a-z_]*=(?!=)")
#: Exceptions the CLI prints to its user as one line.
USER_ERRORS = {"CascopeError", "InputError", "OutputError", "TrainingDiverged", "BadParameter"}


def _user_messages() -> list[tuple[str, str]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
                continue
            func = node.exc.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name not in USER_ERRORS or not node.exc.args:
                continue
            text = "".join(
                sub.value
                for sub in ast.walk(node.exc.args[0])
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str)
            )
            found.append((f"{path.relative_to(SRC)}:{node.lineno}", text))
    return found


def test_no_user_error_names_an_api_keyword() -> None:
    messages = _user_messages()
    assert len(messages) > 100  # the scan sees the raise sites
    offenders = [f"{where}: {text!r}" for where, text in messages if API_KEYWORD.search(text)]
    assert offenders == []


def test_messages_about_axes_and_datasets_name_the_flags(tmp_path: Path) -> None:
    import h5py
    import numpy as np

    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        f["a"] = np.zeros((3, 4, 4))
        f["b"] = np.zeros((3, 4, 4))
        f["six"] = np.zeros((2, 2, 2, 2, 4, 4))
    with pytest.raises(InputError, match="--dataset"):
        read(path)
    with pytest.raises(InputError, match="--axes"):
        read(path, dataset="six")


def test_missing_chunks_are_an_error_unless_the_flag_says_fill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.delenv("CASCOPE_MISSING_CHUNKS", raising=False)
    store = missing_chunk_zarr(tmp_path)
    code, err = run_cli(["qc", str(store)], monkeypatch, capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "--missing-chunks fill" in err and str(store) in err
    out = tmp_path / "out.tif"
    args = ["denoise", str(store), "-m", "gaussian", "-o", str(out), "--missing-chunks", "fill"]
    code, err = run_cli(args, monkeypatch, capsys)
    assert code == 0, err
    frames = read(out)[...]
    assert (frames[20:30] < frames[:20].mean() / 2).all()  # the missing chunk came back empty
    with pytest.raises(InputError, match="first missing"):  # the flag applied to one command
        read(store)
    code, err = run_cli(["qc", str(store), "--missing-chunks", "maybe"], monkeypatch, capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "--missing-chunks" in err


#: Every command that reads a recording or volume.
READING = [
    *(name.replace("-", " ") for name in COMMANDS),
    "semantic",
    "segment",
    "features",
    "train segmenter",
    "train events",
    "evaluate segmentation",
    "benchmark denoise",
]


@pytest.mark.parametrize("command", sorted(set(READING)))
def test_every_reading_command_takes_missing_chunks(command: str) -> None:
    import typer

    from cascope.cli import app

    node = typer.main.get_command(app)
    for word in command.split():
        node = node.commands[word]  # type: ignore[attr-defined]
    if hasattr(node, "commands"):  # "evaluate" in COMMANDS is evaluate denoise
        node = node.commands["denoise"]
    flags = {opt for param in node.params for opt in getattr(param, "opts", [])}
    assert "--missing-chunks" in flags
