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

from cascope.config.denoise import DENOISE_STEPS, SELF_SUPERVISED, DeepDenoiseConfig
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


Runner = Callable[[NDArray[np.float32]], "tuple[NDArray[np.float32], dict[str, Any]]"]


def _runner(
    method: str, *, steps: int, max_seconds: float | None, device: str, seed: int
) -> Runner:
    if method in CLASSICAL:
        from cascope.denoise.classical import denoise_array

        def classical(x: NDArray[np.float32]) -> tuple[NDArray[np.float32], dict[str, Any]]:
            return np.asarray(denoise_array(x, axes="TYX", method=method), np.float32), {}

        return classical
    from cascope.config.denoise import DeepPredictConfig
    from cascope.denoise.deep import train_denoiser

    def deep(x: NDArray[np.float32]) -> tuple[NDArray[np.float32], dict[str, Any]]:
        # the network `cascope denoise` trains (its defaults), with the patch fitted to the crop
        cfg = network_config(method, x.shape, steps=steps, max_seconds=max_seconds, seed=seed)
        model, result = train_denoiser(x, config=cfg, device=device)
        out = model.predict(x, config=DeepPredictConfig(), device=device)
        assert out is not None
        info = {"steps": result.steps_done, "steps_planned": cfg.training.steps}
        return np.asarray(out, np.float32), info

    return deep


def network_config(
    method: str,
    shape: tuple[int, ...],
    *,
    steps: int,
    max_seconds: float | None = None,
    seed: int = 0,
) -> DeepDenoiseConfig:
    """Configure the network of ``cascope denoise --method METHOD``, its patch fitted to ``shape``.

    Only the patch (clipped to the recording; along T at most a quarter of it, so deepcad's
    interleaved window and a validation part fit), the steps, the time budget and the seed
    differ from the defaults.
    """
    from cascope.config.denoise import DeepDenoiseConfig

    t, y, x = DeepDenoiseConfig.model_fields["patch"].default
    patch = (min(t, max(2, shape[0] // 4)), min(y, shape[1]), min(x, shape[2]))
    training: dict[str, Any] = {"steps": steps, "val_every": min(100, steps), "seed": seed}
    if max_seconds is not None:
        training["max_seconds"] = max_seconds
    return DeepDenoiseConfig.model_validate(
        {"method": method, "patch": patch, "training": training}
    )


def benchmark_crop(
    shape: tuple[int, ...],
    crop: tuple[int, int, int],
    score: NDArray[np.float64] | None = None,
) -> tuple[slice, slice, slice]:
    """Where to benchmark: the first frames, and the window of most structure in them.

    Parameters
    ----------
    shape : (int, int, int)
        The movie's ``(T, Y, X)``.
    crop : (int, int, int)
        Crop size (clipped to the movie).
    score : ndarray, optional
        A ``(Y, X)`` map whose sum over the window is maximised (e.g. the local standard
        deviation of a mean image); without one the window is centred.

    Returns
    -------
    tuple of slice
        Frames, rows and columns of the crop.
    """
    ct, cy, cx = (min(c, s) for c, s in zip(crop, shape, strict=True))
    if score is None or (cy, cx) == shape[1:]:
        y0, x0 = (shape[1] - cy) // 2, (shape[2] - cx) // 2
    else:
        integral = np.pad(np.cumsum(np.cumsum(score, 0), 1), ((1, 0), (1, 0)))
        sums = integral[cy:, cx:] - integral[:-cy, cx:] - integral[cy:, :-cx] + integral[:-cy, :-cx]
        y0, x0 = (int(v) for v in np.unravel_index(int(np.argmax(sums)), sums.shape))
    return slice(0, ct), slice(y0, y0 + cy), slice(x0, x0 + cx)


def benchmark_denoisers(
    noisy: Any,
    *,
    reference: Any | None = None,
    methods: Sequence[str] | None = None,
    steps: int = DENOISE_STEPS,
    max_seconds: float | None = None,
    device: str = "auto",
    seed: int = 0,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    on_start: Callable[[str], None] | None = None,
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
        Training steps of each network (every network trains from scratch, with the defaults
        of ``cascope denoise``: :func:`network_config`).
    max_seconds : float, optional
        Training time of each network: it stops there, before ``steps`` if need be (the row
        says how many steps it made).
    device : str
        Where networks run.
    seed : int
        Seed of the networks.
    on_result : callable, optional
        Called with each row as soon as it is done.
    on_start : callable, optional
        Called with a method's name when it starts.

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
        if on_start is not None:
            on_start(method)
        run = _runner(method, steps=steps, max_seconds=max_seconds, device=device, seed=seed)
        t0 = time.perf_counter()
        try:
            out, info = run(inp)
        except (ImportError, ModuleNotFoundError) as err:
            log.warning("%s skipped: %s", method, err)
            continue
        row = _score(method, out, inp, time.perf_counter() - t0, ref, held_out)
        row.update(info)
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
