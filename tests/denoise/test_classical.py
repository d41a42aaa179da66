from __future__ import annotations

import sys
import warnings
from typing import Any

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from cascope.config.denoise_classical import ClassicalDenoiseConfig
from cascope.denoise import denoise_array, denoise_movie, estimate_noise_sigma
from cascope.errors import CascopeError, InputError
from cascope.io import Movie

CASES: list[dict[str, Any]] = [
    {"method": "gaussian", "mode": "2d"},
    {"method": "gaussian", "mode": "3d", "sigma_stack": 0.8},
    {"method": "median", "mode": "2d", "size": 3},
    {"method": "median", "mode": "3d", "size": 3},
    {"method": "bilateral", "mode": "2d"},
    {"method": "bilateral", "mode": "3d"},
    {"method": "bm3d"},
    {"method": "bm4d"},
]


def _psnr(x: np.ndarray, clean: np.ndarray) -> float:
    return float(peak_signal_noise_ratio(clean, x, data_range=float(np.ptp(clean))))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['method']}-{c.get('mode', '')}")
def test_filter_raises_psnr_keeps_mean_and_shape(scene, case):
    clean, noisy = scene
    before = noisy.copy()
    out = denoise_array(noisy, axes="TYX", **case)
    assert out.shape == noisy.shape
    assert out.dtype == np.float32
    np.testing.assert_array_equal(noisy, before)  # input not mutated
    gain = _psnr(out, clean) - _psnr(noisy, clean)
    assert gain > 3.0, f"PSNR gain only {gain:.2f} dB"
    assert abs(float(out.mean()) - float(noisy.mean())) < 0.01 * float(noisy.mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sigma_noise", [6.0, 10.0])
def test_gaussian_gain_holds_across_seeds_and_noise_levels(make_scene, seed, sigma_noise):
    rng = np.random.default_rng(seed)
    clean = make_scene(rng, (2, 40, 40))
    noise = rng.normal(0, 1.0, clean.shape)
    gains = []
    for level in (sigma_noise, 4 * sigma_noise):
        noisy = clean + level * noise
        out = denoise_array(noisy, axes="TYX", method="gaussian", sigma=1.0)
        gains.append(_psnr(out, clean) - _psnr(noisy, clean))
    assert gains[0] > 0.5
    assert gains[1] > gains[0]  # smoothing pays more the noisier the data


def test_units_are_kept_for_integer_input(rng):
    data = rng.poisson(1000, (2, 32, 32)).astype(np.uint16)
    out = denoise_array(data, axes="TYX", method="median")
    assert 950 < float(out.mean()) < 1050


def test_zyx_volume_3d_filters_along_z(rng):
    vol = np.zeros((9, 16, 16))
    vol[4] = 90.0
    out = denoise_array(vol, axes="ZYX", method="gaussian", mode="3d", sigma=0.5, sigma_stack=1.0)
    assert out[3].mean() > 0 and out[5].mean() > 0  # spread along Z
    flat = denoise_array(vol, axes="ZYX", method="gaussian", mode="2d", sigma=0.5)
    assert flat[3].max() == 0


def test_estimate_noise_sigma_matches_truth(rng):
    noisy = 500 + rng.normal(0, 7.0, (4, 96, 96))
    assert estimate_noise_sigma(noisy, axes="TYX") == pytest.approx(7.0, rel=0.1)


def test_blank_planes_do_not_hide_the_noise_of_the_others(rng):
    stack = 500 + rng.normal(0, 7.0, (9, 96, 96))
    stack[[0, 4]] = 0.0  # e.g. planes padded with zeros
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert estimate_noise_sigma(stack, axes="ZYX") == pytest.approx(7.0, rel=0.1)
    # a stack with no noise at all still gives a positive (tiny) sigma
    assert 0 < estimate_noise_sigma(np.zeros((3, 32, 32)), axes="ZYX") < 1e-3


def test_estimated_sigma_is_used_when_missing(scene):
    clean, noisy = scene
    auto = denoise_array(noisy, axes="TYX", method="bilateral")
    sigma = estimate_noise_sigma(noisy, axes="TYX")
    given = denoise_array(noisy, axes="TYX", method="bilateral", noise_sigma=sigma)
    np.testing.assert_allclose(auto, given, rtol=1e-6)


@pytest.mark.parametrize(
    "case",
    [
        {"method": "gaussian", "mode": "2d"},
        {"method": "gaussian", "mode": "3d", "sigma": 1.0, "sigma_stack": 1.2},
        {"method": "median", "mode": "3d", "size": 3},
        {"method": "bilateral", "mode": "3d", "noise_sigma": 12.0},
        {"method": "bilateral", "mode": "2d", "noise_sigma": 12.0},
    ],
    ids=lambda c: f"{c['method']}-{c['mode']}",
)
def test_streaming_equals_one_shot(rng, make_scene, case):
    clean = make_scene(rng, (23, 24, 24))
    noisy = (clean + rng.normal(0, 10, clean.shape)).astype(np.float32)
    cfg = ClassicalDenoiseConfig(**case, dtype="float32")
    one_shot = denoise_array(noisy, axes="TYX", config=cfg)
    streamed = denoise_movie(Movie(noisy, axes="TYX"), config=cfg, block=4)
    assert streamed is not None
    np.testing.assert_allclose(streamed, one_shot, rtol=1e-5, atol=1e-3)


def test_streaming_bm4d_close_to_one_shot(rng, make_scene):
    clean = make_scene(rng, (12, 24, 24))
    noisy = (clean + rng.normal(0, 10, clean.shape)).astype(np.float32)
    cfg = ClassicalDenoiseConfig(method="bm4d", noise_sigma=10.0, dtype="float32")
    one_shot = denoise_array(noisy, axes="TYX", config=cfg)
    streamed = denoise_movie(noisy, axes="TYX", config=cfg, block=6)
    assert streamed is not None
    # non-local: not identical, but far closer to the one-shot result than the noise level
    assert float(np.abs(streamed - one_shot).mean()) < 1.0


def test_integer_output_is_rounded_and_clipped(rng):
    data = rng.poisson(3, (5, 16, 16)).astype(np.uint8)
    data[0, 0, 0] = 255
    cfg = ClassicalDenoiseConfig(method="gaussian", sigma=0.7, dtype="same")
    out = denoise_movie(data, axes="TYX", config=cfg, block=2)
    ref = denoise_array(data, axes="TYX", config=cfg)
    assert out is not None and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.clip(np.rint(ref), 0, 255).astype(np.uint8))
    # float32 is the default (as for `cascope denoise`): the filter's result, not rounded
    as_float = denoise_movie(data, axes="TYX", config=cfg.model_copy(update={"dtype": "float32"}))
    assert ClassicalDenoiseConfig(method="gaussian").dtype == "float32"
    assert as_float is not None and as_float.dtype == np.float32
    np.testing.assert_allclose(as_float, ref, atol=1e-4)


class _ListWriter:
    def __init__(self) -> None:
        self.starts: list[int] = []

    def write(self, block: np.ndarray, start: int) -> None:
        self.starts.append(start)


def test_nan_block_aborts_stream(rng):
    data = rng.normal(100, 5, (12, 8, 8)).astype(np.float32)
    data[9, 3, 3] = np.nan
    writer = _ListWriter()
    with pytest.raises(InputError, match=r"NaN/infinite value\(s\) in T 9$"):
        denoise_movie(data, "gaussian", axes="TYX", out_writer=writer, block=4)
    assert writer.starts == [0, 4]  # the block holding frame 9 was never written


def test_vst_bilateral_on_poisson_gaussian_data(rng, make_scene):
    gain, read_noise, offset = 2.0, 3.0, 100.0
    photons = make_scene(rng, (3, 48, 48)) / 10.0  # 10-30 photons
    clean = offset + gain * photons
    noisy = offset + gain * rng.poisson(photons) + rng.normal(0, read_noise, photons.shape)
    vst = {"gain": gain, "read_noise": read_noise, "offset": offset}
    out = denoise_array(noisy, axes="TYX", method="bilateral", vst=vst)
    assert _psnr(out, clean) > _psnr(noisy, clean) + 3.0
    assert abs(float(out.mean()) - float(clean.mean())) < 0.01 * float(clean.mean())


def test_missing_optional_package_gives_clear_error(monkeypatch, scene):
    monkeypatch.setitem(sys.modules, "bm3d", None)
    with pytest.raises(CascopeError, match=r"cascope\[bm3d\]"):
        denoise_array(scene[1], axes="TYX", method="bm3d", noise_sigma=10.0)


def test_3d_mode_needs_a_stack_axis(rng):
    with pytest.raises(InputError, match="Z or T"):
        denoise_array(rng.random((8, 8)), axes="YX", method="gaussian", mode="3d")


def test_config_rejects_unknown_fields_and_even_median():
    with pytest.raises(ValueError):
        ClassicalDenoiseConfig(method="gaussian", sigmaa=2)  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        ClassicalDenoiseConfig(method="median", size=4)


def test_memory_mapped_input_pages_are_released(tmp_path, rng):
    from cascope.denoise.stream import _release_pages

    data = rng.integers(0, 1000, (12, 16, 16)).astype(np.uint16)
    mm = np.memmap(tmp_path / "m.raw", dtype=np.uint16, mode="w+", shape=data.shape)
    mm[:] = data
    mm.flush()
    ro = np.memmap(tmp_path / "m.raw", dtype=np.uint16, mode="r", shape=data.shape)
    assert _release_pages(ro) and _release_pages(ro[3:5])
    assert not _release_pages(data)
    out = denoise_movie(Movie(ro, axes="TYX"), "gaussian", block=5)
    np.testing.assert_array_equal(out, denoise_movie(data, "gaussian", axes="TYX", block=5))


def test_filter_blocks_are_written_while_the_next_is_filtered(rng, tmp_path, monkeypatch):
    import threading

    import tifffile
    from typer.testing import CliRunner

    from cascope.cli import app
    from cascope.denoise import stream

    data = rng.poisson(50, (20, 16, 16)).astype(np.uint16)
    whole = denoise_array(data, axes="TYX", method="gaussian", mode="3d", sigma=1.0)
    cfg = ClassicalDenoiseConfig(method="gaussian", mode="3d", sigma=1.0, block=4)
    second_block = threading.Event()
    filtered = []

    def counted(raw: np.ndarray, **options: Any) -> np.ndarray:
        filtered.append(len(raw))
        if len(filtered) == 2:
            second_block.set()
        return denoise_array(raw, **options)

    monkeypatch.setattr(stream, "denoise_array", counted)

    class WaitsForTheSecondBlock:
        """Writes the first block only once the filter has started on the second."""

        def __init__(self, wait_s: float) -> None:
            self.out, self.wait_s, self.overlapped = np.zeros(data.shape, np.float32), wait_s, None

        def write(self, block: np.ndarray, start: int) -> None:
            if start == 0:
                self.overlapped = second_block.wait(self.wait_s)
            self.out[start : start + len(block)] = block

    results = {}
    for background in (True, False):
        second_block.clear()
        filtered.clear()
        # in turn, the first write would wait forever: give up after a short while
        writer = WaitsForTheSecondBlock(60 if background else 0.5)
        update = {"background_io": background}
        denoise_movie(data, axes="TYX", config=cfg.model_copy(update=update), out_writer=writer)
        results[background] = writer
    assert results[True].overlapped is True and results[False].overlapped is False
    for writer in results.values():  # the streamed result is the one-shot result either way
        np.testing.assert_allclose(writer.out, whole, rtol=1e-6, atol=1e-4)
    # and the command line's --serial-io gives the same file
    tifffile.imwrite(tmp_path / "in.tif", data)
    files = {}
    for name, extra in (("bg.tif", []), ("serial.tif", ["--serial-io"])):
        args = ["denoise", str(tmp_path / "in.tif"), "-o", str(tmp_path / name)]
        res = CliRunner().invoke(app, [*args, "--method", "gaussian", "--block", "4", *extra])
        assert res.exit_code == 0, res.output
        files[name] = tifffile.imread(tmp_path / name)
    np.testing.assert_array_equal(files["bg.tif"], files["serial.tif"])


@pytest.mark.parametrize(
    ("method", "mode"),
    [("bilateral", "2d"), ("bilateral", "3d"), ("gaussian", "3d"), ("median", "2d")],
)
def test_a_constant_movie_comes_out_unchanged(method, mode):
    flat = np.full((6, 16, 16), 100, np.uint16)  # no noise at all: sigma estimates to ~0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow on the way
        out = denoise_movie(flat, method, axes="TYX", config=ClassicalDenoiseConfig(mode=mode))
    assert out is not None and np.isfinite(out).all()
    np.testing.assert_allclose(out, 100, atol=1e-3)


def test_an_offset_above_the_recording_is_refused(rng):
    movie = rng.poisson(20, (8, 16, 16)).astype(np.uint16) + 100  # values about 100-140
    for offset in (1000.0, 200.0):  # every value, or nearly every one, below the offset
        cfg = ClassicalDenoiseConfig(method="bilateral", vst={"gain": 1.0, "offset": offset})
        with pytest.raises(InputError, match="below the camera offset"):
            denoise_movie(movie, axes="TYX", config=cfg)
    cfg = ClassicalDenoiseConfig(method="bilateral", vst={"gain": 1.0, "offset": 100.0})
    out = denoise_movie(movie, axes="TYX", config=cfg)
    assert out is not None and np.ptp(out) > 5  # a fitting offset: the movie is not flattened
