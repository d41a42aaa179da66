from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cascope.cli import app


def _run(out, *extra):
    return CliRunner().invoke(
        app, ["demo", "--out", str(out), "--frames", "16", "--size", "48", "--seed", "3", *extra]
    )


def test_demo_denoising_beats_the_noisy_input(tmp_path):
    out = tmp_path / "demo"
    result = _run(out, "--no-events")
    assert result.exit_code == 0, result.output
    assert "SI-PSNR" in result.output and "gaussian 2d" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["events"] is None
    rows = {r["method"]: r for r in metrics["denoise"]}
    noisy = rows.pop("noisy input")
    assert rows, "no denoised result"
    for name, row in rows.items():
        assert row["psnr"] > noisy["psnr"], name
        assert row["si_psnr_gain"] > 0, name
    assert (out / "recording" / "noisy.tif").exists()
    assert (out / "recording" / "truth.json").exists()


def test_demo_runs_the_event_pipeline(tmp_path):
    out = tmp_path / "demo"
    result = _run(out, "--event-steps", "10")
    assert result.exit_code == 0, result.output
    events = json.loads((out / "metrics.json").read_text())["events"]
    assert events["n_true"] > 10
    # the tuned threshold detector finds the simulated events (10 steps are too few to judge
    # the network; the slow test below does)
    assert events["baseline"]["f1"] > 0.6
    folder = out / "events_pipeline"
    for name in (
        "qc.json",
        "denoised.tif",
        "events.csv",
        "event_labels.tif",
        "events.png",
        "pipeline.yaml",
        "versions.json",
        "summary.json",
    ):
        assert (folder / name).is_file(), name
    assert (out / "model_events" / "model.yaml").is_file()


@pytest.mark.slow
def test_demo_network_beats_the_threshold_detector(tmp_path):
    out = tmp_path / "demo"
    result = _run(out)
    assert result.exit_code == 0, result.output
    events = json.loads((out / "metrics.json").read_text())["events"]
    assert events["unet"]["f1"] > events["baseline"]["f1"]


def test_demo_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--frames", "8", "--size", "32", "--no-events"]
    assert CliRunner().invoke(app, args).exit_code == 0
    again = CliRunner().invoke(app, args)
    assert again.exit_code != 0
    assert CliRunner().invoke(app, [*args, "--force"]).exit_code == 0
