"""Which denoiser for my data? Run every applicable method on one recording and rank them.

With a clean reference the score is SI-PSNR (plus PSNR and SSIM, from :mod:`cascope.metrics`).
Without one the score is self-supervised: each method denoises the even frames only and its
output is compared with the held-out odd frames, whose noise it has never seen. For noise
independent between frames, ``E|d - n_odd|^2 = |d - s_odd|^2 + sigma^2``, so this error ranks
methods like the true error (offset by the noise variance and the signal change between
neighbouring frames).
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cascope.config.denoise import SELF_SUPERVISED
from cascope.errors import InputError
from cascope.metrics import psnr, si_psnr, ssim

log = logging.getLogger(__name__)

CLASSICAL = ("gaussian", "median", "bilateral", "bm3d", "bm4d")
DEEP = SELF_SUPERVISED


def available_methods() -> list[str]:
    """Methods that can run here (BM3D/BM4D only with their optional packages)."""
    out = []
    for m in CLASSICAL:
        if m in ("bm3d", "bm4d") and importlib.util.find_spec(m) is None:
            continue
        out.append(m)
    return out + list(DEEP)


def _runner(
    method: str, *, steps: int, patch: tuple[int, int, int], device: str, seed: int
) -> Callable[[NDArray[np.float32]], NDArray[np.float32]]:
    if method in CLASSICAL:
        from cascope.denoise.classical import denoise_array

        def classical(x: NDArray[np.float32]) -> NDArray[np.float32]:
            return np.asarray(denoise_array(x, axes="TYX", method=method), np.float32)

        return classical
    from cascope.config.denoise import DeepDenoiseConfig, DeepPredictConfig
    from cascope.denoise.deep import train_denoiser

    def deep(x: NDArray[np.float32]) -> NDArray[np.float32]:
        t = min(patch[0], max(2, x.shape[0] // 4))
        cfg = DeepDenoiseConfig.model_validate(
            {
                "method": method,
                "patch": (t, min(patch[1], x.shape[1]), min(patch[2], x.shape[2])),
                "depth": 3,
                "base": 8,
                "val_fraction": 0.0,
                "training": {"steps": steps, "batch_size": 4, "lr": 2e-3, "seed": seed},
            }
        )
        model, _ = train_denoiser(x, config=cfg, device=device)
        out = model.predict(x, config=DeepPredictConfig(), device=device)
        assert out is not None
        return np.asarray(out, np.float32)

    return deep


def benchmark_denoisers(
    noisy: Any,
    *,
    reference: Any | None = None,
    methods: Sequence[str] | None = None,
    steps: int = 200,
    patch: tuple[int, int, int] = (8, 64, 64),
    device: str = "auto",
    seed: int = 0,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Score denoisers on one ``(T, Y, X)`` recording and rank them.

    Parameters
    ----------
    noisy : array-like
        The recording (read into memory: pass a crop of a large movie).
    reference : array-like, optional
        Clean ground truth of the same shape.
    methods : sequence of str, optional
        Subset of :func:`available_methods` (default: all of them).
    steps : int
        Training steps of each network (a small budget: every network trains from scratch).
    patch : tuple of int
        Training patch (T, Y, X) of the networks.
    device : str
        Where networks run.
    seed : int
        Seed of the networks.
    on_result : callable, optional
        Called with each row as soon as it is done.

    Returns
    -------
    list of dict
        One row per method with ``method``, ``seconds`` and the scores, best first
        (``noisy`` itself is included as the baseline).
    """
    x = np.asarray(noisy, np.float32)
    if x.ndim != 3:
        raise InputError(f"benchmarking needs a (T, Y, X) movie, got shape {x.shape}")
    ref = None if reference is None else np.asarray(reference, np.float32)
    if ref is not None and ref.shape != x.shape:
        raise InputError(f"reference shape {ref.shape} differs from the movie's {x.shape}")
    if ref is None and x.shape[0] < 4:
        raise InputError("the held-out-frame score needs at least 4 frames")
    chosen = list(methods) if methods else available_methods()
    unknown = sorted(set(chosen) - set(CLASSICAL) - set(DEEP))
    if unknown:
        raise InputError(f"unknown method(s) {unknown}; choose from {available_methods()}")
    if ref is None:
        n = x.shape[0] // 2
        inp, held_out = x[0 : 2 * n : 2], x[1 : 2 * n : 2]
    else:
        inp, held_out = x, None
    rows = [_score("noisy (input)", inp, inp, 0.0, ref, held_out)]
    if on_result is not None:
        on_result(rows[0])
    for method in chosen:
        run = _runner(method, steps=steps, patch=patch, device=device, seed=seed)
        t0 = time.perf_counter()
        try:
            out = run(inp)
        except (ImportError, ModuleNotFoundError) as err:
            log.warning("%s skipped: %s", method, err)
            continue
        row = _score(method, out, inp, time.perf_counter() - t0, ref, held_out)
        rows.append(row)
        if on_result is not None:
            on_result(row)
    key = "si_psnr" if ref is not None else "heldout_mse"
    sign = -1.0 if ref is not None else 1.0
    rows.sort(key=lambda r: sign * r[key])
    for rank, r in enumerate(rows, 1):
        r["rank"] = rank
    return rows


def _score(
    method: str,
    out: NDArray[np.float32],
    inp: NDArray[np.float32],
    seconds: float,
    ref: NDArray[np.float32] | None,
    held_out: NDArray[np.float32] | None,
) -> dict[str, Any]:
    row: dict[str, Any] = {"method": method, "seconds": round(seconds, 3)}
    if ref is not None:
        row["si_psnr"] = si_psnr(out, ref)
        row["psnr"] = psnr(out, ref)
        row["ssim"] = ssim(out, ref)
    else:
        assert held_out is not None
        row["heldout_mse"] = float(np.mean((out.astype(np.float64) - held_out) ** 2))
    return row
