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
