"""Train StarDist-3D on event movies and predict a test movie; run by ``stardist_compare.py``.

This file imports only StarDist, TensorFlow and NumPy (never cascope): it runs with the Python of
the separate environment StarDist is installed in. It reads a job description (JSON) naming the
``.npy`` input movies and instance-label movies and the settings, and writes the predicted test
labels (``.npy``) and the facts (timings, thresholds, versions) as JSON.

Usage (by the comparison script)::

    PEER_PYTHON _stardist_driver.py JOB.json
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np


def _threads(n: int) -> None:
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(n))
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", str(n))
    os.environ.setdefault("OMP_NUM_THREADS", str(n))
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)


def run(job: dict[str, Any]) -> dict[str, Any]:
    """Train on the job's training movies, tune thresholds on validation, label the test movie."""
    _threads(int(job["threads"]))
    import tensorflow as tf
    from stardist import Rays_GoldenSpiral, calculate_extents
    from stardist.models import Config3D, StarDist3D

    np.random.seed(int(job["seed"]))  # noqa: NPY002 (StarDist samples patches with it)
    _RNG[0] = np.random.default_rng(int(job["seed"]))
    tf.random.set_seed(int(job["seed"]))

    def load(names: list[str]) -> list[np.ndarray]:
        return [np.load(n) for n in names]

    x_trn, y_trn = load(job["train_x"]), [y.astype(np.int32) for y in load(job["train_y"])]
    x_val, y_val = load(job["valid_x"]), [y.astype(np.int32) for y in load(job["valid_y"])]
    x_test = np.load(job["test_x"])
    extents = calculate_extents(y_trn)
    anisotropy = tuple(float(v) for v in np.max(extents) / extents)
    conf = Config3D(
        rays=Rays_GoldenSpiral(int(job["rays"]), anisotropy=anisotropy),
        grid=tuple(job["grid"]),
        anisotropy=anisotropy,
        n_channel_in=1,
        use_gpu=False,
        unet_n_depth=int(job["depth"]),
        unet_n_filter_base=int(job["base"]),
        net_conv_after_unet=int(job["head"]),
        train_patch_size=tuple(job["patch"]),
        train_batch_size=int(job["batch_size"]),
        train_epochs=int(job["epochs"]),
        train_steps_per_epoch=int(job["steps_per_epoch"]),
        train_learning_rate=float(job["lr"]),
        train_tensorboard=False,
    )
    model = StarDist3D(conf, name="stardist", basedir=job["workdir"])
    n_params = int(model.keras_model.count_params())
    t0 = time.perf_counter()
    model.train(
        x_trn, y_trn, validation_data=(x_val, y_val), augmenter=_flip, epochs=conf.train_epochs
    )
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    model.optimize_thresholds(x_val, y_val)
    thresh_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    labels, _ = model.predict_instances(x_test)
    predict_s = time.perf_counter() - t2
    np.save(job["output"], np.asarray(labels, dtype=np.uint32))
    return {
        "train_seconds": train_s,
        "threshold_seconds": thresh_s,
        "predict_seconds": predict_s,
        "thresholds": {"prob": float(model.thresholds.prob), "nms": float(model.thresholds.nms)},
        "anisotropy": list(anisotropy),
        "parameters": n_params,
        "n_instances": int(len(np.unique(labels)) - 1),
        "stardist": version("stardist"),
        "csbdeep": version("csbdeep"),
        "tensorflow": tf.__version__,
        "python": sys.version.split()[0],
    }


_RNG = [np.random.default_rng(0)]


def _flip(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Random 90° rotation and flips in (y, x), as the U-Net's crops (time is never reversed)."""
    rng = _RNG[0]
    k = int(rng.integers(4))
    x, y = np.rot90(x, k, axes=(1, 2)), np.rot90(y, k, axes=(1, 2))
    for ax in (1, 2):
        if rng.random() < 0.5:
            x, y = np.flip(x, axis=ax), np.flip(y, axis=ax)
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def main() -> None:
    """Read the job, run it, write the facts."""
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    job = json.loads(Path(sys.argv[1]).read_text())
    facts = run(job)
    Path(job["facts"]).write_text(json.dumps(facts, indent=2))


if __name__ == "__main__":
    main()
