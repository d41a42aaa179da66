"""One movie over a Dask cluster: blocks with halos written by the workers equal one process."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cascope import io
from cascope.config.denoise_classical import ClassicalDenoiseConfig
from cascope.denoise.stream import denoise_file
from cascope.study import denoise_distributed
from cascope.study._blocks import BlockTask
from cascope.study.movie import denoise_block


def _chunk_digests(store: Path) -> dict[str, str]:
    return {
        p.relative_to(store).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(store.rglob("*"))
        if p.is_file() and not p.name.startswith(".z") and p.name != "zarr.json"
    }


def test_distributed_denoise_equals_one_process_bitwise(client: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    movie = rng.poisson(40, (53, 40, 36)).astype(np.uint16)
    source = io.write(tmp_path / "movie.ome.zarr", movie, axes="TYX", frame_rate=10.0)
    cfg = ClassicalDenoiseConfig.model_validate(
        {"method": "gaussian", "mode": "3d", "sigma_stack": 1.5, "block": 8, "dtype": "float32"}
    )
    local = denoise_file(source, tmp_path / "local.ome.zarr", config=cfg)
    out, blocks = denoise_distributed(source, tmp_path / "dist.ome.zarr", config=cfg, client=client)
    a, b = io.read(local), io.read(out)
    assert b.axes == "TYX" and b.frame_rate == 10.0 and b.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(a[:]), np.asarray(b[:]))  # bitwise
    assert float(np.asarray(b[:]).std()) < float(movie.std()) / 2  # it did filter
    # seven blocks of 8 planes; the 3-D filter needed a halo; both workers took part
    assert [(r["start"], r["stop"]) for r in blocks][:2] == [(0, 8), (8, 16)]
    assert len(blocks) == 7 and len({r["pid"] for r in blocks}) == 2
    lo, hi = blocks[2]["context"]
    assert lo < 16 and hi > 24
    # a block run again (as after a lost worker) writes the same bytes
    before = _chunk_digests(out)
    task = BlockTask(str(source), None, None, (16, 24), blocks[2]["context"], str(out / "0"))
    client.submit(denoise_block, cfg.model_dump(mode="json"), task, pure=False).result()
    assert _chunk_digests(out) == before
    # one chunk per block along time: every worker wrote whole chunks of its own
    import zarr

    assert zarr.open_array(str(out / "0"), mode="r").chunks[0] == 8


@pytest.mark.slow
def test_denoise_cli_on_a_scheduler(client: Any, tmp_path: Path) -> None:
    movie = np.random.default_rng(1).poisson(30, (20, 24, 24)).astype(np.uint16)
    source = io.write(tmp_path / "m.tif", movie, axes="TYX")
    out = tmp_path / "d.ome.zarr"
    proc = subprocess.run(
        [sys.executable, "-m", "cascope", "denoise", str(source), "-o", str(out)]
        + ["--block", "5", "--scheduler", client.scheduler.address],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    expected = denoise_file(source, tmp_path / "l.ome.zarr", config=ClassicalDenoiseConfig())
    np.testing.assert_array_equal(np.asarray(io.read(out)[:]), np.asarray(io.read(expected)[:]))
