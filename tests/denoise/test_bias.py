"""The default temporal denoiser keeps the mean intensity at a photon per pixel."""

from __future__ import annotations

import numpy as np
import pytest

from cascope.config.denoise import DeepDenoiseConfig
from cascope.config.simulate import CameraParams
from cascope.denoise.deep import train_denoiser
from cascope.simulate import somatic

CAMERA = CameraParams(gain=1.0, read_noise=0.5, offset=5.0)  # offset near 0, nothing clipped


@pytest.mark.parametrize("loss", ["l2", pytest.param("l1+l2", marks=pytest.mark.slow)])
def test_deepcad_output_keeps_the_clean_mean_after_any_short_training(loss):
    # ~1 photon per pixel: the median of a pixel's counts lies far below its mean. After 20
    # steps the raw network misses the mean by -1 % to +36 % depending on the seed and the CPU's
    # kernels (ATEN_CPU_CAPABILITY=default included); the mean correction brings every run to the
    # noisy movie's own mean, within 1 % of the clean one here (seeds 0-2 measured).
    sim = somatic(n_frames=24, shape=(32, 32), photons=2.0, background=0.0, camera=CAMERA, seed=1)
    clean_signal = float(sim.clean.mean()) - CAMERA.offset
    assert 0.5 < clean_signal < 2.0  # about one photon per pixel (gain 1)
    cfg = DeepDenoiseConfig.model_validate(
        {
            "method": "deepcad",
            "loss": loss,
            "patch": (4, 32, 32),
            "depth": 2,
            "base": 8,
            "training": {"steps": 20, "val_every": 10, "seed": 0},
        }
    )
    assert DeepDenoiseConfig().loss == "l2" and cfg.mean_correction
    model, _ = train_denoiser(sim.noisy, config=cfg, device="cpu")
    out = model.predict(sim.noisy, device="cpu")
    assert out is not None and np.isfinite(out).all()
    bias = (float(out.mean(dtype=np.float64)) - float(sim.clean.mean())) / clean_signal
    assert abs(bias) < 0.02
    assert abs(model.provenance["mean_correction"]) > 0  # the correction was measured and applied
