"""``cascope export --format onnx|torchscript``: the bare network, as the model folder runs it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tests.cli.test_bad_inputs import run_cli

FOLDER = Path(__file__).parent / "frozen" / "format1" / "deepcad"


def _network_output(x: np.ndarray) -> np.ndarray:
    from cascope.models import load_model

    net, _ = load_model(FOLDER)
    with torch.inference_mode():
        return net(torch.from_numpy(x)).numpy()


def test_torchscript_export_reproduces_the_network(tmp_path, monkeypatch, capsys):
    out = tmp_path / "net.pt"
    code, err = run_cli(
        ["export", str(FOLDER), "-o", str(out), "--format", "torchscript"], monkeypatch, capsys
    )
    assert code == 0, err
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 24, 16)).astype(np.float32)
    scripted = torch.jit.load(str(out))
    with torch.inference_mode():
        got = scripted(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, _network_output(x), rtol=1e-5, atol=1e-6)


def test_onnx_export_reproduces_the_network(tmp_path, monkeypatch, capsys):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    out = tmp_path / "net.onnx"
    code, err = run_cli(
        ["export", str(FOLDER), "-o", str(out), "--format", "onnx"], monkeypatch, capsys
    )
    assert code == 0, err
    x = np.random.default_rng(1).standard_normal((1, 1, 6, 20, 12)).astype(np.float32)
    got = ort.InferenceSession(str(out)).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, _network_output(x), rtol=1e-4, atol=1e-5)


def test_export_refuses_unknown_format_and_existing_output(tmp_path, monkeypatch, capsys):
    code, err = run_cli(
        ["export", str(FOLDER), "-o", str(tmp_path / "m.zip"), "--format", "h5"],
        monkeypatch,
        capsys,
    )
    assert code == 1 and "--format 'h5'" in err and len(err.strip().splitlines()) == 1
    existing = tmp_path / "net.pt"
    existing.write_bytes(b"keep")
    code, err = run_cli(
        ["export", str(FOLDER), "-o", str(existing), "--format", "torchscript"], monkeypatch, capsys
    )
    assert code == 1 and existing.read_bytes() == b"keep"
