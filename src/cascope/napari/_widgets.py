"""Analysis widgets: denoise, segment structures, measure. Options come from the pydantic configs.

Every widget reads a layer, calls one library function in a napari ``thread_worker`` (so the
viewer stays responsive) and adds its result as a new layer. Widgets exist only for capabilities
the library has. Event detection, built on the same :class:`_Runner`, is in ``_events.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.types import FileDialogMode
from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    Label,
    ProgressBar,
    PushButton,
    Table,
    create_widget,
)
from numpy.typing import NDArray
from superqt.utils import ensure_main_thread

from cascope.config.denoise import DeepDenoiseConfig, DeepPredictConfig
from cascope.config.denoise_classical import ClassicalDenoiseConfig
from cascope.config.segment import LabelConfig, SegmentPreprocessConfig
from cascope.napari._forms import ConfigForm
from cascope.napari._layers import META_KEY, layer_axes, voxel_size_from

if TYPE_CHECKING:
    import napari

log = logging.getLogger(__name__)

CLASSICAL, TRAIN, APPLY = "classical filter", "train on this movie", "apply a model"
_CLASSICAL_FIELDS = (
    "method",
    "mode",
    "sigma",
    "size",
    "radius",
    "spatial_sigma",
    "range_factor",
    "noise_sigma",
    "dtype",
)
_DEEP_FIELDS = ("method", "patch", "depth", "base", "training.steps", "training.batch_size")
_PREDICT_FIELDS = ("tile", "overlap", "batch_size", "tta")


class ProgressWriter:
    """Streaming destination of the library's block writers: fills an array, reports progress.

    Parameters
    ----------
    result : ndarray
        Filled block by block along its first axis.
    report : callable
        Called with the number of planes done after every block (from the worker thread).
    """

    def __init__(self, result: NDArray[Any], report: Callable[[int], None]) -> None:
        self.result = result
        self._report = report
        self._done = 0

    def write(self, block: NDArray[Any], start: int) -> None:
        """Store ``block`` at ``start`` and report progress."""
        self.result[start : start + block.shape[0]] = block
        self._done += block.shape[0]
        self._report(self._done)


class _Runner(Container):
    """Shared parts: a run button, a progress bar, a status line, one worker at a time.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer napari passes to each widget (as ``napari_viewer``).
    widgets : list
        The widget's own inputs, shown above the shared parts.
    """

    def __init__(self, viewer: napari.Viewer, widgets: list[Any]) -> None:
        self.viewer = viewer
        self.run_button = PushButton(text="Run")
        self.progress_bar = ProgressBar(value=0, min=0, max=1, label="progress")
        self.status_label = Label(value="")
        self.worker: Any = None
        super().__init__(widgets=[*widgets, self.run_button, self.progress_bar, self.status_label])
        self.run_button.changed.connect(self.run)

    @ensure_main_thread
    def _set_progress(self, value: int, total: int | None = None) -> None:
        if total is not None:
            self.progress_bar.max = total
        self.progress_bar.value = value

    @ensure_main_thread
    def _set_status(self, text: str) -> None:
        self.status_label.value = text

    def _chosen(self, choice: Any, what: str) -> Any:
        """Return the layer picked in ``choice``, or None (the status line asks for ``what``)."""
        layer = choice.value
        if layer is None:
            self.status_label.value = f"choose a {what} layer"
        return layer

    def _start(self, job: Callable[[], Any], done: Callable[[Any], None]) -> None:
        from napari.qt.threading import create_worker
        from napari.utils.notifications import show_error

        if self.worker is not None and self.worker.is_running:
            self.status_label.value = "still running"
            return
        self.run_button.enabled = False

        def finished() -> None:
            self.run_button.enabled = True

        def failed(err: BaseException) -> None:
            self.status_label.value = f"failed: {err}"
            log.error("%s", err)
            show_error(str(err))

        # Giving our own "errored" handler stops the worker from re-raising in the main thread.
        worker = create_worker(
            job, _connect={"returned": done, "errored": failed, "finished": finished}
        )
        self.worker = worker

    def run(self) -> None:
        """Start the computation in a worker thread."""
        raise NotImplementedError


def _layer_meta(layer: Any) -> tuple[str, dict[str, float]]:
    axes = layer_axes(layer.data.ndim, layer.metadata, getattr(layer, "axis_labels", None))
    return axes, voxel_size_from(axes, layer.scale, layer.metadata)


def _result_kwargs(layer: Any, name: str, axes: str) -> dict[str, Any]:
    meta = dict(layer.metadata.get(META_KEY) or {})
    meta["axes"] = axes
    return {"name": name, "scale": list(layer.scale), "metadata": {META_KEY: meta}}


class DenoiseWidget(_Runner):
    """Denoise the selected movie: a classical filter, a network trained on it, or a saved model.

    Built from the viewer napari passes, as every :class:`_Runner`.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        self.image_choice: Any = create_widget(annotation="napari.layers.Image", label="movie")
        self.mode_choice = ComboBox(choices=[CLASSICAL, TRAIN, APPLY], value=CLASSICAL, label="do")
        self.classical_form = ConfigForm(ClassicalDenoiseConfig, fields=_CLASSICAL_FIELDS)
        self.deep_form = ConfigForm(
            DeepDenoiseConfig,
            fields=_DEEP_FIELDS,
            defaults={"patch": (8, 32, 32), "depth": 2, "training": {"steps": 200}},
        )
        self.model_path = FileEdit(label="model folder", mode=FileDialogMode.EXISTING_DIRECTORY)
        self.predict_form = ConfigForm(DeepPredictConfig, fields=_PREDICT_FIELDS)
        super().__init__(
            napari_viewer,
            [
                self.image_choice,
                self.mode_choice,
                self.classical_form,
                self.deep_form,
                self.model_path,
                self.predict_form,
            ],
        )
        self.mode_choice.changed.connect(self._show_options)
        self._show_options()

    def _show_options(self) -> None:
        mode = self.mode_choice.value
        self.classical_form.visible = mode == CLASSICAL
        self.deep_form.visible = mode == TRAIN
        self.model_path.visible = mode == APPLY
        self.predict_form.visible = mode != CLASSICAL

    def run(self) -> None:
        """Denoise the chosen layer in a worker thread; the result becomes a new layer."""
        layer = self._chosen(self.image_choice, "movie")
        if layer is None:
            return
        axes, _ = _layer_meta(layer)
        data = np.asarray(layer.data)
        mode = self.mode_choice.value
        total = data.shape[0]
        self._set_progress(0, total)

        def report(done: int) -> None:
            self._set_progress(done)

        if mode == CLASSICAL:
            cfg = self.classical_form.config()
            job = _classical_job(data, axes, cfg, report)
        else:
            predict = self.predict_form.config()
            train = self.deep_form.config() if mode == TRAIN else None
            model = None if mode == TRAIN else Path(str(self.model_path.value))
            job = _deep_job(data, axes, train, model, predict, report, self._set_status)
        self.status_label.value = f"running: {mode}"

        def done(result: NDArray[Any]) -> None:
            kwargs = _result_kwargs(layer, f"{layer.name} denoised", axes)
            self.viewer.add_image(result, **kwargs)
            self.status_label.value = f"done: {kwargs['name']}"

        self._start(job, done)


def _classical_job(
    data: NDArray[Any], axes: str, cfg: ClassicalDenoiseConfig, report: Callable[[int], None]
) -> Callable[[], NDArray[Any]]:
    def job() -> NDArray[Any]:
        from cascope.denoise import denoise_movie, output_dtype

        result = np.empty(data.shape, output_dtype(data.dtype, cfg.dtype))
        block = max(1, min(cfg.block, data.shape[0] // 8 or 1))
        denoise_movie(
            data, axes=axes, config=cfg, block=block, out_writer=ProgressWriter(result, report)
        )
        return result

    return job


def _deep_job(
    data: NDArray[Any],
    axes: str,
    train: DeepDenoiseConfig | None,
    model: Path | None,
    predict: DeepPredictConfig,
    report: Callable[[int], None],
    status: Callable[[str], Any],
) -> Callable[[], NDArray[Any]]:
    def job() -> NDArray[Any]:
        from cascope.denoise import DeepDenoiser, train_denoiser
        from cascope.denoise.stream import output_dtype

        if model is None:
            status(f"training {train.method if train else ''} on the movie")
            denoiser, _ = train_denoiser(data, config=train, axes=axes)
        else:
            denoiser = DeepDenoiser.load(model)
        status("denoising")
        result = np.empty(data.shape, output_dtype(data.dtype, predict.dtype))
        block = max(1, min(predict.block, data.shape[0] // 4 or 1))
        cfg = predict.model_copy(update={"block": block})
        denoiser.predict(data, axes=axes, config=cfg, writer=ProgressWriter(result, report))
        return result

    return job


class SegmentWidget(_Runner):
    """Segment structures in a volume: preprocess, semi-automatic labels, or a trained network.

    Built from the viewer napari passes, as every :class:`_Runner`.
    """

    PREPROCESS, LABEL, NETWORK = "preprocess", "label (threshold)", "network"

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        self.image_choice: Any = create_widget(annotation="napari.layers.Image", label="volume")
        self.step_choice = ComboBox(
            choices=[self.PREPROCESS, self.LABEL, self.NETWORK], value=self.LABEL, label="step"
        )
        self.preprocess_form = ConfigForm(
            SegmentPreprocessConfig,
            fields=("slice_denoiser", "stack", "density_threshold", "tophat_radius"),
        )
        self.label_form = ConfigForm(LabelConfig)
        self.model_path = FileEdit(label="model folder", mode=FileDialogMode.EXISTING_DIRECTORY)
        super().__init__(
            napari_viewer,
            [
                self.image_choice,
                self.step_choice,
                self.preprocess_form,
                self.label_form,
                self.model_path,
            ],
        )
        self.step_choice.changed.connect(self._show_options)
        self._show_options()

    def _show_options(self) -> None:
        step = self.step_choice.value
        self.preprocess_form.visible = step == self.PREPROCESS
        self.label_form.visible = step == self.LABEL
        self.model_path.visible = step == self.NETWORK

    def run(self) -> None:
        """Run the chosen step in a worker thread; the result becomes a new layer."""
        from cascope import segment

        layer = self._chosen(self.image_choice, "volume")
        if layer is None:
            return
        axes, _ = _layer_meta(layer)
        data = np.asarray(layer.data)
        step = self.step_choice.value
        self._set_progress(0, 0)
        job: Callable[[], Any]
        if step == self.PREPROCESS:
            pre = self.preprocess_form.config()

            def job() -> Any:
                return segment.preprocess_volume(data, config=pre)[0]

        elif step == self.LABEL:
            lab = self.label_form.config()

            def job() -> Any:
                return segment.label_volume(data, **lab.model_dump())

        else:
            folder = Path(str(self.model_path.value))

            def job() -> Any:
                return segment.segment_volume(folder, data)[0]

        suffix = {self.PREPROCESS: "preprocessed", self.LABEL: "labels", self.NETWORK: "segmented"}

        def done(result: NDArray[Any]) -> None:
            kwargs = _result_kwargs(layer, f"{layer.name} {suffix[step]}", axes)
            if step == self.PREPROCESS:
                self.viewer.add_image(result, **kwargs)
            else:
                self.viewer.add_labels(result, **kwargs)
            self._set_progress(1, 1)
            self.status_label.value = f"done: {kwargs['name']}"

        self.status_label.value = f"running: {step}"
        self._start(job, done)


class MeasureWidget(_Runner):
    """Measure every labelled structure (length, branches, diameter, optional FRET ratio).

    The table is shown in the widget and stored as the labels layer's ``features``.

    Built from the viewer napari passes, as every :class:`_Runner`.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        self.labels_choice: Any = create_widget(annotation="napari.layers.Labels", label="labels")
        self.donor_choice: Any = create_widget(
            annotation="napari.layers.Image", label="donor", options={"nullable": True}
        )
        self.acceptor_choice: Any = create_widget(
            annotation="napari.layers.Image", label="acceptor", options={"nullable": True}
        )
        self.table = Table(value=[])
        super().__init__(
            napari_viewer,
            [self.labels_choice, self.donor_choice, self.acceptor_choice],
        )
        self.append(self.table)

    def run(self) -> None:
        """Measure in a worker thread; fill the table and the layer's features."""
        from cascope.morphology import measure_structures

        layer = self._chosen(self.labels_choice, "labels")
        if layer is None:
            return
        axes, voxel = _layer_meta(layer)
        labels = np.asarray(layer.data)
        vs = tuple(voxel.get(a, 1.0) for a in "ZYX")
        donor = self.donor_choice.value
        acceptor = self.acceptor_choice.value
        d = None if donor is None else np.asarray(donor.data)
        a = None if acceptor is None else np.asarray(acceptor.data)
        self._set_progress(0, 0)

        def job() -> Any:
            return measure_structures(labels, donor=d, acceptor=a, voxel_size=vs)[0]

        def done(table: Any) -> None:
            layer.features = table
            self.table.value = table.round(3).to_dict(orient="list")
            self._set_progress(1, 1)
            self.status_label.value = f"{len(table)} structures measured"

        self.status_label.value = "measuring"
        self._start(job, done)
