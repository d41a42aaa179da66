"""The event commands end to end on a simulated recording."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from cascope.cli import app
from cascope.metrics import match_events
from cascope.simulate import mscts, save


def test_train_detect_features_compare(tmp_path) -> None:
    runner = CliRunner()
    sim = mscts(seed=1, n_frames=48, shape=(32, 32), event_rate=40.0)
    save(sim, tmp_path / "sim")
    res = runner.invoke(
        app,
        [
            "train",
            "events",
            str(tmp_path / "sim"),
            "--steps",
            "6",
            "--window",
            "8",
            "16",
            "16",
            "--base",
            "4",
            "--depth",
            "2",
            "--valid-fraction",
            "0.3",
            "-o",
            str(tmp_path / "model"),
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app,
        [
            "detect",
            str(tmp_path / "sim"),
            "--model",
            str(tmp_path / "model"),
            "-o",
            str(tmp_path / "ev.csv"),
            "--labels-out",
            str(tmp_path / "lab.tif"),
            "--threshold",
            "0.2",
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    ev = pd.read_csv(tmp_path / "ev.csv")
    assert {"t", "y", "x"} <= set(ev.columns)
    # the classical detector (no model) finds the simulated events
    res = runner.invoke(
        app,
        [
            "detect",
            str(tmp_path / "sim" / "noisy.tif"),
            "-o",
            str(tmp_path / "base.parquet"),
            "--threshold",
            "3",
        ],
    )
    assert res.exit_code == 0, res.output
    base = pd.read_parquet(tmp_path / "base.parquet")
    assert match_events(base, sim.events).f1 > 0.5
    for cond, seed in (("a", 1), ("b", 2)):
        s = mscts(seed=seed, n_frames=48, shape=(32, 32), event_rate=40.0)
        save(s, tmp_path / f"s{seed}")
        res = runner.invoke(
            app,
            [
                "features",
                str(tmp_path / f"s{seed}" / "noisy.tif"),
                str(tmp_path / f"s{seed}" / "labels.tif"),
                "-o",
                str(tmp_path / f"{cond}.csv"),
                "--offset",
                "100",
                "--condition",
                cond,
                "--frame-rate",
                "10",
            ],
        )
        assert res.exit_code == 0, res.output
    feats = pd.read_csv(tmp_path / "a.csv")
    assert len(feats) == sim.events.shape[0]
    # footprint-averaged ΔF/F (robust to single-voxel noise) follows the simulated amplitude
    assert np.corrcoef(feats["profile_max"], sim.events["amplitude"])[0, 1] > 0.6
    np.testing.assert_allclose(feats["t"], sim.events["t"], atol=0.5)
    res = runner.invoke(
        app,
        [
            "compare",
            str(tmp_path / "a.csv"),
            str(tmp_path / "b.csv"),
            "-o",
            str(tmp_path / "report"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "report" / "statistics.csv").is_file()
