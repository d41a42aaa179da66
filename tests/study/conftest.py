"""Fixtures of the study tests: tiny simulated mSCT recordings and a real Dask LocalCluster."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tifffile

from cascope.simulate import mscts

#: Pipeline configuration of the tests: the threshold detector on the raw movie, no denoising.
CONFIG: dict[str, Any] = {"qc": False, "denoise": {"method": "none"}}

#: Planted effect: events of "ltp" recordings are about 3x brighter than those of "control".
AMPLITUDE = {"control": (0.3, 0.6), "ltp": (1.5, 2.5)}


def write_recording(path: Path, *, seed: int, condition: str, n_frames: int = 60) -> Path:
    """Write a small simulated mSCT movie (uint16 TIFF) with many events."""
    r = mscts(
        seed=seed,
        n_frames=n_frames,
        shape=(48, 48),
        amplitude=AMPLITUDE[condition],
        event_rate=30.0,
    )
    tifffile.imwrite(path, r.noisy)
    return path


@pytest.fixture(scope="session")
def six_recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six recordings, three per condition, and their manifest ``manifest.csv``."""
    root = tmp_path_factory.mktemp("study-data")
    lines = ["path,condition,batch"]
    for i in range(6):
        condition = "control" if i % 2 == 0 else "ltp"
        write_recording(root / f"rec{i}.tif", seed=10 + i, condition=condition)
        lines.append(f"rec{i}.tif,{condition},b{i // 3}")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="session")
def client() -> Iterator[Any]:
    """A real LocalCluster: two single-threaded worker processes on 127.0.0.1."""
    from distributed import Client, LocalCluster

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c
