"""The detect-events widget end to end: a tiny trained model, the threshold detector, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cascope.napari._events import NETWORK, THRESHOLD, DetectEventsWidget

pytestmark = pytest.mark.napari

SIM = {"n_frames": 48, "shape": (48, 48), "event_rate": 30.0, "photons": 10.0}


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def event_model(tmp_path_factory, _one_torch_thread) -> Path:
    """A small PU U-Net trained briefly (about 5 s on one core) on one simulated movie."""
    import torch

    from cascope.config.events import EventTrainConfig
    from cascope.config.training import TrainingConfig
    from cascope.events import train_event_detector
    from cascope.simulate import mscts

    train = mscts(seed=1, **SIM)
    cfg = EventTrainConfig(
        window=(16, 32, 32),
        cache=(24, 48, 48),
        model={"depth": 2, "base": 8},
        pu={"pos_weight": 2.0},
        training=TrainingConfig(steps=60, batch_size=2, val_every=10_000, lr=3e-3),
    )
    folder = tmp_path_factory.mktemp("events") / "model"
    # the trainer seeds its sampling but not the network's initial weights
    torch.manual_seed(0)
    train_event_detector([train.noisy], [train.labels], config=cfg, output=folder, device="cpu")
    return folder


@pytest.fixture
def sim():
    from cascope.simulate import mscts

    return mscts(seed=4, **SIM)


def _add_movie(viewer, sim, **meta):
    return viewer.add_image(
        sim.noisy, name="msct", metadata={"cascope": {"axes": "TYX", **meta}}, scale=(1, 0.2, 0.2)
    )


def _check_layers(viewer, widget, sim) -> tuple[np.ndarray, object]:
    """Shared checks: one label id, one point and one table row per event, all consistent."""
    labels = viewer.layers["msct events"]
    points = viewer.layers["msct event centroids"]
    table = widget.events
    lab = np.asarray(labels.data)
    assert lab.shape == sim.noisy.shape and np.issubdtype(lab.dtype, np.integer)
    assert len(table) > 0
    assert set(np.unique(lab[lab > 0]).tolist()) == set(table["id"].tolist())
    # the points sit at the table's weighted centroids, inside their event's bounding box
    np.testing.assert_allclose(points.data, table[["t", "y", "x"]].to_numpy(float))
    for axis in "tyx":
        assert (table[f"{axis}_start"] <= table[axis]).all()
        assert (table[axis] < table[f"{axis}_end"]).all()
    assert list(points.features["id"]) == list(table["id"])
    assert tuple(labels.scale) == tuple(points.scale) == (1.0, 0.2, 0.2)
    assert widget.table.shape[0] == len(table)
    # labelled voxels lie on the simulated events far more often than chance
    fg = lab > 0
    assert (sim.labels[fg] > 0).mean() > 5 * (sim.labels > 0).mean()
    return lab, table


def test_detect_events_with_a_model(
    make_napari_viewer, run_widget, event_model, sim, screenshot, tmp_path
):
    from cascope.events import read_table
    from cascope.metrics import match_events

    viewer = make_napari_viewer(show=True)
    layer = _add_movie(viewer, sim)
    widget = DetectEventsWidget(viewer)
    dock = viewer.window.add_dock_widget(widget, name="Detect events")
    widget.image_choice.value = layer
    assert widget.method_choice.value == NETWORK
    widget.model_path.value = event_model
    widget.detect_form.tile.value = "16, 48, 48"
    widget.detect_form.halo.value = 16
    widget.detect_form.block.value = 20  # several streamed blocks
    ticks = run_widget(widget)
    assert widget.status_label.value.endswith("events detected"), widget.status_label.value
    assert ticks > 0
    assert widget.progress_bar.value == widget.progress_bar.max == 3 * sim.noisy.shape[0]
    lab, table = _check_layers(viewer, widget, sim)
    assert match_events(table, sim.events).precision > 0.5

    # choosing a row of the table moves the viewer to that event's frame
    last = len(table) - 1
    widget.table.native.selectRow(last)
    assert viewer.dims.current_step[0] == round(float(table["t"].iloc[last]))

    out = tmp_path / "events.csv"
    widget.save_table(out)
    np.testing.assert_allclose(read_table(out)[["t", "y", "x"]], table[["t", "y", "x"]])

    widget.table.native.selectRow(int(table["area"].to_numpy().argmax()))
    screenshot(viewer, "events", dock)


def test_detect_events_threshold_with_features(make_napari_viewer, run_widget, sim):
    viewer = make_napari_viewer()
    layer = _add_movie(viewer, sim, frame_rate=20.0)
    widget = DetectEventsWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Detect events")
    widget.image_choice.value = layer
    widget.method_choice.value = THRESHOLD
    # only the options of the threshold detector stay visible
    assert widget.model_path.native.isHidden() and widget.detect_form.tile.native.isHidden()
    assert not widget.detect_form.threshold.native.isHidden()
    widget.detect_form.threshold.value = "3.5"
    widget.features_check.value = True
    run_widget(widget)
    _, table = _check_layers(viewer, widget, sim)
    assert {"duration_s", "dff_peak", "rise_time_frames"} <= set(table.columns)
    np.testing.assert_allclose(table["duration_s"], table["duration_frames"] / 20.0)
    # the per-frame profile stays in the widget's table, not in the layer features
    assert "profile" in table and "profile" not in viewer.layers["msct events"].features
    # a stricter threshold finds fewer events
    widget.detect_form.threshold.value = "8"
    run_widget(widget)
    assert len(widget.events) < len(table)


def test_detect_events_errors(make_napari_viewer, run_widget, sim, tmp_path):
    viewer = make_napari_viewer()
    layer = _add_movie(viewer, sim)
    widget = DetectEventsWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Detect events")
    widget.image_choice.value = layer
    widget.model_path.value = tmp_path  # not a model folder
    run_widget(widget)
    assert widget.status_label.value.startswith("failed")
    assert "msct events" not in viewer.layers and widget.events is None

    widget.detect_form.tile.value = "16, 48"  # not (T, Y, X)
    before = widget.worker
    widget.run()
    assert widget.worker is before and widget.status_label.value.startswith("invalid options")

    volume = viewer.add_image(np.zeros((2, 4, 8, 8), np.float32), name="4d")
    widget.image_choice.value = volume
    widget.run()
    assert widget.worker is before and "(T, Y, X)" in widget.status_label.value
