import json

import numpy as np
import pandas as pd
import pytest
import tifffile
from typer.testing import CliRunner

from cascope.cli import app
from cascope.errors import OutputError
from cascope.simulate import somatic

runner = CliRunner()

COMMANDS = {
    "somatic": ["--frames", "20", "--shape", "40", "48"],
    "mscts": ["--frames", "30", "--shape", "48", "48"],
    "axons": ["--shape", "12", "40", "40", "--fret"],
    "pairs": ["--images", "3", "--shape", "32", "32", "--scene", "dendrites"],
}


def _check_folder(out):
    truth = json.loads((out / "truth.json").read_text())
    written = {p.name for p in out.iterdir()} - {"truth.json"}
    assert set(truth["files"]) == written
    for name, info in truth["files"].items():
        assert info["what"]
        if name.endswith(".tif"):
            arr = tifffile.imread(out / name)
            assert list(arr.shape) == info["shape"]
            assert arr.dtype.name == info["dtype"]
            assert len(info["axes"]) == arr.ndim
        else:
            assert len(pd.read_csv(out / name)) == info["rows"]
    return truth


@pytest.mark.parametrize("kind", sorted(COMMANDS))
def test_simulate_writes_folder_described_by_truth_json(tmp_path, kind):
    out = tmp_path / kind
    res = runner.invoke(app, ["simulate", kind, "-o", str(out), "--seed", "3", *COMMANDS[kind]])
    assert res.exit_code == 0, res.output
    truth = _check_folder(out)
    assert truth["kind"] == kind and truth["seed"] == 3 and truth["params"]["seed"] == 3
    noisy = "noisy_a.tif" if kind == "pairs" else "noisy.tif"
    assert tifffile.imread(out / noisy).dtype == np.uint16
    assert not list(tmp_path.glob(".*part*"))


def test_cli_output_equals_library_output(tmp_path):
    out = tmp_path / "s"
    res = runner.invoke(
        app,
        [
            "simulate",
            "somatic",
            "-o",
            str(out),
            "--seed",
            "5",
            "--frames",
            "15",
            "--shape",
            "32",
            "32",
            "--photons",
            "7",
        ],
    )
    assert res.exit_code == 0, res.output
    sim = somatic(seed=5, n_frames=15, shape=(32, 32), photons=7)
    np.testing.assert_array_equal(tifffile.imread(out / "noisy.tif"), sim.noisy)
    np.testing.assert_array_equal(tifffile.imread(out / "clean.tif"), sim.clean)
    traces = pd.read_csv(out / "traces.csv")
    np.testing.assert_allclose(traces.filter(like="neuron_").to_numpy().T, sim.dff, rtol=1e-6)


def test_existing_folder_is_refused_without_force(tmp_path):
    out = tmp_path / "o"
    args = ["simulate", "pairs", "-o", str(out), "--images", "1", "--shape", "16", "16"]
    assert runner.invoke(app, args).exit_code == 0
    before = (out / "noisy_a.tif").read_bytes()
    res = runner.invoke(app, [*args, "--seed", "9"])
    assert res.exit_code != 0 and isinstance(res.exception, OutputError)
    assert (out / "noisy_a.tif").read_bytes() == before
    res = runner.invoke(app, [*args, "--seed", "9", "--force"])
    assert res.exit_code == 0, res.output
    assert (out / "noisy_a.tif").read_bytes() != before


def test_empty_existing_folder_is_accepted(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    res = runner.invoke(
        app, ["simulate", "pairs", "-o", str(out), "--images", "1", "--shape", "16", "16"]
    )
    assert res.exit_code == 0, res.output
    assert (out / "truth.json").is_file()


def test_yaml_config_with_cli_override(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("n_frames: 12\nshape: [24, 24]\nphotons: 9.0\ncamera:\n  gain: 3.0\n")
    out = tmp_path / "c"
    res = runner.invoke(
        app, ["simulate", "somatic", "-o", str(out), "--config", str(cfg), "--offset", "50"]
    )
    assert res.exit_code == 0, res.output
    params = json.loads((out / "truth.json").read_text())["params"]
    assert params["n_frames"] == 12 and params["photons"] == 9.0
    assert params["camera"]["gain"] == 3.0 and params["camera"]["offset"] == 50.0


def test_bad_parameter_is_one_line_error(tmp_path):
    res = runner.invoke(app, ["simulate", "axons", "-o", str(tmp_path / "x"), "--density", "huge"])
    assert res.exit_code != 0
    assert "density" in str(res.exception) and "\n" not in str(res.exception)
    assert not (tmp_path / "x").exists()
