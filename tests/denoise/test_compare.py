import numpy as np
import pytest

from cascope.denoise.compare import benchmark_denoisers, si_psnr
from cascope.errors import InputError


def _movie(seed=0):
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    clean = ndi.gaussian_filter(rng.normal(size=(24, 32, 32)), 3)
    clean = (clean / clean.std() * 20 + 100).astype(np.float32)
    return clean, (clean + 10 * rng.normal(size=clean.shape)).astype(np.float32)


def test_ranking_with_reference_puts_denoisers_above_the_input():
    clean, noisy = _movie()
    rows = benchmark_denoisers(
        noisy, reference=clean, methods=["gaussian", "n2v"], steps=5, device="cpu"
    )
    by = {r["method"]: r for r in rows}
    assert by["gaussian"]["si_psnr"] > by["noisy (input)"]["si_psnr"] + 3
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert rows[0]["si_psnr"] >= rows[1]["si_psnr"] >= rows[2]["si_psnr"]
    assert by["noisy (input)"]["si_psnr"] == pytest.approx(si_psnr(noisy, clean))


def test_held_out_frames_rank_without_a_reference():
    _, noisy = _movie(1)
    rows = benchmark_denoisers(noisy, methods=["gaussian"], device="cpu")
    by = {r["method"]: r for r in rows}
    # the raw even frames miss the odd ones by two noise variances, a denoiser by about one
    assert by["gaussian"]["heldout_mse"] < 0.75 * by["noisy (input)"]["heldout_mse"]
    assert rows[0]["method"] == "gaussian"


def test_bad_inputs_are_named():
    clean, noisy = _movie()
    with pytest.raises(InputError, match="unknown method"):
        benchmark_denoisers(noisy, methods=["magic"])
    with pytest.raises(InputError, match="reference shape"):
        benchmark_denoisers(noisy, reference=clean[:-1], methods=["gaussian"])


def test_cli_prints_the_ranked_table(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    from typer.testing import CliRunner

    from cascope.cli import app

    clean, noisy = _movie(2)
    tifffile.imwrite(tmp_path / "n.tif", noisy)
    tifffile.imwrite(tmp_path / "c.tif", clean)
    res = CliRunner().invoke(
        app,
        [
            "benchmark",
            "denoise",
            str(tmp_path / "n.tif"),
            "--reference",
            str(tmp_path / "c.tif"),
            "-m",
            "gaussian",
            "-m",
            "median",
            "--json",
            str(tmp_path / "r.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "si_psnr" in res.output and "median" in res.output
    import json

    rows = json.loads((tmp_path / "r.json").read_text())
    assert rows[-1]["method"] == "noisy (input)"


def test_the_crop_goes_where_the_structure_is():
    from cascope.denoise.compare import benchmark_crop

    score = np.zeros((100, 120))
    score[70:90, 10:30] = 1.0
    t, y, x = benchmark_crop((50, 100, 120), (20, 32, 32), score)
    assert (t.start, t.stop) == (0, 20)
    assert y.start <= 70 and y.stop >= 90 and x.start <= 10 and x.stop >= 30
    assert y.stop - y.start == 32 and x.stop - x.start == 32
    # a crop larger than the movie is the movie
    assert benchmark_crop((5, 10, 10), (48, 128, 128)) == (slice(0, 5), slice(0, 10), slice(0, 10))


def test_cli_benchmarks_a_crop_with_the_denoise_network_in_a_time_budget(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    import json

    from typer.testing import CliRunner

    from cascope.cli import app
    from cascope.config.denoise import DeepDenoiseConfig

    _, noisy = _movie(3)
    big = np.full((24, 96, 96), 100.0, np.float32)
    big[:, 50:82, 8:40] = noisy  # the structure sits in one corner of a flat field
    tifffile.imwrite(tmp_path / "n.tif", big)
    args = ["benchmark", "denoise", str(tmp_path / "n.tif"), "--crop", "16", "32", "32", "-m",
            "gaussian", "-m", "n2v", "--steps", "1000", "--network-seconds", "1", "--device",
            "cpu", "--json", str(tmp_path / "r.json")]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    import re

    found = re.search(r"crop \[0:16, (\d+):(\d+), (\d+):(\d+)\]", res.output)
    assert found is not None, res.output
    y0, y1, x0, x1 = map(int, found.groups())
    assert (y1 - y0, x1 - x0) == (32, 32)
    assert 40 <= y0 <= 60 and x0 <= 18  # on the structure, not on the flat field
    rows = {r["method"]: r for r in json.loads((tmp_path / "r.json").read_text())}
    assert 1 <= rows["n2v"]["steps"] < rows["n2v"]["steps_planned"] == 1000
    assert "stopped by --network-seconds" in res.output
    assert rows["gaussian"]["heldout_mse"] < rows["noisy (input)"]["heldout_mse"]
    # the network is the one `cascope denoise` trains
    from cascope.denoise.compare import network_config

    cfg, default = network_config("n2v", (8, 32, 32), steps=1000), DeepDenoiseConfig()
    assert (cfg.depth, cfg.base, cfg.loss, cfg.training.lr) == (
        default.depth, default.base, default.loss, default.training.lr)  # fmt: skip
