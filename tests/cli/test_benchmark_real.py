from __future__ import annotations

import json

from typer.testing import CliRunner

from cascope.cli import app


def test_benchmark_denoise_ranks_methods_on_the_real_sima_movie(real_data, tmp_path):
    movie = real_data / "sima_example_2p_T20.tif"
    out = tmp_path / "rank.json"
    args = [
        "benchmark",
        "denoise",
        str(movie),
        "-m",
        "gaussian",
        "-m",
        "median",
        "-m",
        "n2v3d",
        "--steps",
        "20",
        "--device",
        "cpu",
        "--json",
        str(out),
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "heldout_mse" in res.output and "gaussian" in res.output and "n2v3d" in res.output
    rows = json.loads(out.read_text())
    scores = {r["method"]: r["heldout_mse"] for r in rows}
    # ranked best first; every denoiser predicts the held-out frames better than the raw input
    assert [r["heldout_mse"] for r in rows] == sorted(scores.values())
    assert all(v < scores["noisy (input)"] for k, v in scores.items() if k != "noisy (input)")
