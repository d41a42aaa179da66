"""Analysis widgets end to end in a real viewer, in worker threads; screenshots for the README."""

from __future__ import annotations

import numpy as np
import pytest

from cascope.napari._widgets import APPLY, TRAIN, DenoiseWidget, MeasureWidget, SegmentWidget

pytestmark = pytest.mark.napari


def psnr(x, ref):
    rng_ = float(ref.max() - ref.min())
    return 10 * np.log10(rng_**2 / np.mean((np.asarray(x, float) - ref) ** 2))


@pytest.fixture
def movie():
    from cascope.simulate import somatic

    return somatic(n_frames=24, shape=(48, 48), seed=1)


def test_denoise_classical_raises_psnr(make_napari_viewer, run_widget, movie, screenshot):
    viewer = make_napari_viewer(show=True)
    layer = viewer.add_image(movie.noisy, name="movie", metadata={"cascope": {"axes": "TYX"}})
    widget = DenoiseWidget(viewer)
    dock = viewer.window.add_dock_widget(widget, name="Denoise")
    widget.image_choice.value = layer
    widget.classical_form.method.value = "gaussian"
    widget.classical_form.sigma.value = 1.5
    run_widget(widget)
    out = viewer.layers["movie denoised"]
    # float32 by default, as everywhere (the form's dtype field offers 'same')
    assert out.data.shape == movie.noisy.shape and out.data.dtype == np.float32
    assert psnr(out.data, movie.clean) > psnr(movie.noisy, movie.clean) + 3
    assert widget.progress_bar.value == widget.progress_bar.max == movie.noisy.shape[0]
    assert widget.status_label.value.startswith("done")
    screenshot(viewer, "denoise", dock)


def test_denoise_train_on_movie_keeps_viewer_responsive(make_napari_viewer, run_widget, movie):
    viewer = make_napari_viewer()
    layer = viewer.add_image(movie.noisy, name="movie", metadata={"cascope": {"axes": "TYX"}})
    widget = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Denoise")
    widget.image_choice.value = layer
    widget.mode_choice.value = TRAIN
    assert not widget.deep_form.native.isHidden() and widget.classical_form.native.isHidden()
    widget.deep_form["training__steps"].value = 30
    widget.deep_form.method.value = "n2v"
    widget.deep_form.patch.value = "4, 32, 32"
    widget.predict_form.tile.value = "8, 48, 48"
    widget.predict_form.tta.value = True  # the test-time flips, a check box of the form
    assert widget.predict_form.config().tta is True
    ticks = run_widget(widget, timeout=120_000)
    assert ticks > 5  # timers fired while the network trained
    out = np.asarray(viewer.layers["movie denoised"].data)
    assert out.shape == movie.noisy.shape and np.isfinite(out).all()
    assert psnr(out, movie.clean) > psnr(movie.noisy, movie.clean)
    assert widget.progress_bar.value == movie.noisy.shape[0]


def test_denoise_bad_model_reports_error(make_napari_viewer, run_widget, movie, tmp_path):
    viewer = make_napari_viewer()
    layer = viewer.add_image(movie.noisy, name="movie")
    widget = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Denoise")
    widget.image_choice.value = layer
    widget.mode_choice.value = APPLY
    widget.model_path.value = tmp_path
    run_widget(widget)
    assert widget.status_label.value.startswith("failed")
    assert "movie denoised" not in viewer.layers


def test_segment_and_measure(make_napari_viewer, run_widget, screenshot):
    from cascope.simulate import axons

    sim = axons(shape=(16, 64, 64), seed=0, n_axons=3)
    viewer = make_napari_viewer(show=True)
    vs = list(sim.params.voxel_size)
    layer = viewer.add_image(sim.noisy, name="axons", scale=vs, axis_labels=("z", "y", "x"))
    seg = SegmentWidget(viewer)
    dock = viewer.window.add_dock_widget(seg, name="Segment structures")
    seg.image_choice.value = layer
    seg.label_form.min_size.value = 30
    run_widget(seg)
    labels = viewer.layers["axons labels"]
    assert labels.data.max() >= 1
    assert tuple(labels.scale) == tuple(vs)
    # The labels sit on the planted axons: labelled voxels are far more often axon than chance.
    fg = labels.data > 0
    assert (sim.labels[fg] > 0).mean() > 5 * (sim.labels > 0).mean()
    assert fg[sim.labels > 0].mean() > 0.5
    screenshot(viewer, "segment", dock)

    meas = MeasureWidget(viewer)
    dock2 = viewer.window.add_dock_widget(meas, name="Measure structures")
    meas.labels_choice.value = labels
    run_widget(meas)
    table = labels.features
    assert len(table) == len(np.unique(labels.data)) - 1
    assert set(table["label"]) == set(np.unique(labels.data)[1:].tolist())
    assert meas.table.shape[0] == len(table)
    screenshot(viewer, "measure", dock2)
