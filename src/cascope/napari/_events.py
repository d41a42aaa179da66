"""Detect calcium events in the selected movie: event labels, centroid points and the event table.

The widget calls the library exactly as ``cascope detect`` does: a saved event model
(:func:`~cascope.events.load_event_model` + :func:`~cascope.events.detect_events`) or, without
one, the classical intensity-threshold detector
(:func:`~cascope.events.detect_threshold_baseline`); optionally every event feature
(:func:`~cascope.events.event_features`). Options come from
:class:`~cascope.config.events.DetectConfig`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from magicgui.types import FileDialogMode
from magicgui.widgets import CheckBox, ComboBox, FileEdit, PushButton, Table, create_widget
from numpy.typing import NDArray
from pydantic import ValidationError

from cascope.config.events import DetectConfig
from cascope.napari._forms import ConfigForm
from cascope.napari._layers import META_KEY
from cascope.napari._widgets import _result_kwargs, _Runner

if TYPE_CHECKING:
    import napari

log = logging.getLogger(__name__)

NETWORK, THRESHOLD = "3D U-Net (model folder)", "intensity threshold (no model)"
#: Options that matter to the intensity-threshold detector; the rest configure the network.
_THRESHOLD_FIELDS = ("threshold", "min_size")
_THRESHOLD_TIPS = {
    NETWORK: "Event probability threshold; 'auto' uses the model's own.",
    THRESHOLD: "Robust z-score threshold; 'auto' uses the detector's default.",
}
#: Full passes the library makes over the movie: two to measure the normalisation, one to detect.
_PASSES = 3


class ReadProgress:
    """A (T, Y, X) array-like that reports how many frames the library has read from it.

    :func:`~cascope.events.detect_events` streams the movie in time blocks (two passes for the
    normalisation, one for detection), so frames read is a progress measure that needs no hook
    in the library. Reads may come from the library's prefetch thread.

    Parameters
    ----------
    data : array-like
        The movie (ndarray, dask array, memmap).
    report : callable
        Called with the running count of frames read.
    """

    def __init__(self, data: Any, report: Callable[[int], None]) -> None:
        self.data = data
        self.shape = tuple(int(s) for s in data.shape)
        self.ndim = len(self.shape)
        self.dtype = np.dtype(data.dtype)
        self._report = report
        self._read = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> Any:
        out = self.data[key]
        first = key[0] if isinstance(key, tuple) else key
        n = len(range(*first.indices(self.shape[0]))) if isinstance(first, slice) else 1
        self._count(n)
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> NDArray[Any]:
        out = np.asarray(self.data, dtype=dtype)
        self._count(self.shape[0])
        return out

    def _count(self, frames: int) -> None:
        with self._lock:
            self._read += frames
            done = self._read
        self._report(done)


def _display_table(table: pd.DataFrame) -> pd.DataFrame:
    """Drop list-valued columns (the per-frame profile) for the layers and the table view."""
    if table.empty:
        # a table of no events may come without columns (event_features)
        return pd.DataFrame({c: pd.Series(dtype=float) for c in ("id", "t", "y", "x")})
    keep = [c for c in table.columns if not table[c].map(lambda v: isinstance(v, list)).any()]
    return table[keep]


class DetectEventsWidget(_Runner):
    """Detect calcium events in a (T, Y, X) movie with a trained model or a threshold.

    Adds a labels layer of the event instances, a points layer at the weighted centroids
    ``t, y, x`` (with the event table as its ``features``), and shows the table in the widget;
    choosing a row moves the viewer to that event.

    Built from the viewer napari passes, as every :class:`_Runner`.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        self.image_choice: Any = create_widget(annotation="napari.layers.Image", label="movie")
        self.method_choice = ComboBox(choices=[NETWORK, THRESHOLD], value=NETWORK, label="detector")
        self.model_path = FileEdit(label="model folder", mode=FileDialogMode.EXISTING_DIRECTORY)
        self.detect_form = ConfigForm(DetectConfig)
        self.features_check = CheckBox(
            value=False,
            label="all features",
            tooltip="Measure kinetics, size, shape and neighbourhood of every event.",
        )
        self.table = Table(value=[])
        self.table.min_height = 200
        self.save_button = PushButton(text="Save table…", enabled=False)
        self.events: pd.DataFrame | None = None
        super().__init__(
            napari_viewer,
            [
                self.image_choice,
                self.method_choice,
                self.model_path,
                self.detect_form,
                self.features_check,
            ],
        )
        self.extend([self.table, self.save_button])
        self.method_choice.changed.connect(self._show_options)
        self.save_button.changed.connect(self._ask_save)
        self.table.native.itemSelectionChanged.connect(self._go_to_selected)
        self._show_options()

    def _show_options(self) -> None:
        method = self.method_choice.value
        self.model_path.visible = method == NETWORK
        for field in self.detect_form:
            field.visible = method == NETWORK or field.name in _THRESHOLD_FIELDS
        self.detect_form["threshold"].tooltip = _THRESHOLD_TIPS[method]

    def run(self) -> None:
        """Detect in a worker thread; add the labels and points layers and fill the table."""
        layer = self._chosen(self.image_choice, "movie")
        if layer is None:
            return
        data = layer.data[0] if layer.multiscale else layer.data
        if data.ndim != 3:
            self.status_label.value = f"needs a (T, Y, X) movie, got {data.ndim} dimensions"
            return
        try:
            cfg: DetectConfig = self.detect_form.config()
        except ValidationError as err:
            self.status_label.value = f"invalid options: {err.errors()[0]['msg']}"
            return
        features = bool(self.features_check.value)
        rate = (layer.metadata.get(META_KEY) or {}).get("frame_rate")
        total = _PASSES * int(data.shape[0])
        self._set_progress(0, total)

        def report(done: int) -> None:
            self._set_progress(min(done, total - 1))

        job: Callable[[], tuple[NDArray[np.uint32], pd.DataFrame]]
        if self.method_choice.value == NETWORK:
            folder = Path(str(self.model_path.value))
            job = _network_job(data, folder, cfg, features, rate, report, self._set_status)
        else:
            job = _threshold_job(data, cfg, features, rate)
        self.status_label.value = f"running: {self.method_choice.value}"

        def done(result: tuple[NDArray[np.uint32], pd.DataFrame]) -> None:
            labels, table = result
            self._show(layer, "TYX", labels, table)
            self._set_progress(total, total)
            self.status_label.value = f"{len(table)} events detected"

        self._start(job, done)

    def _show(self, layer: Any, axes: str, labels: NDArray[np.uint32], table: pd.DataFrame) -> None:
        self.events = table
        shown = _display_table(table)
        kwargs = _result_kwargs(layer, f"{layer.name} events", axes)
        lab_layer = self.viewer.add_labels(labels, **kwargs)
        lab_layer.features = shown.assign(index=shown["id"])
        kwargs = _result_kwargs(layer, f"{layer.name} event centroids", axes)
        self.viewer.add_points(
            shown[["t", "y", "x"]].to_numpy(dtype=float).reshape(-1, 3),
            features=shown,
            size=6,
            face_color="transparent",
            border_color="yellow",
            border_width=0.15,
            **kwargs,
        )
        self.table.value = shown.round(3).to_dict(orient="list")
        self.save_button.enabled = True

    def _go_to_selected(self) -> None:
        rows = sorted({i.row() for i in self.table.native.selectedIndexes()})
        if not rows or self.events is None or rows[0] >= len(self.events):
            return
        layer = self.image_choice.value
        first = self.viewer.dims.ndim - 3
        if layer is None or first < 0:
            return
        event = self.events.iloc[rows[0]]
        t, y, x = layer.data_to_world([float(event[c]) for c in "tyx"])
        self.viewer.dims.set_point(first, t)
        self.viewer.camera.center = (y, x)

    def _ask_save(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(
            self.native, "Save the event table", "events.csv", "Tables (*.csv *.parquet)"
        )
        if path:
            self.save_table(Path(path))

    def save_table(self, path: Path) -> None:
        """Write the last event table as CSV or Parquet (by suffix), replacing ``path``."""
        from cascope.events import write_table

        if self.events is None:
            raise RuntimeError("no events detected yet")
        write_table(self.events, path, force=True)
        self.status_label.value = f"saved {path.name}"


def _network_job(
    data: Any,
    folder: Path,
    cfg: DetectConfig,
    features: bool,
    frame_rate: float | None,
    report: Callable[[int], None],
    status: Callable[[str], Any],
) -> Callable[[], tuple[NDArray[np.uint32], pd.DataFrame]]:
    def job() -> tuple[NDArray[np.uint32], pd.DataFrame]:
        from cascope.events import detect_events, event_features, load_event_model

        status("loading the model")
        model = load_event_model(folder, device="cpu")
        status("detecting events")
        labels = np.zeros(tuple(int(s) for s in data.shape), np.uint32)
        table = detect_events(ReadProgress(data, report), model, config=cfg, labels_out=labels)
        if features:
            status("measuring features")
            table = event_features(data, labels, frame_rate=frame_rate)
        return labels, table

    return job


def _threshold_job(
    data: Any, cfg: DetectConfig, features: bool, frame_rate: float | None
) -> Callable[[], tuple[NDArray[np.uint32], pd.DataFrame]]:
    def job() -> tuple[NDArray[np.uint32], pd.DataFrame]:
        from cascope.events import detect_threshold_baseline, event_features

        movie = np.asarray(data)
        k = {} if cfg.threshold == "auto" else {"k": float(cfg.threshold)}
        labels, table = detect_threshold_baseline(movie, min_size=cfg.min_size, **k)
        if features:
            table = event_features(movie, labels, frame_rate=frame_rate)
        return labels, table

    return job
