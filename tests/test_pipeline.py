from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile
from typer.testing import CliRunner

from cascope import simulate
from cascope.cli import app
from cascope.config.pipeline import DenoiseStep, EventsStep, PipelineConfig
from cascope.errors import InputError
from cascope.metrics import match_events
from cascope.pipeline import run_pipeline


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    sim = simulate.mscts(seed=11, n_frames=96, shape=(48, 48), event_rate=30.0)
    folder = simulate.save(sim, tmp_path_factory.mktemp("pipeline") / "sim")
    return sim, folder / "noisy.tif"


def test_pipeline_writes_every_result_and_finds_the_events(recording, tmp_path):
    sim, movie = recording
    cfg = PipelineConfig(
        input=movie,
        denoise=DenoiseStep(method="median"),
        events=EventsStep(threshold=3.0),
        frame_rate=20.0,
    )
    res = run_pipeline(cfg, tmp_path / "out")
    assert set(res.files) == {"qc", "denoised", "events", "event_labels", "figure"}
    denoised = tifffile.imread(res.files["denoised"])
    # float32 by default, as `cascope denoise` writes
    assert denoised.shape == sim.noisy.shape and denoised.dtype == np.float32
    # denoising brought the movie closer to the clean one
    err = lambda a: np.mean((a.astype(float) - sim.clean) ** 2)  # noqa: E731
    assert err(denoised) < 0.5 * err(sim.noisy)
    table = pd.read_csv(res.files["events"])
    labels = tifffile.imread(res.files["event_labels"])
    assert labels.max() == len(table) > 0
    assert match_events(table, sim.events).f1 > 0.6
    # features in seconds from the configured frame rate
    np.testing.assert_allclose(table["duration_s"], table["duration_frames"] / 20.0)
    # the saved configuration reproduces the run
    assert PipelineConfig.from_yaml(res.out_dir / "pipeline.yaml") == cfg
    versions = json.loads((res.out_dir / "versions.json").read_text())
    assert versions["cascope"] and versions["numpy"] == np.__version__
    summary = json.loads((res.out_dir / "summary.json").read_text())
    assert summary["events"]["n_events"] == len(table)


def test_rerun_from_saved_config_gives_the_same_events(recording, tmp_path):
    _, movie = recording
    runner = CliRunner()
    args = ["run", str(movie), "-o", str(tmp_path / "a"), "--denoise", "gaussian", "--no-qc"]
    first = runner.invoke(app, [*args, "--dtype", "same"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(
        app, ["run", "--config", str(tmp_path / "a" / "pipeline.yaml"), "-o", str(tmp_path / "b")]
    )
    assert again.exit_code == 0, again.output
    a = pd.read_csv(tmp_path / "a" / "events.csv")
    b = pd.read_csv(tmp_path / "b" / "events.csv")
    pd.testing.assert_frame_equal(a, b)
    assert not (tmp_path / "b" / "qc.json").exists()  # --no-qc was saved in the config
    # --dtype same was saved too: both runs wrote the input's type
    for run in ("a", "b"):
        assert tifffile.imread(tmp_path / run / "denoised.tif").dtype == np.uint16
    bad = runner.invoke(app, [*args[:3], str(tmp_path / "c"), *args[4:], "--dtype", "int8"])
    assert bad.exit_code != 0 and not (tmp_path / "c").exists()


def test_denoised_file_in_the_input_type_is_the_float_one_rounded(recording, tmp_path):
    sim, movie = recording
    runs = {}
    for dtype in ("float32", "same"):
        cfg = PipelineConfig(
            input=movie, qc=False, events=None, denoise=DenoiseStep(method="median", dtype=dtype)
        )
        runs[dtype] = tifffile.imread(run_pipeline(cfg, tmp_path / dtype).files["denoised"])
    info = np.iinfo(sim.noisy.dtype)
    assert runs["same"].dtype == sim.noisy.dtype and runs["float32"].dtype == np.float32
    expected = np.clip(np.rint(runs["float32"]), info.min, info.max).astype(sim.noisy.dtype)
    np.testing.assert_array_equal(runs["same"], expected)
    # a classical option that contradicts the step's type is refused, not silently overridden
    from cascope.config.denoise_classical import ClassicalDenoiseConfig

    clash = DenoiseStep(
        method="median",
        dtype="same",
        classical=ClassicalDenoiseConfig(method="median", dtype="float32"),
    )
    with pytest.raises(InputError, match="denoise.classical.dtype"):
        run_pipeline(
            PipelineConfig(input=movie, qc=False, events=None, denoise=clash), tmp_path / "c"
        )
    assert not (tmp_path / "c").exists()


def test_bad_input_leaves_no_output(tmp_path):
    bad = np.ones((8, 16, 16), np.float32)
    bad[3] = np.nan
    path = tmp_path / "nan.tif"
    tifffile.imwrite(path, bad, metadata={"axes": "TYX"})
    with pytest.raises(InputError, match="NaN"):
        run_pipeline(PipelineConfig(input=path, qc=False), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.tif"]


def test_volume_and_output_inside_input_are_refused(recording, tmp_path):
    vol = tmp_path / "vol.tif"
    tifffile.imwrite(vol, np.zeros((4, 8, 8), np.uint16), metadata={"axes": "ZYX"})
    with pytest.raises(InputError, match="T, Y, X"):
        run_pipeline(PipelineConfig(input=vol), tmp_path / "out")
    _, movie = recording
    with pytest.raises(InputError, match="must not contain the input"):
        run_pipeline(PipelineConfig(input=movie), movie.parent)
    res = CliRunner().invoke(app, ["run", "-o", str(tmp_path / "x")])
    assert isinstance(res.exception, InputError) and "INPUT" in str(res.exception)


@pytest.mark.realdata
def test_dff_on_a_dim_real_recording_stays_physiological_and_says_which_is_unreliable(
    real_data, tmp_path
):
    from cascope.events.features import DFF_COLUMNS, MAX_DFF

    movie = real_data / "astrocast_sample_1_T75.tiff"
    res = CliRunner().invoke(app, ["run", str(movie), "-o", str(tmp_path / "r"), "--axes", "TYX"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "r" / "events.csv")
    assert len(table) > 0
    # the file stores its values with +32768 (ImageJ calibration): the reader removes it
    assert table["intensity_max"].max() < 1000 and (table["baseline_f0"] < 100).all()
    reliable = table["baseline_reliable"].astype(bool)
    # resting levels of 0-2 counts: some events cannot have a ΔF/F, and they are marked
    assert 0 < (~reliable).sum() < len(table)
    for col in ("dff_peak", "dff_mean", "profile_max"):
        assert (table.loc[reliable, col] <= MAX_DFF).all()
        assert table.loc[reliable, col].notna().all()
        assert table.loc[~reliable, col].isna().all()
    # a reason for each unreliable event, an empty cell for the others
    assert table.loc[~reliable, "dff_note"].str.len().gt(0).all()
    assert table.loc[reliable, "dff_note"].isna().all()
    assert set(DFF_COLUMNS) <= set(table.columns)


@pytest.mark.realdata
def test_run_with_imagej_rois_writes_their_traces_and_each_events_roi(real_data, tmp_path):
    movie = real_data / "sima_example_2p_T20.tif"
    zip_rois = real_data / "sima_imagej_rois.zip"
    out = tmp_path / "r"
    args = ["run", str(movie), "-o", str(out), "--rois", str(zip_rois), "--no-qc"]
    res = CliRunner().invoke(app, [*args, "--denoise", "none", "--frame-rate", "10"])
    assert res.exit_code == 0, res.output
    assert "2 ROI traces" in res.output
    traces = pd.read_csv(out / "traces.csv")
    frames = tifffile.imread(movie).astype(float)
    labels = tifffile.imread(out / "rois.tif")
    assert sorted(traces["roi"].unique()) == [1, 2] and len(traces) == 2 * len(frames)
    for roi, group in traces.groupby("roi"):
        np.testing.assert_allclose(group["f"], frames[:, labels == roi].mean(axis=1))
        np.testing.assert_allclose(group["time_s"], np.arange(len(frames)) / 10.0)
        assert group["baseline_reliable"].all()
        np.testing.assert_allclose(group["dff"], group["f"] / group["f0"] - 1)
    events = pd.read_csv(out / "events.csv")
    assert len(events) > 0
    under = labels[events["y"].round().astype(int), events["x"].round().astype(int)]
    np.testing.assert_array_equal(events["roi"], under)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rois"]["n_rois"] == 2
    # a wrong ROI file fails before anything is written
    bad = CliRunner().invoke(
        app, ["run", str(movie), "-o", str(tmp_path / "b"), "--rois", str(movie)]
    )
    assert bad.exit_code != 0 and not (tmp_path / "b").exists()


def test_run_with_a_label_image_puts_the_events_in_their_dendrites(recording, tmp_path):
    sim, movie = recording
    from scipy import ndimage

    # each dendrite (connected piece of the mask) is one ROI
    dendrites, n = ndimage.label(ndimage.binary_dilation(sim.dendrites, iterations=1))
    labels_path = tmp_path / "dendrites.tif"
    tifffile.imwrite(labels_path, dendrites.astype(np.uint16))
    cfg = PipelineConfig(
        input=movie, qc=False, denoise=None, events=EventsStep(threshold=3.0), rois=labels_path
    )
    res = run_pipeline(cfg, tmp_path / "out")
    traces = pd.read_csv(res.files["traces"])
    assert traces["roi"].nunique() == n and len(traces) == n * sim.noisy.shape[0]
    events = pd.read_csv(res.files["events"])
    matched = match_events(events, sim.events)
    assert matched.f1 > 0.6
    # events of the simulation all sit on a dendrite: nearly every detection gets its ROI
    assert (events["roi"] > 0).mean() > 0.9
    # the ROI's ΔF/F is higher in the frames of its events than in the others
    roi = events["roi"].mode()[0]
    dff = traces.loc[traces["roi"] == roi, "dff"].to_numpy()
    during = np.zeros(len(dff), bool)
    for _, ev in events[events["roi"] == roi].iterrows():
        during[int(ev["t_start"]) : int(ev["t_end"])] = True
    assert dff[during].mean() > dff[~during].mean() + 0.01


def test_denoise_auto_follows_the_quality_check_and_says_what_events_were_detected_on(tmp_path):
    from cascope.pipeline import qc_denoiser
    from cascope.qc import run_qc

    # frames of pure noise are decorrelated: the quality check advises n2v, not temporal N2N
    noise = np.random.default_rng(0).poisson(20, (24, 32, 32)).astype(np.uint16)
    report = run_qc(noise, axes="TYX")
    assert "frames_decorrelated" in report.flags and qc_denoiser(report) == "n2v"
    sim = simulate.mscts(seed=3, n_frames=24, shape=(32, 32), event_rate=30.0)
    movie = simulate.save(sim, tmp_path / "sim") / "noisy.tif"
    args = ["run", str(movie), "-o", str(tmp_path / "r"), "--denoise", "auto", "--steps", "1"]
    res = CliRunner().invoke(app, [*args, "--no-qc"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    # correlated frames: the recommendation names deepcad, and the run used it
    assert "deepcad" in summary["qc"]["recommendation"]
    assert summary["denoise"]["method"] == "deepcad" and "qc" in summary["denoise"]["chosen_by"]
    assert not (tmp_path / "r" / "qc.json").exists()  # --no-qc: checked, not written
    # which movie the events were detected on, and why, in the summary and on the console
    assert summary["events"]["on"] == "input" and "denoise_detect" in summary["events"]["why"]
    assert "detected on the input movie" in " ".join(res.output.split())
    # asked for, the detector runs on the denoised movie
    cfg = PipelineConfig.from_yaml(tmp_path / "r" / "pipeline.yaml")
    cfg = cfg.model_copy(
        update={
            "qc": False,
            "denoise": DenoiseStep(method="gaussian"),
            "events": EventsStep(source="denoised"),
        }
    )
    again = run_pipeline(cfg, tmp_path / "d")
    assert again.summary["events"]["on"] == "denoised"
