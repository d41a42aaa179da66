"""Model folders that are broken or hostile give one line and no output, never a wrong result."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml
from safetensors.torch import load_file, save_file
from tests.cli.test_bad_inputs import run_cli

from cascope.cli import main


def _tif(path: Path, data: np.ndarray, axes: str) -> Path:
    tifffile.imwrite(path, data, metadata={"axes": axes}, photometric="minisblack")
    return path


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(0)
    movie = _tif(tmp / "movie.tif", rng.normal(1000, 50, (20, 16, 16)).astype(np.uint16), "TYX")
    ev = rng.normal(100, 5, (32, 32, 32)).astype(np.float32)
    lab = np.zeros(ev.shape, np.uint8)
    lab[10:14, 10:14, 10:14] = 1
    _tif(tmp / "ev.tif", ev + 50 * lab, "TYX")
    _tif(tmp / "evlab.tif", lab, "TYX")
    mp = pytest.MonkeyPatch()
    try:
        for args in (
            ["train", "denoiser", str(movie), "-m", "n2v", "-o", str(tmp / "denoise")],
            ["train", "events", str(tmp / "ev.tif"), "--labels", str(tmp / "evlab.tif")]
            + ["-o", str(tmp / "events"), "--window", "16", "16", "16", "--base", "4"]
            + ["--depth", "2"],
        ):
            extra = ["--patch", "4", "16", "16"] if args[1] == "denoiser" else []
            mp.setattr(sys, "argv", ["cascope", *args, "--steps", "2", *extra, "--device", "cpu"])
            with pytest.raises(SystemExit) as exit_info:
                main()
            assert exit_info.value.code in (0, None)
    finally:
        mp.undo()
    return {"tmp": tmp, "movie": movie, "denoise": tmp / "denoise", "events": tmp / "events"}


def _copy(src: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    return dst


def _edit_yaml(folder: Path, edit) -> None:
    doc = yaml.safe_load((folder / "model.yaml").read_text())
    edit(doc)
    (folder / "model.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def _refused(args: list[str], out: Path, words: list[str], monkeypatch, capsys) -> None:
    code, err = run_cli(args, monkeypatch, capsys)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 1, err
    assert len(lines) == 1, err
    assert "Traceback" not in err and "weights_only" not in err
    for word in words:
        assert word in err, err
    assert not out.exists()


def _denoise(folders, model: Path, tmp_path) -> tuple[list[str], Path]:
    out = tmp_path / "out.tif"
    return ["denoise", str(folders["movie"]), "-o", str(out), "--model", str(model)], out


def test_nan_weights_are_refused_for_denoise_and_events(folders, tmp_path, monkeypatch, capsys):
    for kind in ("denoise", "events"):
        bad = _copy(folders[kind], tmp_path / f"nan_{kind}")
        state = load_file(str(bad / "weights.safetensors"))
        key = sorted(state)[0]
        state[key][...] = float("nan")
        save_file(state, str(bad / "weights.safetensors"))
        if kind == "denoise":
            args, out = _denoise(folders, bad, tmp_path)
        else:
            out = tmp_path / "events.csv"
            args = ["detect", str(folders["tmp"] / "ev.tif"), "-o", str(out), "--model", str(bad)]
        _refused(args, out, ["weights.safetensors", key, "NaN"], monkeypatch, capsys)


@pytest.mark.parametrize("std", [0.0, float("nan"), -1.0])
def test_broken_normalisation_is_refused(folders, tmp_path, std, monkeypatch, capsys):
    bad = _copy(folders["denoise"], tmp_path / "norm")
    _edit_yaml(bad, lambda d: d["normalization"]["input"].update(std=std))
    args, out = _denoise(folders, bad, tmp_path)
    _refused(args, out, ["model.yaml", "normalization.input.std"], monkeypatch, capsys)


MALFORMED = {
    "wrong type": (lambda d: d["architecture"].update(name=3), "architecture.name"),
    "negative size": (lambda d: d["architecture"]["params"].update(depth=-2), "architecture"),
    "unknown method": (lambda d: d["architecture"].update(name="resnet"), "architecture.name"),
    "missing key": (lambda d: d.pop("architecture"), "architecture"),
    "list for number": (lambda d: d.update(format_version=[1]), "format_version"),
    "string for number": (lambda d: d.update(format_version="one"), "format_version"),
    "null": (lambda d: d.update(architecture=None), "architecture"),
    "unknown key": (lambda d: d.update(colour="blue"), "colour"),
    "depth 100": (lambda d: d["architecture"]["params"].update(depth=100), "architecture"),
    "params not a mapping": (lambda d: d["architecture"].update(params=[1, 2]), "architecture"),
    "std a string": (
        lambda d: d["normalization"]["output"].update(std="wide"),
        "normalization.output.std",
    ),
    "unknown param": (lambda d: d["architecture"]["params"].update(colour=1), "architecture"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_model_yaml_gives_one_line(folders, tmp_path, case, monkeypatch, capsys):
    edit, key = MALFORMED[case]
    bad = _copy(folders["denoise"], tmp_path / "bad")
    _edit_yaml(bad, edit)
    args, out = _denoise(folders, bad, tmp_path)
    _refused(args, out, ["model.yaml", key], monkeypatch, capsys)


@pytest.mark.parametrize(
    "text", [b"- just\n- a list\n", b"\xff\xfe not utf-8", b"architecture: [unclosed\n"]
)
def test_unreadable_model_yaml_gives_one_line(folders, tmp_path, text, monkeypatch, capsys):
    bad = _copy(folders["denoise"], tmp_path / "bad")
    (bad / "model.yaml").write_bytes(text)
    args, out = _denoise(folders, bad, tmp_path)
    _refused(args, out, ["model.yaml"], monkeypatch, capsys)


def test_newer_format_version_is_refused(folders, tmp_path, monkeypatch, capsys):
    bad = _copy(folders["denoise"], tmp_path / "newer")
    _edit_yaml(bad, lambda d: d.update(format_version=999))
    args, out = _denoise(folders, bad, tmp_path)
    _refused(args, out, ["format 999", "upgrade cascope"], monkeypatch, capsys)


@pytest.mark.parametrize("change", ["missing", "renamed", "shape"])
def test_state_dict_mismatch_is_one_line(folders, tmp_path, change, monkeypatch, capsys):
    bad = _copy(folders["denoise"], tmp_path / "mismatch")
    state = load_file(str(bad / "weights.safetensors"))
    key = sorted(state)[0]
    if change == "missing":
        del state[key]
    elif change == "renamed":
        state["renamed." + key] = state.pop(key)
    else:
        state[key] = state[key].reshape(-1)[:1].clone()
    save_file(state, str(bad / "weights.safetensors"))
    args, out = _denoise(folders, bad, tmp_path)
    _refused(args, out, ["do not fit the network", key], monkeypatch, capsys)


class _Payload:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def test_hostile_pickle_never_runs(folders, tmp_path, monkeypatch, capsys):
    import torch

    bad = _copy(folders["denoise"], tmp_path / "hostile")
    (bad / "weights.safetensors").unlink()
    marker = tmp_path / "the_code_ran"
    torch.save({"x": _Payload(str(marker))}, bad / "weights.pt")
    args, out = _denoise(folders, bad, tmp_path)
    _refused(args, out, ["weights.pt", "could run code"], monkeypatch, capsys)
    assert not marker.exists()


def test_output_that_overflows_late_in_the_movie_is_refused(folders, tmp_path, monkeypatch, capsys):
    movie = np.full((40, 16, 16), 1000, np.float32)
    movie[30:] = 3e38  # finite input, but the network's output overflows for it
    path = _tif(tmp_path / "late.tif", movie, "TYX")
    out = tmp_path / "late_out.tif"
    model = _copy(folders["denoise"], tmp_path / "wide")  # restores outputs with a wide std
    _edit_yaml(model, lambda d: d["normalization"]["output"].update(std=1e5))
    args = ["denoise", str(path), "-o", str(out), "--model", str(model)]
    _refused(args, out, ["not finite", "planes 3"], monkeypatch, capsys)
