"""``cascope study`` on a real Dask LocalCluster: completes, finds the planted effect, equals a
serial run; a corrupt file fails alone with one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.study.conftest import CONFIG, write_recording

from cascope.config.pipeline import PipelineConfig
from cascope.pipeline import run_pipeline
from cascope.study import run_study


def _serial_events(path: Path, out: Path) -> pd.DataFrame:
    """The events table of ``cascope run`` on one recording, in this process."""
    run_pipeline(PipelineConfig.model_validate({**CONFIG, "input": str(path)}), out)
    return pd.read_csv(out / "events.csv")


def test_study_on_local_cluster_finds_effect_and_equals_serial_run(
    six_recordings: Path, client: Any, tmp_path: Path
) -> None:
    study = tmp_path / "study"
    # the features the study set out to compare: the correction covers these four
    features = ["dff_peak", "dff_mean", "area", "duration_frames"]
    result = run_study(
        six_recordings / "manifest.csv", CONFIG, study_dir=study, client=client, features=features
    )

    assert result.totals["done"] == 6 and result.totals["failed"] == 0
    doc = json.loads((study / "study.json").read_text())
    assert doc["format"] == "cascope-study" and doc["version"] == 1
    assert doc["totals"] == {**result.totals, "seconds": doc["totals"]["seconds"]}
    assert doc["cluster"]["workers"] == 2 and doc["cluster"]["kind"] == "local"
    row = doc["recordings"][1]
    assert row["id"] == "rec1" and row["condition"] == "ltp" and row["batch"] == "b0"
    assert row["folder"] == "recordings/rec1" and row["status"] == "done"
    # no temporaries or partial folders: exactly the six recordings
    assert sorted(p.name for p in (study / "recordings").iterdir()) == [f"rec{i}" for i in range(6)]
    # one events table for the study, tagged with the manifest columns
    events = pd.read_parquet(study / "events.parquet")
    assert list(events.columns[:4]) == ["recording", "condition", "subject", "batch"]
    per_recording = events.groupby("recording").size().to_dict()
    assert per_recording == {r["id"]: r["n_events"] for r in doc["recordings"]}
    assert len(pd.read_csv(study / "events.csv")) == len(events)
    # the comparison has the recording as its unit and finds the brighter events of "ltp"
    summary = json.loads((study / "comparison" / "summary.json").read_text())
    assert summary["unit"] == "recording" and summary["n"] == {"control": 3, "ltp": 3}
    stats = pd.read_csv(study / "comparison" / "statistics.csv").set_index("feature")
    assert (stats["n_control"] == 3).all() and (stats["unit"] == "recording").all()
    assert sorted(stats.index) == sorted(features)
    # three recordings per condition: the planted feature is the one significant after Holm
    assert stats.loc["dff_peak", "significant"] and stats["p"].idxmin() == "dff_peak"
    assert stats.loc["dff_peak", "median_ltp"] > 2 * stats.loc["dff_peak", "median_control"]
    # the study's page links every recording's page, which each recording folder holds
    page = (study / "report.html").read_text()
    for i in range(6):
        assert f"recordings/rec{i}/report.html" in page
        assert (study / "recordings" / f"rec{i}" / "report.html").is_file()
    # per-recording tables equal a serial run of the pipeline
    for rid in ("rec0", "rec3"):
        serial = _serial_events(six_recordings / f"{rid}.tif", tmp_path / f"serial-{rid}")
        ours = pd.read_csv(study / "recordings" / rid / "events.csv")
        pd.testing.assert_frame_equal(ours, serial)


def test_corrupt_recording_fails_alone_with_one_line(
    six_recordings: Path, client: Any, tmp_path: Path
) -> None:
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00" + b"\x00garbage" * 64)
    good = write_recording(tmp_path / "good.tif", seed=3, condition="ltp")
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path\n{six_recordings / 'rec0.tif'}\n{bad}\n{good}\n")
    address = client.scheduler.address
    proc = subprocess.run(
        [sys.executable, "-m", "cascope", "study", str(manifest), "-o", str(tmp_path / "s")]
        + ["--scheduler", address],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=240,
    )
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "broken" in line]
    assert len(lines) == 1 and lines[0].startswith("failed broken: ")
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: 1 of 3 recordings failed (see {tmp_path / 's' / 'study.json'})"
    )
    doc = json.loads((tmp_path / "s" / "study.json").read_text())
    assert doc["cluster"]["kind"] == "scheduler" and doc["cluster"]["address"] == address
    # the failed recording is listed with its error on the study's page
    page = (tmp_path / "s" / "report.html").read_text()
    assert "broken" in page and "failed" in page
    status = {r["id"]: r["status"] for r in doc["recordings"]}
    assert status == {"rec0": "done", "broken": "failed", "good": "done"}
    error = next(r["error"] for r in doc["recordings"] if r["id"] == "broken")
    assert "\n" not in error and str(bad) in error
    assert sorted(p.name for p in (tmp_path / "s" / "recordings").iterdir()) == ["good", "rec0"]


@pytest.mark.parametrize("kind", ["yaml", "folder", "glob"])
def test_manifest_forms(six_recordings: Path, tmp_path: Path, kind: str) -> None:
    from cascope.study import read_manifest

    if kind == "yaml":
        doc = tmp_path / "m.yaml"
        doc.write_text(
            "recordings:\n"
            f"  - {{path: {six_recordings / 'rec0.tif'}, id: a, condition: x, subject: s1}}\n"
            f"  - {{path: {six_recordings / 'rec1.tif'}, id: b, frame_rate: 20, dose: 3}}\n"
        )
        recs = read_manifest(doc)
        assert [r.id for r in recs] == ["a", "b"] and recs[0].subject == "s1"
        assert recs[1].frame_rate == 20.0 and recs[1].extra == {"dose": 3}
    else:
        recs = read_manifest(six_recordings if kind == "folder" else six_recordings / "rec*.tif")
        assert [r.id for r in recs] == [f"rec{i}" for i in range(6)]
        assert all(r.condition is None for r in recs)


def test_manifest_problems_are_one_line(tmp_path: Path) -> None:
    from cascope.errors import InputError
    from cascope.study import read_manifest

    m = tmp_path / "m.csv"
    m.write_text("path,id\na.tif,x\nb.tif,x\n")
    with pytest.raises(InputError, match="rows 1 and 2 have the same id 'x'"):
        read_manifest(m)
    m.write_text("condition\nctl\n")
    with pytest.raises(InputError, match="row 1 has no path"):
        read_manifest(m)


def test_model_is_sent_once_and_keys_follow_contents(tmp_path: Path) -> None:
    from cascope.study import Recording
    from cascope.study._task import content_key, pack_model, recording_config, unpack_model

    model = tmp_path / "events_model"
    model.mkdir()
    (model / "model.yaml").write_text("format: 1\n")
    (model / "weights.safetensors").write_bytes(b"\x01\x02" * 100)
    payload = pack_model(model)
    local = unpack_model(payload)  # what each worker does once with the broadcast payload
    assert local != model and (local / "weights.safetensors").read_bytes() == b"\x01\x02" * 100
    assert unpack_model(payload) == local  # cached: written once per machine
    rec = Recording(id="r", path=tmp_path / "r.tif")
    (tmp_path / "r.tif").write_bytes(b"x")
    config = {**CONFIG, "events": {"model": str(model)}}
    assert recording_config(rec, config, {"events": local}).events.model == local
    key = content_key(rec, config, {"events": payload.digest}, "1")
    moved = {**CONFIG, "events": {"model": str(tmp_path / "elsewhere")}}
    assert content_key(rec, moved, {"events": payload.digest}, "1") == key  # where: no matter
    (model / "weights.safetensors").write_bytes(b"\x03" * 200)
    assert pack_model(model).digest != payload.digest  # what: a new key
    assert content_key(rec, config, {"events": pack_model(model).digest}, "1") != key
    assert content_key(rec, config, {"events": payload.digest}, "2") != key  # cascope version
