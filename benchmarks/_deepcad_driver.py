"""Train or apply DeepCAD-RT 1.2.0 on one movie; run by ``deepcad_compare.py`` in the peer's venv.

This file imports only DeepCAD-RT, torch and NumPy (never cascope): it runs with the Python of
the separate environment DeepCAD-RT is installed in. It reads a job description (JSON) and
writes the facts (timings, patch counts, peak memory, versions) as JSON.

DeepCAD-RT's own training and testing classes run unchanged, with two redirections so that they
run on a machine without a GPU (both are no-ops on a CUDA machine, where they are not applied):

- ``Tensor.cuda()`` / ``Module.cuda()`` return the object itself (DeepCAD-RT calls them
  unconditionally);
- the model is wrapped in ``nn.DataParallel`` as DeepCAD-RT does on a GPU (on a CPU-only torch
  that wrapper simply calls the model), because its checkpoint/ONNX code reads ``.module``.

DeepCAD-RT 1.2.0 was written for NumPy 1: it subtracts a float64 mean from the float32 movie,
which NumPy 1 kept float32 and NumPy 2 turns into float64, and its network then refuses the
float64 patches. Under NumPy 2 (a GPU machine's own environment, say) the driver casts the
network's inputs back to float32, which is what NumPy 1 gave it; its host arrays stay float64,
so its memory is then larger than with NumPy 1 (``float32_inputs`` in the facts says so).

``test`` also keeps a copy of the float result DeepCAD-RT computes before it casts to the input
dtype (it truncates to uint16), by watching the ``np.clip`` call that precedes the cast.

Usage (by the comparison script)::

    PEER_PYTHON _deepcad_driver.py JOB.json
"""

from __future__ import annotations

import json
import resource
import sys
import time
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np


def _cpu_redirect() -> bool:
    import torch
    from torch import nn

    if torch.cuda.is_available():
        return False
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]

    from deepcad import test_collection, train_collection

    def distribute(self: Any) -> None:
        self.local_model = nn.DataParallel(self.local_model)

    train_collection.training_class.distribute_GPU = distribute
    test_collection.testing_class.distribute_GPU = distribute
    return True


def _float32_inputs() -> bool:
    """Under NumPy 2, cast DeepCAD-RT's network inputs to float32 (see the module docstring)."""
    if int(np.__version__.split(".")[0]) < 2:
        return False
    import torch
    from deepcad import test_collection, train_collection

    def as_float32(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(
            a.float() if isinstance(a, torch.Tensor) and a.dtype == torch.float64 else a
            for a in args
        )

    for cls in (train_collection.training_class, test_collection.testing_class):
        original = cls.distribute_GPU

        def distribute(self: Any, original: Any = original) -> None:
            self.local_model.register_forward_pre_hook(as_float32)
            original(self)

        cls.distribute_GPU = distribute
    return True


class _WatchClip:
    """Stands in for NumPy in ``deepcad.test_collection``; keeps the array given to ``clip``."""

    def __init__(self) -> None:
        self.kept: list[np.ndarray] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    def clip(self, a: np.ndarray, lo: Any, hi: Any) -> np.ndarray:
        self.kept.append(np.array(a, dtype=np.float32, copy=True))
        return np.clip(a, lo, hi)


def _common(job: dict[str, Any]) -> dict[str, Any]:
    return {
        "datasets_path": job["datasets_path"],
        "fmap": int(job["fmap"]),
        "patch_x": int(job["patch_xy"]),
        "patch_y": int(job["patch_xy"]),
        "patch_t": int(job["patch_t"]),
        "scale_factor": 1,
        "GPU": "0",
        "num_workers": 0,
        "visualize_images_per_epoch": False,
        "colab_display": False,
    }


def train(job: dict[str, Any]) -> dict[str, Any]:
    from deepcad.train_collection import training_class

    params = {
        **_common(job),
        "overlap_factor": float(job["overlap_factor"]),
        "n_epochs": int(job["n_epochs"]),
        "lr": float(job["lr"]),
        "b1": 0.5,
        "b2": 0.999,
        "pth_dir": job["pth_dir"],
        "onnx_dir": job["onnx_dir"],
        "output_dir": job["output_dir"],
        "train_datasets_size": int(job["train_datasets_size"]),
        "select_img_num": int(job["select_img_num"]),
        "save_test_images_per_epoch": False,
    }
    tc = training_class(params)
    t0 = time.perf_counter()
    tc.run()
    seconds = time.perf_counter() - t0
    pth = sorted(Path(tc.pth_path).glob("*.pth"))
    return {
        "train_s": seconds,
        "patches_per_epoch": len(tc.name_list),
        "patches_seen": len(tc.name_list) * int(job["n_epochs"]),
        "model_dir": str(Path(tc.pth_path).parent),
        "model_name": Path(tc.pth_path).name,
        "checkpoint": str(pth[-1]) if pth else None,
        "parameters": int(sum(p.numel() for p in tc.local_model.parameters())),
    }


def test(job: dict[str, Any]) -> dict[str, Any]:
    from deepcad import test_collection
    from deepcad.test_collection import testing_class

    watch = _WatchClip()
    if job.get("float_output"):  # keeping a float copy costs memory: only when asked
        test_collection.np = watch  # type: ignore[assignment]
    params = {
        **_common(job),
        "overlap_factor": float(job["test_overlap"]),
        "pth_dir": job["pth_dir"],
        "denoise_model": job["denoise_model"],
        "output_dir": job["output_dir"],
        "test_datasize": int(job["test_datasize"]),
    }
    tc = testing_class(params)
    t0 = time.perf_counter()
    tc.run()
    seconds = time.perf_counter() - t0
    written = sorted(Path(tc.output_path).rglob("*_output.tif"))
    if not written:
        raise RuntimeError(f"DeepCAD-RT wrote no result under {tc.output_path}")
    if job.get("float_output"):
        np.save(job["float_output"], watch.kept[-1])
    return {"test_s": seconds, "written": str(written[-1])}


def main() -> int:
    warnings.filterwarnings("ignore")
    job = json.loads(Path(sys.argv[1]).read_text())
    import torch

    torch.set_num_threads(int(job["threads"]))
    torch.manual_seed(int(job["seed"]))
    import random

    random.seed(int(job["seed"]))
    redirected = _cpu_redirect()
    float32_inputs = _float32_inputs()
    facts = train(job) if job["mode"] == "train" else test(job)
    facts["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    facts["cpu_redirect"] = redirected
    facts["float32_inputs"] = float32_inputs
    facts["versions"] = {
        "deepcad": version("deepcad"),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
    }
    Path(job["facts"]).write_text(json.dumps(facts, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
