"""Out-of-core deep prediction: streamed file to file equals in-memory prediction."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from cascope.config.denoise import DeepDenoiseConfig, DeepPredictConfig
from cascope.config.training import TrainingConfig
from cascope.denoise.deep import DeepDenoiser, denoise_deep_file, train_denoiser
from cascope.errors import InputError
from cascope.io import Movie, read, write

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "denoise_out_of_core.py"


def _movie(seed: int, shape=(21, 40, 36)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    clean = 200 + 80 * ndi.gaussian_filter(rng.normal(size=shape), 2) / 0.1
    return rng.poisson(np.clip(clean, 1, None)).astype(np.uint16)


def _model(method: str, noisy: np.ndarray) -> DeepDenoiser:
    cfg = DeepDenoiseConfig(
        method=method,
        patch=(4, 16, 16),
        depth=2,
        base=4,
        training=TrainingConfig(steps=3, batch_size=2, val_every=10),
    )
    model, _ = train_denoiser(noisy, config=cfg, device="cpu")
    return model


class CountingReader:
    """A lazy recording that remembers the most frames read at once."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.shape, self.dtype, self.ndim = data, data.shape, data.dtype, data.ndim
        self.most = 0

    def __getitem__(self, key):
        out = np.asarray(self.data[key])
        if isinstance(key, tuple):
            key = key[0]
        if isinstance(key, slice):
            self.most = max(self.most, len(range(*key.indices(self.shape[0]))))
        return out


@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_2d_file_to_file_in_tiny_blocks_equals_in_memory_prediction(tmp_path, suffix):
    noisy = _movie(0)
    model = _model("n2v", noisy)
    write(tmp_path / "in.tif", noisy, axes="TYX")
    cfg = DeepPredictConfig(tile=(8, 32, 32), block=2, dtype="float32")
    out = denoise_deep_file(
        tmp_path / "in.tif", tmp_path / f"out{suffix}", model=model, predict=cfg
    )
    streamed = read(out)[...]
    whole = model.predict(noisy, config=cfg.model_copy(update={"block": 1000}), device="cpu")
    assert streamed.shape == noisy.shape and streamed.dtype == np.float32
    # frames are predicted independently by a 2D network: blocks change nothing
    np.testing.assert_allclose(streamed, whole, rtol=1e-5, atol=1e-3)
    assert np.std(streamed) < np.std(noisy.astype(np.float64))


def test_3d_file_to_file_in_tiny_blocks_equals_in_memory_prediction_of_each_block(tmp_path, device):
    noisy = _movie(1)
    model = _model("deepcad", noisy)
    write(tmp_path / "in.tif", noisy, axes="TYX")
    cfg = DeepPredictConfig(tile=(8, 32, 32), block=3, dtype="same")
    out = denoise_deep_file(
        tmp_path / "in.tif", tmp_path / "out.tif", model=model, predict=cfg, device=device
    )
    streamed = read(out)
    assert streamed.shape == noisy.shape and streamed.dtype == np.uint16
    halo, n = cfg.tile[0] // 2, noisy.shape[0]
    for start in range(0, n, cfg.block):
        stop = min(n, start + cfg.block)
        lo, hi = max(0, start - halo), min(n, stop + halo)
        ref = model.predict(
            noisy[lo:hi], config=cfg.model_copy(update={"block": 100}), device=device
        )
        np.testing.assert_array_equal(streamed[start:stop], ref[start - lo : stop - lo])
    # and the blocks together are close to one prediction of the whole movie
    whole = model.predict(noisy, config=cfg.model_copy(update={"block": 100}), device=device)
    diff = np.abs(streamed[...].astype(np.int64) - whole.astype(np.int64))
    assert np.median(diff) <= 1 and diff.max() < 0.2 * noisy.std()


@pytest.mark.parametrize(("method", "dtype"), [("deepcad", "same"), ("n2v", "float32")])
def test_blocks_on_the_device_equal_blocks_on_the_host(tmp_path, device, method, dtype):
    noisy = _movie(3, shape=(23, 41, 37))
    model = _model(method, noisy)
    write(tmp_path / "in.tif", noisy, axes="TYX")
    cfg = {"tile": (8, 32, 32), "block": 5, "dtype": dtype}
    files = {}
    for where in ("host", "device"):
        predict = DeepPredictConfig.model_validate({**cfg, "blend_on": where})
        out = tmp_path / f"{where}.tif"
        denoise_deep_file(tmp_path / "in.tif", out, model=model, predict=predict, device=device)
        files[where] = read(out)[...]
    host, on_device = files["host"], files["device"]
    assert on_device.dtype == host.dtype == (np.uint16 if dtype == "same" else np.float32)
    # the same arithmetic, in torch instead of NumPy: equal up to float32 rounding, so a
    # rounded integer can differ by one where the value was within rounding of a half
    diff = np.abs(on_device.astype(np.float64) - host.astype(np.float64))
    if dtype == "same":
        assert diff.max() <= 1 and np.mean(diff > 0) < 1e-3
    else:
        assert diff.max() < 1e-5 * float(np.ptp(host))
    # and in memory too
    in_memory = model.predict(
        noisy, config=DeepPredictConfig.model_validate({**cfg, "blend_on": "device"}), device=device
    )
    np.testing.assert_array_equal(in_memory, on_device)
    # the stored byte order does not matter (TIFF files can be big-endian)
    swapped = noisy.astype(noisy.dtype.newbyteorder(">"))
    from_swapped = model.predict(
        swapped,
        config=DeepPredictConfig.model_validate({**cfg, "blend_on": "device"}),
        device=device,
    )
    np.testing.assert_array_equal(from_swapped, on_device)


def test_prediction_reads_one_block_and_its_halo_at_a_time():
    noisy = _movie(2, shape=(40, 32, 32))
    model = _model("deepcad", noisy)
    reader = CountingReader(noisy)
    cfg = DeepPredictConfig(tile=(8, 32, 32), block=5)
    out = model.predict(Movie(reader, axes="TYX"), config=cfg, device="cpu")
    assert out is not None and out.shape == noisy.shape
    assert 0 < reader.most <= cfg.block + 2 * (cfg.tile[0] // 2) < noisy.shape[0]


@pytest.mark.slow
def test_movie_larger_than_the_memory_limit_is_predicted_file_to_file(tmp_path):
    # a 459 MB movie under a 0.4 GiB (429 MB) limit; importing torch alone takes ~250 MiB
    args = ["--frames", "7000", "--height", "128", "--width", "256", "--block", "32"]
    args += ["--tile", "16", "64", "64", "--overlap", "0", "--depth", "1", "--base", "2"]
    args += ["--steps", "5", "--limit-gib", "0.4", "--workdir", str(tmp_path), "--no-save"]
    # in a fresh process: the prediction's child starts as a copy of its parent, and the kernel
    # counts that copy in the child's peak (see the script), so the parent must be small
    run = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)
    result = json.loads(run.stdout)
    assert run.returncode == 0, result
    peak = max(result["peak_rss_bytes"], result["vmhwm_bytes"])
    assert peak < result["limit_bytes"] < result["input_bytes"]
    checks = result["checks"]
    assert checks["same_shape"] and checks["output_dtype"] == "uint16"
    assert checks["blocks_equal"] and len(checks["blocks"]) == 3
    assert list(tmp_path.iterdir()) == []


def test_wide_integer_output_is_cast_on_the_host_as_on_the_host_path(device):
    # int32 does not cross from the device as itself: it crosses as float32 and is rounded on
    # the host, in the writer thread
    noisy = _movie(4, shape=(19, 33, 29)).astype(np.int32) - 300
    model = _model("deepcad", noisy)
    results = {}
    for where in ("host", "device"):
        cfg = DeepPredictConfig(tile=(8, 32, 32), block=6, dtype="same", blend_on=where)
        results[where] = model.predict(noisy, config=cfg, device=device)
    assert results["device"].dtype == results["host"].dtype == np.int32
    diff = np.abs(results["device"].astype(np.int64) - results["host"])
    assert diff.max() <= 1 and np.mean(diff > 0) < 1e-3
    assert results["device"].min() < 0  # signed values survive the trip


@pytest.mark.parametrize("where", ["host", "device"])
def test_a_nan_plane_stops_the_prediction_and_leaves_no_file(tmp_path, device, where):
    noisy = _movie(5, shape=(30, 33, 29))
    model = _model("deepcad", noisy)
    bad = noisy.astype(np.float32)
    bad[17, 4, 4] = np.nan  # one voxel: the network would spread it over every tile it is in
    write(tmp_path / "in.tif", bad, axes="TYX")
    predict = DeepPredictConfig(tile=(8, 32, 32), block=5, blend_on=where)
    out = tmp_path / "out.tif"
    with pytest.raises(InputError, match=r"in\.tif: contains 1 NaN/infinite value\(s\) in T 17$"):
        denoise_deep_file(tmp_path / "in.tif", out, model=model, predict=predict, device=device)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_training_refuses_a_nan_plane_that_the_normalisation_does_not_sample():
    noisy = _movie(6, shape=(100, 24, 24)).astype(np.float32)
    noisy[1] = np.nan  # the 64 evenly spaced planes of the normalisation skip plane 1
    cfg = DeepDenoiseConfig(patch=(4, 16, 16), depth=1, base=2, training=TrainingConfig(steps=1))
    with pytest.raises(InputError, match=r"in T 1$"):
        train_denoiser(Movie(noisy, axes="TYX"), config=cfg, device="cpu")


def test_bright_uint16_movies_cross_to_the_device_intact(device):
    # above 32767 the bytes of uint16 read as negative int16: the device path must not
    noisy = _movie(7, shape=(16, 33, 29)).astype(np.uint16) * 40 + 30000
    assert noisy.max() > 40000
    model = _model("deepcad", noisy)
    results = {}
    for where in ("host", "device"):
        cfg = DeepPredictConfig(tile=(8, 32, 32), block=6, dtype="same", blend_on=where)
        results[where] = model.predict(noisy, config=cfg, device=device)
    assert results["device"].dtype == np.uint16
    diff = np.abs(results["device"].astype(np.int64) - results["host"])
    assert diff.max() <= 1 and np.mean(diff > 0) < 1e-3
    assert abs(float(results["device"].mean()) - float(noisy.mean())) < 0.05 * noisy.mean()
