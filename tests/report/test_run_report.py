"""The report of one ``cascope run`` folder: written by the run, rebuilt by ``cascope report``."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.cli.test_bad_inputs import run_cli
from tests.report.helpers import (
    FRAME_RATE,
    PIXEL_UM,
    decode_all,
    make_run,
    parse_page,
    simulated_movie,
)
from typer.testing import CliRunner

from cascope.cli import app
from cascope.report import _html
from cascope.report.run import read_run


def test_run_writes_a_report_with_every_part(study_runs: dict[str, Path]) -> None:
    run = study_runs["drug_b"]
    page_path = run / "report.html"
    assert page_path.is_file(), "cascope run did not write report.html"
    page = parse_page(page_path)
    text = " ".join(page.text)
    assert page.external == []  # nothing from the network
    assert {s for s in page.images} == {
        "report_files/preview.webp",
        "report_files/projections.png",
        "report_files/event_map.png",
        "report_files/raster.png",
    }
    pixels = decode_all(run, page.images)
    # the QC table: its recommendation and flags
    qc = json.loads((run / "qc.json").read_text())
    assert qc["recommendation"] in text
    assert ("no flags" in text) == (not qc["flags"])
    # counts and rates from the recording's own frame rate and pixel size
    events = pd.read_csv(run / "events.csv")
    minutes = 64 / FRAME_RATE / 60
    per_minute = len(events) / minutes
    per_area = per_minute / (40 * 40 * PIXEL_UM**2 / 100)
    numbers = read_run(run).numbers
    assert numbers["n_events"] == len(events) > 0
    assert numbers["per_minute"] == pytest.approx(per_minute)
    assert numbers["per_minute_per_100um2"] == pytest.approx(per_area)
    assert _html.fmt(per_minute) in text and _html.fmt(per_area) in text
    # the feature summary holds the median of each feature
    assert _html.fmt(float(events["dff_peak"].median())) in text
    # the preview: raw | denoised side by side, the denoised one calmer from frame to frame
    movie = pixels["report_files/preview.webp"]
    assert movie.ndim == 4 and movie.shape[0] > 10
    grey = movie[..., :3].astype(float).mean(axis=-1)
    half = (grey.shape[2] - 3) // 2
    raw, denoised = grey[:, :, :half], grey[:, :, half + 3 :]
    assert np.diff(denoised, axis=0).std() < 0.7 * np.diff(raw, axis=0).std()
    # provenance: the saved configuration
    assert "gaussian" in text and "Timings" in text


def test_cascope_report_rebuilds_with_the_denoising_gain(
    study_runs: dict[str, Path], tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(study_runs["ctrl_a"], run)
    (run / "report.html").unlink()
    shutil.rmtree(run / "report_files")
    clean = Path(json.loads((run / "summary.json").read_text())["input"]).parent / "clean.tif"
    result = CliRunner().invoke(app, ["report", str(run), "--reference", str(clean)])
    assert result.exit_code == 0, result.output
    page = parse_page(run / "report.html")
    decode_all(run, page.images)
    text = " ".join(page.text)
    assert "Denoising gain" in text
    html = (run / "report.html").read_text()
    gain = float(html.split("gain (dB)</th>")[1].split('data-v="')[1].split('"')[0])
    assert gain > 1.0  # gaussian smoothing brought the movie closer to the clean one
    # no leftovers of the atomic writes
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []


def test_a_failing_report_never_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import cascope.report

    def broken(*args: object, **kwargs: object) -> Path:
        raise RuntimeError("no figures today")

    monkeypatch.setattr(cascope.report, "build_run_report", broken)
    movie = simulated_movie(tmp_path / "movie", 7, (0.5, 1.0))
    with caplog.at_level(logging.WARNING):
        out = make_run(movie, tmp_path / "run")
    assert (out / "events.csv").is_file() and (out / "summary.json").is_file()
    assert not (out / "report.html").exists()
    assert "no report.html" in caplog.text and "no figures today" in caplog.text


@pytest.mark.parametrize("what", ["nothing", "empty", "file"])
def test_report_of_a_folder_that_is_no_run_is_one_line(
    tmp_path: Path, what: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "x"
    if what == "empty":
        target.mkdir()
    elif what == "file":
        target.write_text("not a folder")
    code, err = run_cli(["report", str(target)], monkeypatch, capsys)
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and str(target) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if what == "nothing" else ["x"])
    if what == "empty":
        assert list(target.iterdir()) == []


def test_a_volume_folder_shows_its_segmentation_and_measurements(tmp_path: Path) -> None:
    from cascope import io, simulate
    from cascope.morphology import measure_structures

    sim = simulate.axons(seed=3, shape=(12, 40, 40), n_axons=3)
    folder = tmp_path / "volume"
    folder.mkdir()
    io.write(folder / "volume.tif", sim.noisy, axes="ZYX")
    io.write(folder / "segmentation.tif", sim.labels, axes="ZYX")
    table, _ = measure_structures(sim.labels)
    table.to_csv(folder / "measurements.csv", index=False)
    summary = {"input": "volume.tif", "shape": list(sim.noisy.shape)}
    (folder / "summary.json").write_text(json.dumps(summary))
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    page = parse_page(folder / "report.html")
    assert page.images == ["report_files/segmentation.png"]
    decode_all(folder, page.images)
    text = " ".join(page.text)
    n = len(np.unique(sim.labels[sim.labels > 0]))
    assert f"{n} labelled structures" in text
    assert f"Per-structure measurements ({len(table)})" in text
    assert "could be read" not in text
