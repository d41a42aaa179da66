"""``cascope detect`` keeps the label movie on disk; features read it event by event."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import zarr
from scipy import ndimage
from typer.testing import CliRunner

from cascope.cli import app
from cascope.config.events import DetectConfig, EventModelConfig, EventTrainConfig
from cascope.config.training import TrainingConfig
from cascope.events.features import _event_boxes, event_features, read_table
from cascope.events.train import detect_events, train_event_detector
from cascope.io import read, write
from cascope.simulate import mscts

BLOCK = 8


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("streamed")
    sim = mscts(seed=2, n_frames=40, shape=(32, 32), event_rate=60.0)
    cfg = EventTrainConfig(
        window=(8, 16, 16),
        cache=(8, 16, 16),
        model=EventModelConfig(depth=2, base=4),
        training=TrainingConfig(steps=4, batch_size=2, val_every=10_000),
        threshold_method="fixed",
    )
    model, _ = train_event_detector(
        [sim.noisy], [sim.labels], config=cfg, output=root / "model", device="cpu"
    )
    movie = root / "movie.tif"
    write(movie, sim.noisy, axes="TYX")
    # a threshold that leaves a few events for this barely trained network
    probe = np.zeros(sim.noisy.shape, np.uint32)
    for q in (0.98, 0.95, 0.9, 0.8, 0.6):
        thr = float(np.quantile(_probabilities(model, sim.noisy), q))
        ref_cfg = DetectConfig(threshold=thr, block=BLOCK, device="cpu")
        probe[:] = 0
        table = detect_events(sim.noisy, model, config=ref_cfg, labels_out=probe)
        if len(table) >= 3:
            break
    assert len(table) >= 3, "the tiny network gave too few events to compare"
    return root, sim.noisy, thr, table, probe.copy()


def _probabilities(model, data):  # type: ignore[no-untyped-def]
    from cascope.events.train import probability

    return probability(model.network, data, device="cpu", lam=model.als_lam, p=model.als_p)


def _detect(root, thr, out: str, *extra: str):  # type: ignore[no-untyped-def]
    res = CliRunner().invoke(
        app,
        [
            "detect",
            str(root / "movie.tif"),
            "--model",
            str(root / "model"),
            "-o",
            str(root / out),
            "--threshold",
            repr(thr),
            "--block",
            str(BLOCK),
            "--device",
            "cpu",
            *extra,
        ],
    )
    assert res.exit_code == 0, res.output
    return read_table(root / out)


def test_labels_out_streams_to_disk_and_matches_in_memory(trained) -> None:  # type: ignore[no-untyped-def]
    root, _, thr, ref_table, ref_labels = trained
    table = _detect(root, thr, "ev.csv", "--labels-out", str(root / "lab.tif"))
    pd.testing.assert_frame_equal(table, ref_table, check_dtype=False, rtol=1e-9)
    labels = np.asarray(read(root / "lab.tif"))
    assert labels.dtype == np.uint32
    np.testing.assert_array_equal(labels, ref_labels)
    # the scratch label store beside the output is gone
    assert not [p for p in root.iterdir() if p.name.startswith(".")]


def test_features_from_disk_labels_match_in_memory(trained) -> None:  # type: ignore[no-untyped-def]
    root, data, thr, _, ref_labels = trained
    table = _detect(root, thr, "feat.parquet", "--features")
    expected = event_features(data, ref_labels)
    assert len(table) == len(expected) > 0
    pd.testing.assert_frame_equal(table, expected, check_dtype=False, rtol=1e-9)


def test_event_features_on_a_chunked_store_equal_in_memory(trained, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, data, _, _, ref_labels = trained
    store = zarr.create_array(
        str(tmp_path / "l.zarr"), shape=ref_labels.shape, chunks=(5, 16, 16), dtype="uint32"
    )
    store[:] = ref_labels
    # blocks shorter than the events, so boxes are merged across blocks
    boxes = _event_boxes(store, block=3)
    assert boxes == list(ndimage.find_objects(ref_labels))
    pd.testing.assert_frame_equal(
        event_features(data, store), event_features(data, ref_labels), rtol=0
    )


def test_features_command_reads_labels_lazily(trained) -> None:  # type: ignore[no-untyped-def]
    root, data, _, _, ref_labels = trained
    write(root / "ref-labels.tif", ref_labels, axes="TYX", force=True)
    out = root / "cmd-features.parquet"
    res = CliRunner().invoke(
        app, ["features", str(root / "movie.tif"), str(root / "ref-labels.tif"), "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    expected = event_features(data, ref_labels)
    assert len(expected) > 0
    pd.testing.assert_frame_equal(read_table(out), expected, check_dtype=False, rtol=1e-9)
