import numpy as np
import pandas as pd
import tifffile
from typer.testing import CliRunner

from cascope.cli import app
from cascope.io import write
from cascope.simulate import axons

runner = CliRunner()


def _ok(args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_real_stack_preprocess_label_measure(real_data, tmp_path):
    src = real_data / "rivulet_neuron_small2_zyx.tif"
    _ok(
        [
            "preprocess",
            src,
            "-o",
            tmp_path / "pre.tif",
            "--slice-denoiser",
            "gaussian",
            "--stack",
            "bilateral",
            "--axes",
            "ZYX",
        ]
    )
    pre = tifffile.imread(tmp_path / "pre.tif")
    assert pre.dtype == np.uint8 and pre.shape == (51, 76, 176)
    _ok(
        [
            "label",
            tmp_path / "pre.tif",
            "-o",
            tmp_path / "lab.tif",
            "--min-size",
            "50",
            "--stats",
            tmp_path / "stats.csv",
        ]
    )
    lab = tifffile.imread(tmp_path / "lab.tif")
    assert lab.max() >= 1
    # the neuron is bright: its labelled voxels are brighter than the rest
    assert pre[lab > 0].mean() > 3 * pre[lab == 0].mean()
    _ok(
        [
            "measure",
            src,
            "--labels",
            tmp_path / "lab.tif",
            "-o",
            tmp_path / "m.parquet",
            "--figure",
            tmp_path / "m.png",
        ]
    )
    table = pd.read_parquet(tmp_path / "m.parquet")
    # every column with a unit names it: um from the voxel size, else voxels
    (length,) = [c for c in table.columns if c.startswith("length_")]
    assert length in ("length_um", "length_voxels") and "length" not in table.columns
    assert {"mean_diameter_um", "volume_um3"} <= set(table.columns) or {
        "mean_diameter_voxels",
        "volume_voxels",
    } <= set(table.columns)
    assert len(table) == lab.max() and (table[length].dropna() > 0).all()


def test_semantic_and_fret_measure_commands(tmp_path):
    sim = axons(seed=2, fret=True, shape=(12, 48, 48))
    write(tmp_path / "lab.tif", sim.labels, axes="ZYX")
    write(tmp_path / "img.tif", sim.noisy, axes="CZYX")
    _ok(["semantic", tmp_path / "lab.tif", "-o", tmp_path / "sem.tif", "--planes", "all"])
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "sem.tif"), sim.semantic)
    _ok(
        [
            "measure",
            tmp_path / "img.tif",
            "--labels",
            tmp_path / "lab.tif",
            "--fret-channels",
            "0",
            "1",
            "-o",
            tmp_path / "t.csv",
        ]
    )
    table = pd.read_csv(tmp_path / "t.csv")
    assert np.allclose(table["ratio"], sim.ratios[table["label"] - 1], rtol=0.2)
    # refuses to overwrite an input
    bad = runner.invoke(
        app, ["semantic", str(tmp_path / "lab.tif"), "-o", str(tmp_path / "lab.tif"), "--force"]
    )
    assert bad.exit_code != 0
