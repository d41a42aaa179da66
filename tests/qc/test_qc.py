import json

import numpy as np
import pytest
from scipy import ndimage
from typer.testing import CliRunner

from cascope.cli import app
from cascope.config.qc import QCConfig
from cascope.errors import InputError
from cascope.io import Movie, read
from cascope.qc import run_qc


def _scene(rng, shape=(96, 96), peak=300.0):
    f = ndimage.gaussian_filter(rng.random(shape), 6)
    f = (f - f.min()) / np.ptp(f)
    f[:, :12] = 0  # dark margin outside the field of view
    return f * peak


def _acquire(rng, photons, gain, read_noise, offset=100.0):
    electrons = rng.poisson(photons) + rng.normal(0, read_noise, photons.shape)
    return np.clip(np.round(gain * electrons + offset), 0, 65535).astype(np.uint16)


@pytest.mark.parametrize(("gain", "read_noise"), [(2.0, 3.0), (0.8, 6.0), (4.0, 2.0)])
def test_noise_model_recovers_gain_and_read_noise(rng, gain, read_noise):
    photons = np.repeat(_scene(rng)[None], 24, axis=0)
    movie = Movie(_acquire(rng, photons, gain, read_noise), axes="TYX")
    rep = run_qc(movie)
    assert rep.noise.reliable
    assert rep.noise.gain == pytest.approx(gain, rel=0.15)
    assert rep.noise.read_noise_e == pytest.approx(read_noise, rel=0.15)
    assert rep.offset == pytest.approx(100.0, abs=2.0)
    # photons averaged over the frame: the scene's mean
    assert rep.mean_photons == pytest.approx(photons.mean(), rel=0.15)
    assert not rep.dynamic_range_compressed and not rep.saturated


def test_static_scene_suits_temporal_n2n_and_changing_scene_does_not(rng):
    static = np.repeat(_scene(rng, peak=20.0)[None], 16, axis=0)
    changing = np.stack([_scene(rng, peak=20.0) for _ in range(16)])
    a = run_qc(Movie(_acquire(rng, static, 2.0, 3.0), axes="TYX"))
    b = run_qc(Movie(_acquire(rng, changing, 2.0, 3.0), axes="TYX"))
    # noise keeps the raw correlation well below 1; the corrected one sees the same signal
    assert a.temporal_correlation > 0.9 > a.temporal_correlation_raw
    assert "deepcad" in a.recommendation
    # only the shared dark margin correlates between the independent scenes
    assert b.temporal_correlation < 0.7
    assert "frames_decorrelated" in b.flags and "n2v" in b.recommendation


def test_quantised_movie_is_flagged_wherever_its_offset_sits(rng):
    photons = np.repeat(_scene(rng, peak=3.0)[None], 10, axis=0)
    counts = rng.poisson(photons).astype(np.uint16)  # a handful of levels
    for shift in (0, 32768):
        rep = run_qc(Movie(counts + np.uint16(shift), axes="TYX"))
        assert rep.dynamic_range_compressed
        assert rep.n_signal_levels <= 12
        assert "dynamic range compressed" in rep.recommendation
        assert "noise_model_unreliable" in rep.flags


def test_saturation_at_dtype_max(rng):
    photons = np.repeat(_scene(rng)[None], 6, axis=0)
    movie = _acquire(rng, photons, 2.0, 3.0)
    movie[:, 40:50, 40:50] = 65535
    rep = run_qc(Movie(movie, axes="TYX"))
    assert rep.saturation_level == 65535
    assert rep.saturation_fraction == pytest.approx(100 / 96**2)
    assert rep.saturated and "saturated" in rep.recommendation


def test_background_add_back_restores_the_noise_model(rng):
    photons = np.repeat(_scene(rng)[None], 16, axis=0)
    raw = _acquire(rng, photons, 2.0, 3.0).astype(np.float32)
    bg = np.full(raw.shape[1:], 100.0, np.float32) + np.linspace(0, 20, 96)[None, :]
    subtracted = raw - bg
    before = subtracted.copy()
    rep = run_qc(Movie(subtracted, axes="TYX"), background=bg)
    np.testing.assert_array_equal(subtracted, before)
    assert rep.background_added
    assert rep.noise.gain == pytest.approx(2.0, rel=0.15)
    with pytest.raises(InputError, match="background"):
        run_qc(Movie(subtracted, axes="TYX"), background=bg[:10])


def test_samples_a_bounded_number_of_frames(rng):
    photons = np.repeat(_scene(rng, shape=(32, 32))[None], 500, axis=0)
    rep = run_qc(Movie(_acquire(rng, photons, 2.0, 3.0), axes="TYX"), config=QCConfig(max_pairs=5))
    assert rep.frames_sampled == 10
    # a short movie: its pairs overlap, and each frame counts once
    short = run_qc(Movie(_acquire(rng, photons[:12], 2.0, 3.0), axes="TYX"))
    assert short.frames_sampled == 12


def test_single_image_and_channels(rng):
    img = _acquire(rng, _scene(rng), 2.0, 3.0)
    rep = run_qc(img, axes="YX")
    assert rep.frame_axis is None and rep.temporal_correlation is None
    assert "n2v" in rep.recommendation
    two = np.stack([img[None], img[None]], axis=1)  # T C Y X
    with pytest.raises(InputError, match="channel"):
        run_qc(two, axes="TCYX")
    assert run_qc(two, axes="TCYX", channel=1).n_levels == rep.n_levels


@pytest.mark.realdata
def test_real_astrocast_is_flagged_and_sima_is_not(real_data):
    astro = run_qc(read(real_data / "astrocast_sample_0_T100.tiff"))
    assert astro.dynamic_range_compressed
    assert astro.n_signal_levels <= 8
    sima = run_qc(read(real_data / "sima_example_2p_T20.tif"))
    assert not sima.dynamic_range_compressed
    assert sima.n_signal_levels > 1000


@pytest.mark.realdata
def test_qc_command_on_real_files(real_data, tmp_path):
    runner = CliRunner()
    out = tmp_path / "astro.json"
    res = runner.invoke(
        app, ["qc", str(real_data / "astrocast_sample_0_T100.tiff"), "--json", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "dynamic range compressed" in res.output
    data = json.loads(out.read_text())
    assert data["dynamic_range_compressed"] is True
    assert "dynamic_range_compressed" in data["flags"]
    res = runner.invoke(app, ["qc", str(real_data / "sima_example_2p_T20.tif")])
    assert res.exit_code == 0, res.output
    assert "dynamic_range_compressed" not in res.output


def test_qc_command_with_background_file(rng, tmp_path):
    import tifffile

    photons = np.repeat(_scene(rng, shape=(48, 48))[None], 8, axis=0)
    raw = _acquire(rng, photons, 2.0, 3.0).astype(np.float32)
    tifffile.imwrite(tmp_path / "movie.tif", raw - 100, metadata={"axes": "TYX"})
    tifffile.imwrite(tmp_path / "bg.tif", np.full((48, 48), 100, np.float32))
    out = tmp_path / "qc.json"
    res = CliRunner().invoke(
        app,
        [
            "qc",
            str(tmp_path / "movie.tif"),
            "--background",
            str(tmp_path / "bg.tif"),
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["background_added"] is True
    assert data["offset"] == pytest.approx(100, abs=3)
    # an existing report is not replaced silently
    again = CliRunner().invoke(app, ["qc", str(tmp_path / "movie.tif"), "--json", str(out)])
    assert again.exit_code != 0


def test_a_volume_gets_no_temporal_recommendation(rng):
    # planes of one static scene: they correlate as a still movie would, but Z is no time axis
    photons = np.repeat(_scene(rng, peak=20.0)[None], 16, axis=0)
    rep = run_qc(Movie(_acquire(rng, photons, 2.0, 3.0), axes="ZYX"))
    assert rep.frame_axis == "Z"
    assert "suits" not in rep.recommendation and "frames_decorrelated" not in rep.flags
    assert "volume" in rep.recommendation and "n2v3d" in rep.recommendation
    same_as_movie = run_qc(Movie(_acquire(rng, photons, 2.0, 3.0), axes="TYX"))
    assert "deepcad" in same_as_movie.recommendation and "suits" in same_as_movie.recommendation


def test_an_impossible_noise_fit_is_unreliable_and_says_why(rng, tmp_path):
    # a camera offset of 100 ADU declared as 0: the darkest pixels vary far less than the shot
    # noise of 100 ADU of signal would make them, so no read noise can explain the fit
    photons = np.repeat(_scene(rng)[None], 24, axis=0)
    movie = _acquire(rng, photons, 2.0, 3.0)
    rep = run_qc(Movie(movie, axes="TYX"), config=QCConfig(offset=0.0))
    assert rep.noise.gain is not None and rep.noise.read_noise_adu == 0.0
    assert not rep.noise.reliable and "impossible fit" in rep.noise.problem
    assert "noise_model_unreliable" in rep.flags and "impossible fit" in rep.recommendation
    assert run_qc(Movie(movie, axes="TYX")).noise.reliable  # the estimated offset fits
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(tmp_path / "m.tif", movie)
    res = CliRunner().invoke(app, ["qc", str(tmp_path / "m.tif"), "--offset", "0"])
    assert res.exit_code == 0, res.output
    assert "not measurable" in res.output and "read noise" in res.output


def test_offset_of_float_data_is_rounded_to_its_resolution(rng):
    scene = _scene(rng, peak=50.0)
    frames = np.stack([scene + rng.normal(0, 1, scene.shape) for _ in range(8)])
    # summation residue: the dark margin is 0.1 + 0.2 - 0.3, not 0
    frames[:, :, :12] = 0.1 + 0.2 - 0.3
    rep = run_qc(Movie(frames.astype(np.float64), axes="TYX"))
    assert rep.offset == 0.0 and str(rep.offset) == "0.0"
