"""One movie's events over a Dask cluster: the same table and labels as one process."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from cascope import io
from cascope.config.events import DetectConfig
from cascope.events.detect import detect_threshold_baseline, label_events
from cascope.events.train import detect_events, load_event_model, probability
from cascope.simulate import mscts
from cascope.study import detect_distributed
from cascope.study.detect import events_block, labels_block

#: Blocks of 16 frames with an 8-frame halo: a 60-frame movie has borders at 16, 32 and 48.
CONFIG = DetectConfig(tile=(16, 32, 32), block=16, halo=8, device="cpu")


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    # the workers run one thread each (OMP_NUM_THREADS=1); the reference run does the same
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def tiny_event_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny event U-Net (depth 2, 4 channels) trained briefly on one simulated movie."""
    from cascope.config.events import EventTrainConfig
    from cascope.events.train import train_event_detector

    sim = mscts(seed=1, n_frames=48, shape=(32, 32), event_rate=30.0, photons=10.0)
    folder = tmp_path_factory.mktemp("event-model") / "model"
    config = EventTrainConfig.model_validate(
        {
            "window": (16, 32, 32),
            "cache": (24, 32, 32),
            "model": {"depth": 2, "base": 4},
            "pu": {"pos_weight": 2.0, "unlabeled_ratio": 1.0},
            "training": {"steps": 100, "batch_size": 2, "val_every": 10_000, "lr": 2e-3},
        }
    )
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_event_detector([sim.noisy], [sim.labels], config=config, output=folder, device="cpu")
    finally:
        torch.set_num_threads(old)
    return folder


def _digests(store: Path) -> dict[str, str]:
    return {
        p.relative_to(store).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(store.rglob("*"))
        if p.is_file() and not p.name.startswith(".z") and p.name != "zarr.json"
    }


def test_distributed_detection_equals_one_process(
    client: Any, tiny_event_model: Path, tmp_path: Path
) -> None:
    sim = mscts(seed=4, n_frames=60, shape=(48, 48), event_rate=30.0, photons=10.0)
    source = io.write(tmp_path / "movie.ome.zarr", sim.noisy, axes="TYX", frame_rate=10.0)
    em = load_event_model(tiny_event_model)
    # whatever the training trajectory, some quantile of the probabilities splits into events:
    # take the one that gives the most
    prob = probability(em.network, sim.noisy, tile=CONFIG.tile, device="cpu")
    levels = [float(np.quantile(prob, q)) for q in (0.9, 0.95, 0.98, 0.99, 0.995)]
    best = max(levels, key=lambda thr: len(label_events(prob, threshold=thr)[1]))
    cfg = CONFIG.model_copy(update={"threshold": best})

    labels = np.zeros(sim.noisy.shape, np.uint32)
    local = detect_events(io.read(source), em, config=cfg, labels_out=labels)
    table = detect_distributed(
        source,
        tmp_path / "events.csv",
        model=tiny_event_model,
        client=client,
        config=cfg,
        labels_path=tmp_path / "labels.ome.zarr",
        probability_path=tmp_path / "prob.ome.zarr",
    )

    assert len(local) >= 3
    pd.testing.assert_frame_equal(table, local)
    assert pd.read_csv(tmp_path / "events.csv")["id"].tolist() == local["id"].tolist()
    dist_labels = np.asarray(io.read(tmp_path / "labels.ome.zarr")[:])
    np.testing.assert_array_equal(dist_labels, labels)  # the same ids, voxel for voxel
    assert set(np.unique(labels)) - {0} == set(local["id"])
    assert not list(tmp_path.glob(".events.csv.*"))  # the probability scratch is gone

    # a labels block run again (as after a lost worker) writes the same bytes
    store = str(tmp_path / "prob.ome.zarr" / "0")
    target = tmp_path / "labels.ome.zarr"
    before = _digests(target)
    offsets = [0, *np.cumsum([((local["t_start"] // 16) == k).sum() for k in range(4)]).tolist()]
    doc = cfg.model_dump(mode="json")
    client.submit(
        labels_block, store, str(target / "0"), 2, doc, cfg.threshold, offsets, pure=False
    ).result()
    assert _digests(target) == before


def test_distributed_threshold_detector_equals_one_process(client: Any, tmp_path: Path) -> None:
    sim = mscts(seed=11, n_frames=60, shape=(40, 44), event_rate=60.0, photons=10.0)
    source = io.write(tmp_path / "movie.ome.zarr", sim.noisy, axes="TYX")
    labels, local = detect_threshold_baseline(np.asarray(io.read(source)[:]), k=4.0)
    cfg = DetectConfig(threshold=4.0, block=16, halo=8)
    table = detect_distributed(
        source,
        tmp_path / "events.parquet",
        model=None,
        client=client,
        config=cfg,
        labels_path=tmp_path / "labels.ome.zarr",
        region=16,  # 3 x 3 regions of all 60 frames: z-scores across region borders
    )
    assert len(local) >= 5
    assert (local["t_end"] - local["t_start"]).max() <= cfg.halo  # no event is cut
    crossing = sum(((local["t_start"] < b) & (local["t_end"] > b)).sum() for b in (16, 32, 48))
    assert crossing >= 1  # an event across a block border, counted once below
    pd.testing.assert_frame_equal(table, local)
    np.testing.assert_array_equal(np.asarray(io.read(tmp_path / "labels.ome.zarr")[:]), labels)


def test_event_across_a_block_border_is_counted_once(client: Any, tmp_path: Path) -> None:
    from cascope.io.zarr import ZarrBlockWriter

    shape = (48, 20, 20)
    scores = np.zeros(shape, np.float32)
    scores[13:21, 5:10, 5:10] = 0.9  # frames 13-20: across the border at 16
    scores[30:34, 12:16, 12:16] = 0.8  # inside block 1
    ZarrBlockWriter(tmp_path / "p.ome.zarr", shape, np.float32, axes="TYX", chunks=(16, 20, 20))
    store = tmp_path / "p.ome.zarr" / "0"
    import zarr

    zarr.open_array(str(store), mode="r+")[:] = scores
    doc = CONFIG.model_dump(mode="json")
    found = client.gather([client.submit(events_block, str(store), k, doc, 0.5) for k in range(3)])
    per_block = [len(r["rows"]) for r in found]
    assert per_block == [1, 1, 0]  # block 0 owns the crossing event, block 1 only its own
    row = found[0]["rows"][0]
    assert (row["t_start"], row["t_end"], row["area"]) == (13, 21, 8 * 25)

    ZarrBlockWriter(tmp_path / "l.ome.zarr", shape, np.uint32, axes="TYX", chunks=(16, 20, 20))
    target = str(tmp_path / "l.ome.zarr" / "0")
    client.gather(
        [client.submit(labels_block, str(store), target, k, doc, 0.5, [0, 1, 2]) for k in range(3)]
    )
    labels = np.asarray(zarr.open_array(target, mode="r")[:])
    assert set(np.unique(labels[13:21, 5:10, 5:10])) == {1}  # one id on both sides of 16
    assert set(np.unique(labels[30:34, 12:16, 12:16])) == {2}
    assert int((labels > 0).sum()) == 8 * 25 + 4 * 16


def test_detect_cli_refuses_what_a_cluster_cannot_do(tmp_path: Path) -> None:
    movie = mscts(seed=2, n_frames=20, shape=(24, 24)).noisy
    source = io.write(tmp_path / "m.tif", movie, axes="TYX")
    base = [sys.executable, "-m", "cascope", "detect", str(source), "-o", str(tmp_path / "e.csv")]
    cluster = ["--scheduler", "tcp://127.0.0.1:1", "--features"]
    proc = subprocess.run(base + cluster, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "cascope features" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "e.csv").exists()


@pytest.mark.slow
def test_detect_cli_on_a_scheduler(client: Any, tiny_event_model: Path, tmp_path: Path) -> None:
    sim = mscts(seed=5, n_frames=40, shape=(32, 32), event_rate=30.0, photons=10.0)
    source = io.write(tmp_path / "m.ome.zarr", sim.noisy, axes="TYX")
    cmd = [sys.executable, "-m", "cascope", "detect", str(source), "--model", str(tiny_event_model)]
    cmd += ["--block", "16", "--threshold", "0.5", "--scheduler", client.scheduler.address]
    tif = subprocess.run(
        [*cmd, "-o", str(tmp_path / "a.csv"), "--labels-out", str(tmp_path / "l.tif")],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert tif.returncode == 1 and ".ome.zarr" in tif.stderr
    proc = subprocess.run(
        [*cmd, "-o", str(tmp_path / "e.csv"), "--labels-out", str(tmp_path / "l.ome.zarr")],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    em = load_event_model(tiny_event_model)
    cfg = DetectConfig(threshold=0.5, block=16)
    labels = np.zeros(sim.noisy.shape, np.uint32)
    local = detect_events(io.read(source), em, config=cfg, labels_out=labels)
    table = pd.read_csv(tmp_path / "e.csv")
    assert len(table) == len(local)
    np.testing.assert_allclose(table[["t", "y", "x"]].to_numpy(), local[["t", "y", "x"]].to_numpy())
    np.testing.assert_array_equal(np.asarray(io.read(tmp_path / "l.ome.zarr")[:]), labels)
