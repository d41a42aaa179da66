"""Event matching stays exact and bounded in memory; bad event tables and labels are one line."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tifffile
from scipy.optimize import linear_sum_assignment
from tests.cli.test_bad_inputs import run_cli

from cascope.metrics import match_events, match_instances


def _dense_optimum(p: np.ndarray, t: np.ndarray, max_distance: float) -> tuple[int, float]:
    """Largest matching, then smallest total distance, by brute force on the full matrix."""
    d = np.linalg.norm(p[:, None] - t[None], axis=-1)
    ok = d < max_distance
    big = max_distance * (min(len(p), len(t)) + 1)
    ri, ci = linear_sum_assignment(np.where(ok, d, big))
    hit = ok[ri, ci]
    return int(hit.sum()), float(d[ri, ci][hit].sum())


@pytest.mark.parametrize("seed", range(6))
def test_event_matching_is_the_exact_optimum(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 30, (40, 3))
    p = np.concatenate([t[:30] + rng.normal(0, 2, (30, 3)), rng.uniform(0, 30, (15, 3))])
    m = match_events(p, t, max_distance=5.0)
    tp, total = _dense_optimum(p, t, 5.0)
    assert m.tp == tp and m.scores.sum() == pytest.approx(total)
    assert len(set(m.pairs[:, 0])) == m.tp == len(set(m.pairs[:, 1]))
    assert (np.linalg.norm(p[m.pairs[:, 0]] - t[m.pairs[:, 1]], axis=1) < 5.0).all()


def test_instance_matching_pairs_each_label_once() -> None:
    a = np.array([[1, 1, 0, 2, 2, 2]])
    b = np.array([[3, 3, 0, 0, 0, 4]])
    m = match_instances(a, b)
    assert (m.tp, m.fp, m.fn, m.pairs.tolist()) == (1, 1, 1, [[1, 3]])


def _cli(args: list[str], cap_gib: float) -> subprocess.CompletedProcess[str]:
    def cap() -> None:
        limit = int(cap_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "cascope", *args],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=cap,
        env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
    )


def test_one_long_chain_of_events_is_matched_in_bounded_memory(tmp_path) -> None:
    # 20 000 detections and true events alternate along t, 1 frame apart: every event has a
    # candidate on each side, so they form one connected cluster of 20 000 x 20 000 (a dense
    # assignment matrix of it would need 3.2 GB per copy)
    n = 20_000
    pred = pd.DataFrame({"t": 2.0 * np.arange(n), "y": 0.0, "x": 0.0})
    true = pred.assign(t=pred["t"] + 1.0)
    pred.to_csv(tmp_path / "pred.csv", index=False)
    true.to_csv(tmp_path / "true.csv", index=False)
    proc = _cli(
        [
            "evaluate",
            "events",
            str(tmp_path / "pred.csv"),
            "-r",
            str(tmp_path / "true.csv"),
            "--json",
            str(tmp_path / "m.json"),
        ],
        cap_gib=3,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["matching"]["tp"] == n and doc["matching"]["f1"] == 1.0


def test_a_distance_that_pairs_everything_is_refused_before_listing_pairs(
    tmp_path, monkeypatch, capsys
) -> None:
    same = pd.DataFrame({"t": np.zeros(5000), "y": 0.0, "x": 0.0})
    same.to_csv(tmp_path / "pred.csv", index=False)
    same.to_csv(tmp_path / "true.csv", index=False)
    code, err = run_cli(
        ["evaluate", "events", str(tmp_path / "pred.csv"), "-r", str(tmp_path / "true.csv")],
        monkeypatch,
        capsys,
    )
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert "pred.csv" in lines[0] and "--max-distance" in lines[0] and "candidate pairs" in err


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [("t", "nan", "nan"), ("y", "abc", "'abc'"), ("x", "inf", "inf"), ("score", "", "nan")],
)
def test_event_tables_with_nan_or_text_coordinates_are_one_line(
    tmp_path, monkeypatch, capsys, column, value, shown
) -> None:
    good = "t,y,x,score\n1,2,3,0.5\n5,6,7,0.9\n"
    rows = good.splitlines()
    cols = rows[0].split(",")
    cells = rows[2].split(",")
    cells[cols.index(column)] = value
    (tmp_path / "pred.csv").write_text("\n".join([rows[0], rows[1], ",".join(cells)]) + "\n")
    (tmp_path / "true.csv").write_text(good)
    code, err = run_cli(
        ["evaluate", "events", str(tmp_path / "pred.csv"), "-r", str(tmp_path / "true.csv")],
        monkeypatch,
        capsys,
    )
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert "pred.csv" in lines[0] and f"column {column!r}" in lines[0] and "row 2" in lines[0]
    assert shown in lines[0]


@pytest.mark.parametrize("distance", ["0", "-1", "nan"])
def test_a_bad_max_distance_is_one_line(tmp_path, monkeypatch, capsys, distance) -> None:
    good = "t,y,x\n1,2,3\n"
    (tmp_path / "a.csv").write_text(good)
    code, err = run_cli(
        [
            "evaluate",
            "events",
            str(tmp_path / "a.csv"),
            "-r",
            str(tmp_path / "a.csv"),
            "--max-distance",
            distance,
        ],
        monkeypatch,
        capsys,
    )
    assert code == 1 and len(err.strip().splitlines()) == 1 and "--max-distance" in err


def test_class_labels_near_1e15_are_refused_without_allocating(tmp_path) -> None:
    lab = np.ones((2, 4, 4), np.int64)
    lab[0, 0, 0] = 10**15
    tifffile.imwrite(tmp_path / "pred.tif", lab, metadata={"axes": "ZYX"})
    tifffile.imwrite(tmp_path / "ref.tif", np.ones((2, 4, 4), np.int64), metadata={"axes": "ZYX"})
    args = ["evaluate", "segmentation", str(tmp_path / "pred.tif"), "-r", str(tmp_path / "ref.tif")]
    proc = _cli(args, cap_gib=3)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr[-2000:]
    assert "pred.tif" in lines[0] and "--instances" in lines[0] and "MemoryError" not in lines[0]
    # as instances the same ids are fine: they are matched by overlap, never used as indices
    proc = _cli([*args, "--instances"], cap_gib=3)
    assert proc.returncode == 0, proc.stderr[-2000:]
