from __future__ import annotations

import json

from typer.testing import CliRunner

from cascope.cli import app


def test_demo_runs_and_denoising_beats_the_noisy_input(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(
        app, ["demo", "--out", str(out), "--frames", "16", "--size", "48", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "SI-PSNR" in result.output and "gaussian 2d" in result.output
    rows = {r["method"]: r for r in json.loads((out / "metrics.json").read_text())}
    noisy = rows.pop("noisy input")
    assert rows, "no denoised result"
    for name, row in rows.items():
        assert row["psnr"] > noisy["psnr"], name
        assert row["si_psnr_gain"] > 0, name
    assert (out / "recording" / "noisy.tif").exists()
    assert (out / "recording" / "truth.json").exists()


def test_demo_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--frames", "8", "--size", "32"]
    assert CliRunner().invoke(app, args).exit_code == 0
    again = CliRunner().invoke(app, args)
    assert again.exit_code != 0
    assert CliRunner().invoke(app, [*args, "--force"]).exit_code == 0
