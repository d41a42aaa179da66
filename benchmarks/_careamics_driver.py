"""Train and apply CAREamics N2V on one movie; run by ``careamics_compare.py`` in the peer's venv.

This file imports only CAREamics, torch and NumPy (never cascope): it runs with the Python of
the separate environment CAREamics is installed in. It reads a job description (JSON) naming an
input ``.npy`` movie and the settings, and writes the prediction (``.npy``) and the facts
(timings, versions, parameters) as JSON.

Usage (by the comparison script)::

    PEER_PYTHON _careamics_driver.py JOB.json
"""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np


def run(job: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(int(job["threads"]))
    torch.manual_seed(int(job["seed"]))
    from careamics import CAREamist
    from careamics.config import create_advanced_n2v_config

    noisy = np.load(job["input"]).astype(np.float32)
    three_d = bool(job["three_d"])
    axes = "ZYX" if three_d else "SYX"  # time as the third dimension, or frames as samples
    patch = list(job["patch"]) if three_d else list(job["patch"][1:])
    config = create_advanced_n2v_config(
        experiment_name="cascope_compare",
        data_type="array",
        axes=axes,
        patch_size=patch,
        batch_size=int(job["batch_size"]),
        # the budget is a number of optimiser steps: epochs end when ``max_steps`` is reached
        num_epochs=10**6,
        n_val_patches=int(job["val_patches"]),
        seed=int(job["seed"]) + 1,  # CAREamics takes seeds > 0
        num_workers=0,
        model_params={"depth": int(job["depth"]), "num_channels_init": int(job["base"])},
        optimizer_params={"lr": float(job["lr"])},
        trainer_params={
            "accelerator": "cpu",
            "devices": 1,
            "max_steps": int(job["steps"]),
            "enable_model_summary": False,
        },
        train_dataloader_params={"num_workers": 0, "shuffle": True},
        val_dataloader_params={"num_workers": 0},
    )
    engine = CAREamist(config, work_dir=job["work_dir"], enable_progress_bar=False)
    t0 = time.perf_counter()
    engine.train(train_data=noisy)
    train_s = time.perf_counter() - t0
    tile = list(job["tile"]) if three_d else list(job["tile"][1:])
    overlap = list(job["tile_overlap"]) if three_d else list(job["tile_overlap"][1:])
    times = []
    for _ in range(3):  # the first call also restores the checkpoint and sets Lightning up
        t0 = time.perf_counter()
        preds, _ = engine.predict(
            noisy,
            axes=axes,
            data_type="array",
            tile_size=tuple(tile),
            tile_overlap=tuple(overlap),
            batch_size=int(job["predict_batch_size"]),
            num_workers=0,
        )
        times.append(time.perf_counter() - t0)
    pred = np.asarray(preds[0] if isinstance(preds, list) else preds, np.float32)
    pred = pred.reshape(noisy.shape)
    np.save(job["output"], pred)
    steps = int(engine.trainer.global_step)
    n_params = sum(p.numel() for p in engine.model.parameters())
    return {
        "axes": axes,
        "patch": patch,
        "tile": tile,
        "tile_overlap": overlap,
        "train_s": train_s,
        "predict_first_s": times[0],
        "predict_s": min(times),
        "steps_done": steps,
        "patches_seen": steps * int(job["batch_size"]),
        "parameters": int(n_params),
        "versions": {
            "careamics": version("careamics"),
            "torch": torch.__version__,
            "lightning": version("lightning"),
            "numpy": np.__version__,
            "python": sys.version.split()[0],
        },
    }


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    job = json.loads(Path(sys.argv[1]).read_text())
    facts = run(job)
    Path(job["facts"]).write_text(json.dumps(facts, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
