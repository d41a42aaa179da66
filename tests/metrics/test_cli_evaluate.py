import json

import numpy as np
import pandas as pd
import pytest
import tifffile
from skimage.metrics import peak_signal_noise_ratio
from typer.testing import CliRunner

from cascope.cli import app
from cascope.metrics import si_psnr


@pytest.fixture
def movies(tmp_path, rng):
    clean = rng.uniform(100, 1000, (4, 24, 24)).astype(np.float32)
    noisy = clean + rng.normal(0, 100, clean.shape).astype(np.float32)
    pred = clean + rng.normal(0, 20, clean.shape).astype(np.float32)
    for name, arr in (("clean", clean), ("noisy", noisy), ("pred", pred)):
        tifffile.imwrite(tmp_path / f"{name}.tif", arr, metadata={"axes": "TYX"})
    return tmp_path, clean, noisy, pred


def test_evaluate_denoise_writes_scores(movies):
    folder, clean, noisy, pred = movies
    out = folder / "scores.json"
    res = CliRunner().invoke(
        app,
        [
            "evaluate",
            "denoise",
            str(folder / "pred.tif"),
            "--reference",
            str(folder / "clean.tif"),
            "--input",
            str(folder / "noisy.tif"),
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "SI-PSNR improvement" in res.output
    data = json.loads(out.read_text())
    expected = peak_signal_noise_ratio(clean, pred, data_range=float(np.ptp(clean)))
    assert data["psnr"] == pytest.approx(expected, rel=1e-5)
    assert data["si_psnr"]["values"][1] == pytest.approx(si_psnr(pred[1], clean[1]), rel=1e-5)
    assert data["si_psnr_improvement"]["mean"] > 5
    assert data["psnr"] > data["input_psnr"]


def test_evaluate_denoise_explicit_range_and_shape_error(movies, tmp_path):
    folder, clean, _, pred = movies
    out = folder / "s.json"
    res = CliRunner().invoke(
        app,
        [
            "evaluate",
            "denoise",
            str(folder / "pred.tif"),
            "-r",
            str(folder / "clean.tif"),
            "--data-range",
            "4095",
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["psnr"] == pytest.approx(peak_signal_noise_ratio(clean, pred, data_range=4095))
    tifffile.imwrite(folder / "small.tif", clean[:, :10], metadata={"axes": "TYX"})
    bad = CliRunner().invoke(
        app, ["evaluate", "denoise", str(folder / "small.tif"), "-r", str(folder / "clean.tif")]
    )
    assert bad.exit_code != 0


def test_evaluate_segmentation_classes_and_instances(tmp_path):
    true = np.zeros((2, 10, 10), np.uint16)
    pred = np.zeros_like(true)
    true[:, 0:4, 0:4] = 1
    pred[:, 0:4, 0:3] = 1  # IoU 0.75
    true[:, 6:10, 6:10] = 2
    pred[:, 0:2, 8:10] = 3  # false positive
    tifffile.imwrite(tmp_path / "true.tif", true, metadata={"axes": "ZYX"})
    tifffile.imwrite(tmp_path / "pred.tif", pred, metadata={"axes": "ZYX"})
    out = tmp_path / "inst.json"
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "evaluate",
            "segmentation",
            str(tmp_path / "pred.tif"),
            "-r",
            str(tmp_path / "true.tif"),
            "--instances",
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    inst = json.loads(out.read_text())["instances"]
    assert (inst["tp"], inst["fp"], inst["fn"]) == (1, 1, 1)
    assert inst["pairs"] == [[1, 1]]
    out2 = tmp_path / "cls.json"
    res = runner.invoke(
        app,
        [
            "evaluate",
            "segmentation",
            str(tmp_path / "pred.tif"),
            "-r",
            str(tmp_path / "true.tif"),
            "--json",
            str(out2),
        ],
    )
    assert res.exit_code == 0, res.output
    cls = json.loads(out2.read_text())["classes"]
    assert cls["classes"]["1"]["iou"] == pytest.approx(0.75)
    assert cls["classes"]["2"]["recall"] == pytest.approx(0.0)


def test_evaluate_events_with_scores(tmp_path):
    true = pd.DataFrame({"t": [0, 0, 0], "y": [0, 0, 0], "x": [0, 10, 20]})
    pred = pd.DataFrame(
        {"t": [0, 0, 0], "y": [0, 0, 0], "x": [1, 50, 19], "score": [0.9, 0.8, 0.7]}
    )
    true.to_csv(tmp_path / "true.csv", index=False)
    pred.to_csv(tmp_path / "pred.csv", index=False)
    out = tmp_path / "ev.json"
    res = CliRunner().invoke(
        app,
        [
            "evaluate",
            "events",
            str(tmp_path / "pred.csv"),
            "-r",
            str(tmp_path / "true.csv"),
            "--max-distance",
            "6",
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert (data["matching"]["tp"], data["matching"]["fp"], data["matching"]["fn"]) == (2, 1, 1)
    assert data["average_precision"]["ap"] == pytest.approx(5 / 9)


def test_evaluate_events_missing_column_fails_cleanly(tmp_path):
    pd.DataFrame({"t": [1], "y": [2]}).to_csv(tmp_path / "bad.csv", index=False)
    pd.DataFrame({"t": [1], "y": [2], "x": [3]}).to_csv(tmp_path / "ok.csv", index=False)
    res = CliRunner().invoke(
        app, ["evaluate", "events", str(tmp_path / "bad.csv"), "-r", str(tmp_path / "ok.csv")]
    )
    assert res.exit_code != 0
    assert not (tmp_path / "out.json").exists()
