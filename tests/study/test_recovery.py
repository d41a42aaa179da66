"""Nothing lost, nothing done twice: re-runs skip complete recordings, a worker killed with
SIGKILL mid-recording costs nothing but time (real ``dask scheduler`` / ``dask worker``)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.study.conftest import CONFIG, write_recording

from cascope.config.pipeline import PipelineConfig
from cascope.pipeline import run_pipeline
from cascope.study import run_study

pytestmark = pytest.mark.slow


def _stamps(study: Path) -> dict[str, int]:
    return {
        p.relative_to(study).as_posix(): p.stat().st_mtime_ns
        for p in sorted((study / "recordings").rglob("*"))
    }


def test_rerun_skips_complete_and_redoes_changed(
    six_recordings: Path, client: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        shutil.copy(six_recordings / f"rec{i}.tif", data / f"rec{i}.tif")
    study = tmp_path / "study"
    first = run_study(data, CONFIG, study_dir=study, client=client)
    assert first.totals["done"] == 3
    stamps = _stamps(study)

    again = run_study(data, CONFIG, study_dir=study, client=client)
    assert (again.totals["done"], again.totals["skipped"]) == (0, 3)
    assert _stamps(study) == stamps  # not one file of a recording was written again
    doc = json.loads((study / "study.json").read_text())
    assert doc["totals"]["skipped"] == 3 and doc["cluster"]["kind"] == "local"
    assert doc["cluster"]["reused"]  # no cluster was needed: the first run's is recorded
    assert [r["n_events"] for r in doc["recordings"]] == [r["n_events"] for r in first.recordings]
    assert len(pd.read_parquet(study / "events.parquet")) == sum(
        r["n_events"] for r in first.recordings
    )

    old = pd.read_csv(study / "recordings" / "rec1" / "events.csv")
    write_recording(data / "rec1.tif", seed=99, condition="ltp")  # the input changed
    changed = run_study(data, CONFIG, study_dir=study, client=client)
    status = {r["id"]: r["status"] for r in changed.recordings}
    assert status == {"rec0": "skipped", "rec1": "done", "rec2": "skipped"}
    assert not pd.read_csv(study / "recordings" / "rec1" / "events.csv").equals(old)
    assert _stamps(study)["recordings/rec0/events.csv"] == stamps["recordings/rec0/events.csv"]

    config = {**CONFIG, "events": {"threshold": 5.0}}  # the config changed
    rerun = run_study(data, config, study_dir=study, client=client)
    assert rerun.totals["done"] == 3
    assert [p.name for p in (study / "recordings").iterdir() if p.name.startswith(".")] == []


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", *args], stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


def test_worker_killed_mid_recording_on_dask_scheduler_and_workers(
    six_recordings: Path, tmp_path: Path
) -> None:
    from distributed import Client

    sched_file = tmp_path / "scheduler.json"
    procs = [
        _start(
            ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0"]
            + ["--scheduler-file", str(sched_file), "--dashboard-address", ":0"],
            tmp_path / "scheduler.log",
        )
    ]
    try:
        for _ in range(600):
            if sched_file.is_file():
                break
            time.sleep(0.1)
        procs.append(
            _start(
                ["distributed.cli.dask_worker", "--scheduler-file", str(sched_file)]
                + ["--nworkers", "2", "--nthreads", "1", "--host", "127.0.0.1"]
                + ["--no-dashboard"],
                tmp_path / "workers.log",
            )
        )
        with Client(scheduler_file=str(sched_file)) as c:
            c.wait_for_workers(2, timeout=120)
        study = tmp_path / "study"
        cli = subprocess.Popen(
            [sys.executable, "-m", "cascope", "study", str(six_recordings / "manifest.csv")]
            + ["-o", str(study), "--scheduler", str(sched_file), "--retries", "0"]
            + ["--feature", "dff_peak", "--feature", "dff_mean", "--feature", "area"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # kill the worker process whose temporary folder shows it is writing a recording
        building = re.compile(r"^\.(rec\d)\.(\d+)-part-")
        killed: tuple[str, int] | None = None
        deadline = time.monotonic() + 240
        while killed is None and time.monotonic() < deadline and cli.poll() is None:
            entries = os.listdir(study / "recordings") if (study / "recordings").is_dir() else []
            for name in entries:
                m = building.match(name)
                if m:
                    os.kill(int(m.group(2)), signal.SIGKILL)
                    killed = (m.group(1), int(m.group(2)))
                    break
            time.sleep(0.02)
        out, err = cli.communicate(timeout=400)
        assert killed is not None, "no recording was seen in progress"
        assert cli.returncode == 0, err
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(timeout=60)
    doc = json.loads((study / "study.json").read_text())
    assert doc["totals"]["done"] == 6 and doc["cluster"]["kind"] == "scheduler"
    row = next(r for r in doc["recordings"] if r["id"] == killed[0])
    assert row["status"] == "done" and not row["worker"].endswith(f":{killed[1]}")
    # no partial folder or temporary is left, only the six complete recordings
    assert sorted(os.listdir(study / "recordings")) == [f"rec{i}" for i in range(6)]
    # every per-recording table equals a serial run of the pipeline (the killed one included)
    for i in range(6):
        ref = tmp_path / f"serial{i}"
        run_pipeline(
            PipelineConfig.model_validate({**CONFIG, "input": str(six_recordings / f"rec{i}.tif")}),
            ref,
        )
        pd.testing.assert_frame_equal(
            pd.read_csv(study / "recordings" / f"rec{i}" / "events.csv"),
            pd.read_csv(ref / "events.csv"),
        )
    summary = json.loads((study / "comparison" / "summary.json").read_text())
    assert "dff_peak" in summary["significant"]
