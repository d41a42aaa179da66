"""A network whose output overflows (finite weights, NaN or infinite prediction) is refused in
one line with nothing written, on every path: probabilities turned into labels (segment), the
on-device cast to the input's integer type (denoise) and probabilities turned into events."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from safetensors.torch import load_file, save_file
from tests.cli.test_bad_inputs import run_cli

from cascope.cli import main


def _tif(path: Path, data: np.ndarray, axes: str) -> Path:
    tifffile.imwrite(path, data, metadata={"axes": axes}, photometric="minisblack")
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    from cascope.config.segment import SegmenterConfig
    from cascope.segment import train_segmenter

    tmp = tmp_path_factory.mktemp("overflow")
    rng = np.random.default_rng(0)
    movie = _tif(tmp / "movie.tif", rng.normal(1000, 50, (20, 16, 16)).astype(np.uint16), "TYX")
    ev = rng.normal(100, 5, (32, 32, 32)).astype(np.float32)
    lab = np.zeros(ev.shape, np.uint8)
    lab[10:14, 10:14, 10:14] = 1
    _tif(tmp / "ev.tif", ev + 50 * lab, "TYX")
    _tif(tmp / "evlab.tif", lab, "TYX")
    vol = rng.normal(100, 5, (8, 32, 32)).astype(np.float32)
    sem = np.zeros(vol.shape, np.uint8)
    sem[:, 10:14, 10:20] = 1
    _tif(tmp / "vol.tif", vol + 50 * sem, "ZYX")
    cfg = SegmenterConfig.model_validate(
        {"arch": "unet", "depth": 2, "base": 4, "patch": (8, 16, 16), "training": {"steps": 2}}
    )
    train_segmenter([vol + 50 * sem], [sem], config=cfg, output=tmp / "segment", device="cpu")
    mp = pytest.MonkeyPatch()
    try:
        for args in (
            ["train", "denoiser", str(movie), "-m", "n2v", "-o", str(tmp / "denoise")]
            + ["--patch", "4", "16", "16"],
            ["train", "events", str(tmp / "ev.tif"), "--labels", str(tmp / "evlab.tif")]
            + ["-o", str(tmp / "events"), "--window", "16", "16", "16", "--base", "4"]
            + ["--depth", "2"],
        ):
            mp.setattr(sys, "argv", ["cascope", *args, "--steps", "2", "--device", "cpu"])
            with pytest.raises(SystemExit) as exit_info:
                main()
            assert exit_info.value.code in (0, None)
    finally:
        mp.undo()
    return {"tmp": tmp, "movie": movie, **{k: tmp / k for k in ("denoise", "events", "segment")}}


def _overflowing(model: Path, dst: Path) -> Path:
    """Copy a model folder, its convolution weights made huge (finite, so they load)."""
    shutil.copytree(model, dst)
    state = load_file(str(dst / "weights.safetensors"))
    for key, value in state.items():
        if key.endswith("weight") and value.ndim >= 4:
            value.fill_(1e30)  # the activations overflow within two layers
    save_file(state, str(dst / "weights.safetensors"))
    return dst


@pytest.mark.parametrize("kind", ["segment", "denoise", "denoise-on-device", "events"])
def test_an_overflowing_network_is_refused_not_written(
    models, tmp_path, monkeypatch, capsys, kind
) -> None:
    bad = _overflowing(models[kind.split("-")[0]], tmp_path / f"bad_{kind}")
    tmp = models["tmp"]
    if kind == "segment":
        out = tmp_path / "labels.tif"
        args = ["segment", str(tmp / "vol.tif"), "--model", str(bad), "-o", str(out)]
    elif kind.startswith("denoise"):  # uint16 in, uint16 out: cast to integers before writing
        out = tmp_path / "out.tif"
        args = ["denoise", str(models["movie"]), "--model", str(bad), "-o", str(out)]
        if kind == "denoise-on-device":  # the cast happens on the device, as on a GPU
            args += ["--blend-on", "device"]
    else:
        out = tmp_path / "events.csv"
        args = ["detect", str(tmp / "ev.tif"), "--model", str(bad), "-o", str(out)]
    code, err = run_cli([*args, "--device", "cpu"], monkeypatch, capsys)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 1 and len(lines) == 1, err
    assert "NaN or infinite" in lines[0] and "Traceback" not in err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == [bad.name]  # no temporaries either
