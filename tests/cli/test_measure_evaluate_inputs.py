"""Bad values given to ``cascope evaluate`` are refused in one line; JSON outputs are strict."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from tests.cli.test_bad_inputs import run_cli

from cascope import _json as strict_json


def _labels(path, data):
    tifffile.imwrite(path, np.asarray(data), metadata={"axes": "ZYX"}, photometric="minisblack")
    return path


@pytest.mark.parametrize(
    ("extra", "pred_data", "words"),
    [
        (["--instances", "--iou", "2"], np.ones((2, 4, 4), np.int32), "--iou"),
        (["--classes", "0"], np.ones((2, 4, 4), np.int32), "--classes"),
        (["--instances"], -np.ones((2, 4, 4), np.int32), "negative"),
    ],
)
def test_evaluate_segmentation_refuses_bad_values(
    tmp_path, monkeypatch, capsys, extra, pred_data, words
):
    pred = _labels(tmp_path / "pred.tif", pred_data)
    ref = _labels(tmp_path / "ref.tif", np.ones((2, 4, 4), np.int32))
    out = tmp_path / "scores.json"
    code, err = run_cli(
        ["evaluate", "segmentation", str(pred), "-r", str(ref), "--json", str(out), *extra],
        monkeypatch,
        capsys,
    )
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and words in err
    assert not out.exists()


def test_strict_json_writes_null_for_non_finite():
    text = strict_json.dumps({"a": float("nan"), "b": [np.float64("inf"), 1.5]})
    parsed = json.loads(text, parse_constant=lambda c: pytest.fail(c))
    assert parsed == {"a": None, "b": [None, 1.5]}


@pytest.mark.parametrize(
    "data", [-np.ones((2, 4, 4), np.int32), np.full((2, 4, 4), 10**15, np.int64)]
)
def test_measure_refuses_negative_or_huge_labels(tmp_path, monkeypatch, capsys, data):
    image = _labels(tmp_path / "image.tif", np.ones((2, 4, 4), np.uint16))
    lab = _labels(tmp_path / "labels.tif", data)
    out = tmp_path / "table.csv"
    code, err = run_cli(
        ["measure", str(image), "--labels", str(lab), "-o", str(out)], monkeypatch, capsys
    )
    assert code == 1 and len(err.strip().splitlines()) == 1 and "relabel" in err
    assert not out.exists()
