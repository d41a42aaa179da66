"""The benchmark harness, for real on tiny data: movies, measured children, peers, results."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from cascope.io import read

MIB = 2**20


@pytest.fixture
def h(bench):
    return bench("_harness")


@pytest.mark.parametrize("suffix", [".tif", ".ome.zarr"])
def test_write_movie_streams_blocks_in_order_and_reads_back(h, tmp_path, suffix):
    calls = []

    def frames(start, stop):
        calls.append((start, stop))
        t = np.arange(start, stop, dtype=np.float64)[:, None, None]
        return np.broadcast_to(t * 1000.0 - 500.0, (stop - start, 6, 5))  # out of uint16 range

    path = tmp_path / f"movie{suffix}"
    h.write_movie(path, (10, 6, 5), frames, block=4)
    assert calls == [(0, 4), (4, 8), (8, 10)]
    movie = read(path)
    assert movie.axes == "TYX" and movie.shape == (10, 6, 5)
    got = np.asarray(movie[...])
    assert got.dtype == np.uint16
    expected = np.clip(np.arange(10) * 1000.0 - 500.0, 0, 65535).astype(np.uint16)
    np.testing.assert_array_equal(got[:, 0, 0], expected)


def test_poisson_frames_are_seeded_shot_noise(h, tmp_path):
    background = np.full((8, 8), 50.0)
    a = h.poisson_frames(background, seed=1)(0, 200)
    b = h.poisson_frames(background, seed=1)(0, 200)
    np.testing.assert_array_equal(a, b)
    assert abs(a.mean() - 50) < 1 and abs(a.var() - 50) < 5  # Poisson: variance = mean


def test_run_measured_reports_the_childs_own_peak_not_the_benchmarks(h):
    held = np.ones(200 * MIB // 8)  # the benchmark holds a movie: it must not count
    small = h.run_measured([sys.executable, "-c", "pass"])
    assert small.returncode == 0 and small.wall_s > 0
    assert 0 < small.peak_rss_mib < 100, small.peak_rss_mib
    code = "import numpy as np, json; a = np.ones(150 * 2**20 // 8); print(json.dumps({'n': 1}))"
    big = h.run_measured([sys.executable, "-c", code])
    assert big.peak_rss_mib >= 150
    assert big.peak_rss_mib < small.peak_rss_mib + 150 + 50
    assert big.facts == {"n": 1} and big.cpu_s > 0
    del held


def test_the_kernels_peak_and_the_childs_own_agree(h):
    code = (
        "import json, numpy as np; from benchmarks._harness import own_peak_rss; "
        "a = np.ones(80 * 2**20 // 8); print(json.dumps({'vmhwm_bytes': own_peak_rss()}))"
    )
    run = h.run_measured([sys.executable, "-c", code], env=h.child_env())
    summary = run.summary()
    assert summary["vmhwm_bytes"] == run.vmhwm_bytes > 80 * MIB
    assert abs(summary["peak_rss_bytes"] - summary["vmhwm_bytes"]) < 16 * MIB


def test_run_measured_failure_logs_and_samples(h, tmp_path):
    with pytest.raises(RuntimeError, match="exited 3:\n.*boom"):
        h.run_measured([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])
    failed = h.run_measured([sys.executable, "-c", "import sys; sys.exit(3)"], check=False)
    assert failed.returncode == 3
    log = tmp_path / "child.log"
    slow = "import time; print('to the log', flush=True); time.sleep(1.2)"
    run = h.run_measured([sys.executable, "-c", slow], log_file=log, sample_s=0.2)
    assert "to the log" in log.read_text() and run.output == ""
    assert len(run.rss_samples) >= 3
    assert all(rss > 0 for _, rss in run.rss_samples)


def test_child_env_and_module_cmd_run_a_benchmark_from_anywhere(h, tmp_path):
    env = h.child_env(1, gpu=False, EXTRA="x")
    assert env["PYTHONPATH"].split(":")[0] == str(h.ROOT)
    assert env["OMP_NUM_THREADS"] == "1" and env["CUDA_VISIBLE_DEVICES"] == "" and env["EXTRA"]
    cmd = h.module_cmd("_harness")
    assert cmd == [sys.executable, "-m", "benchmarks._harness"]
    probe = "import benchmarks._harness as m, json; print(json.dumps({'p': str(m.ROOT)}))"
    run = h.run_measured([sys.executable, "-c", probe], env=env, cwd=tmp_path)
    assert run.facts == {"p": str(h.ROOT)}


def test_own_peak_rss_is_this_process(h):
    assert h.own_peak_rss() > 10 * MIB


def test_table_and_results(h, tmp_path):
    lines = h.table(["a", "b"], [[1, "x"], ["", 2.5]], align="rl")
    assert lines == ["| a | b |", "|---:|---|", "| 1 | x |", "|  | 2.5 |"]
    with pytest.raises(ValueError, match="1 cells in a table of 2"):
        h.table(["a", "b"], [["only"]])
    doc = {"n": np.int64(3), "v": np.float32(0.5), "a": np.arange(3), "p": tmp_path}
    js, md = h.write_results("demo", doc, lines, out=tmp_path / "res")
    assert json.loads(js.read_text()) == {"n": 3, "v": 0.5, "a": [0, 1, 2], "p": str(tmp_path)}
    assert md.read_text() == "\n".join(lines) + "\n"
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == ["demo.json", "demo.md"]


def test_scores_are_written_one_way(h):
    row = {
        "si_psnr": 32.333,
        "si_psnr_gain": 10.08,
        "psnr": 32.31,
        "ssim": 0.8491,
        "trace_corr": 0.5,
    }
    assert h.score_cells(row, list(row)) == ["32.33", "+10.08", "32.31", "0.849", "0.500"]


def test_quick_runs_never_write_the_committed_results(h, tmp_path):
    scratch = h.quick_out(True)
    assert scratch.is_dir() and scratch != h.RESULTS and not any(scratch.iterdir())
    assert h.quick_out(False) == h.RESULTS
    assert h.quick_out(True, tmp_path) == tmp_path


def test_peer_python_given_then_environment_then_its_venv(h, monkeypatch, tmp_path):
    peer = h.Peer("no-such-peer", "CASCOPE_TEST_PEER_PYTHON", ("pkg",))
    monkeypatch.delenv("CASCOPE_TEST_PEER_PYTHON", raising=False)
    assert peer.venv == h.PEER_VENVS / "no-such-peer"
    assert peer.python() is None
    monkeypatch.setenv("CASCOPE_TEST_PEER_PYTHON", "/env/python")
    assert peer.python() == "/env/python"
    assert peer.python("/given/python") == "/given/python"


def test_local_cluster_runs_work_in_worker_processes(h):
    import os

    with h.local_cluster(1) as (cluster, client):
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        assert client.submit(os.getpid).result(timeout=60) != os.getpid()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_killed_benchmark_leaves_no_command_running(h, tmp_path, how):
    import os
    import signal
    import subprocess
    import time

    pid_file = tmp_path / "pid"
    sleeper = (
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    )
    bench = (
        "import sys; from benchmarks._harness import run_measured; "
        f"run_measured([sys.executable, '-c', {sleeper!r}])"
    )
    proc = subprocess.Popen([sys.executable, "-c", bench], env=h.child_env())
    deadline = time.monotonic() + 60
    while not (pid_file.is_file() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    child = int(pid_file.read_text())
    proc.send_signal(getattr(signal, how))
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    gone = not Path(f"/proc/{child}").exists()
    if not gone:
        os.kill(child, signal.SIGKILL)
    assert gone, f"the command outlived its benchmark ({how})"
