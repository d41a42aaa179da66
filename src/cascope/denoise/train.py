"""Train a denoiser: temporal Noise2Noise (DeepCAD), Noise2Void 2D/3D, Noise2Noise and CARE.

Every strategy is a data pairing (:mod:`cascope.training.samplers`) over one U-Net family,
trained by the one driver (:func:`cascope.training.train_model`) into a
:class:`~cascope.denoise.DeepDenoiser`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray

from cascope.config.denoise import DeepDenoiseConfig, DeepPredictConfig
from cascope.denoise._checks import as_stack, check_all_finite
from cascope.denoise.calibration import calibrate
from cascope.denoise.model import DeepDenoiser
from cascope.errors import InputError
from cascope.io import Movie
from cascope.models import UNet
from cascope.preprocess.sampling import sample_planes
from cascope.training import (
    Pairing,
    PatchSampler,
    TrainResult,
    blind_spot_pairing,
    get_loss,
    noise2noise_pairing,
    supervised_pairing,
    temporal_interleave_pairing,
)
from cascope.training.driver import train_model

log = logging.getLogger(__name__)

PAIRED = ("n2n", "care")


def _norm_stats(movie: Movie, n_planes: int = 64) -> tuple[float, float]:
    """Mean and standard deviation from evenly spaced planes (never the whole movie)."""
    sample = sample_planes(movie, n_planes, dtype=np.float64)
    std = float(sample.std())
    return float(sample.mean()), std if std > 0 else 1.0


def _pairing(cfg: DeepDenoiseConfig) -> Pairing:
    if cfg.method == "deepcad":
        return temporal_interleave_pairing()
    if cfg.method in ("n2v", "n2v3d"):
        return blind_spot_pairing(fraction=cfg.mask_fraction, radius=cfg.mask_radius)
    if cfg.method == "n2n":
        return noise2noise_pairing()
    return supervised_pairing()


def _window(cfg: DeepDenoiseConfig) -> tuple[int, int, int]:
    t, y, x = cfg.patch
    if cfg.network_ndim == 2:
        return (1, y, x)
    return (2 * t, y, x) if cfg.method == "deepcad" else (t, y, x)


def build_network(cfg: DeepDenoiseConfig) -> UNet:
    """Build the U-Net a configuration asks for."""
    n2v2 = cfg.n2v2 and cfg.method in ("n2v", "n2v3d")
    return UNet(
        1,
        1,
        ndim=cfg.network_ndim,
        depth=cfg.depth,
        base=cfg.base,
        norm=cfg.norm,
        pool="blur" if n2v2 else "max",
        top_skip=not n2v2,
        residual=cfg.use_residual,
    )


def train_denoiser(
    inputs: Sequence[Any] | Any,
    *,
    config: DeepDenoiseConfig | None = None,
    targets: Sequence[Any] | Any | None = None,
    axes: str = "TYX",
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    device: str | torch.device = "auto",
    progress: bool = False,
    predict: DeepPredictConfig | None = None,
) -> tuple[DeepDenoiser, TrainResult]:
    """Train a denoising network on recordings (self-supervised, or on pairs).

    Parameters
    ----------
    inputs : Movie, array-like, or a sequence of them
        Noisy recordings ``(T|Z, Y, X)``.
    config : DeepDenoiseConfig, optional
        Strategy, network and training options.
    targets : Movie, array-like, or a sequence of them, optional
        ``n2n``: the second noisy recording of each input; ``care``: the high-SNR recording.
    axes : str
        Axes of bare arrays.
    checkpoint_dir : str or Path, optional
        Where resumable checkpoints go.
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir``.
    device : str or torch.device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    progress : bool
        Show a progress bar with loss and ETA.
    predict : DeepPredictConfig, optional
        How the recording will be predicted: the mean correction (``config.mean_correction``)
        predicts its sample the same way, as a network trained briefly can depend on the tiling.

    Returns
    -------
    denoiser : DeepDenoiser
        The trained model (best validation weights), ready to predict or save.
    result : TrainResult
        Losses and timing.
    """
    cfg = config or DeepDenoiseConfig.model_validate({})
    movies = [as_stack(m, axes)[0] for m in _listify(inputs)]
    if cfg.method in PAIRED:
        if targets is None:
            raise InputError(f"method {cfg.method!r} needs targets (--target)")
        tmovies = [as_stack(m, axes)[0] for m in _listify(targets)]
        if len(tmovies) != len(movies):
            raise InputError(f"got {len(movies)} inputs but {len(tmovies)} targets")
        for m, t in zip(movies, tmovies, strict=True):
            if m.shape != t.shape:
                raise InputError(f"input {m.shape} and target {t.shape} differ in shape", t.source)
    elif targets is not None:
        raise InputError(f"method {cfg.method!r} is self-supervised and takes no targets")
    else:
        tmovies = []
    if cfg.method == "deepcad":
        for m in movies:
            if m.axes[0] != "T":
                raise InputError("deepcad pairs neighbouring frames: the recording needs a T axis")
            if m.shape[0] < 2:
                raise InputError(
                    f"deepcad pairs neighbouring frames: it needs at least 2, got {m.shape[0]} "
                    "(n2v learns from single frames)",
                    m.source,
                )
    for m in [*movies, *tmovies]:
        check_all_finite(m)
    in_norm = _norm_stats(movies[0])
    out_norm = _norm_stats(tmovies[0]) if cfg.method == "care" else in_norm
    items: list[tuple[Any, ...]] = (
        [(m.data, t.data) for m, t in zip(movies, tmovies, strict=True)]
        if tmovies
        else [(m.data,) for m in movies]
    )
    normalize = [in_norm, out_norm] if tmovies else [in_norm]
    if cfg.method == "n2n":
        normalize = [in_norm, in_norm]
    window = _window(cfg)
    train_regions, val_regions = _split(movies, window[0], cfg.val_fraction)
    common: dict[str, Any] = {
        "pairing": _pairing(cfg),
        "squeeze": cfg.network_ndim == 2,
        "normalize": normalize,
    }
    augment: Literal["none", "image", "stack"] = "none"
    if cfg.augment:
        augment = "stack" if cfg.network_ndim == 3 else "image"
    seed = cfg.training.seed
    sampler = PatchSampler(
        items, window, augment=augment, regions=train_regions, seed=seed, **common
    )
    val_sampler = None
    if val_regions is not None:
        val_sampler = PatchSampler(items, window, regions=val_regions, seed=seed + 1, **common)
    denoiser = train_model(
        lambda: build_network(cfg),
        sampler,
        get_loss(cfg.loss),
        training=cfg.training,
        bundle=DeepDenoiser,
        val_sampler=val_sampler,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        progress=progress,
        device=device,
        config=cfg,
        input_norm=in_norm,
        output_norm=out_norm,
        axes=movies[0].axes,
    )
    denoiser.model = denoiser.model.to("cpu")
    denoiser.provenance.update(
        {
            "mean_correction": 0.0,
            "trained_on": [str(m.source) for m in movies if m.source is not None],
            "input_shapes": [list(m.shape) for m in movies],
        }
    )
    if cfg.mean_correction:
        target = tmovies[0] if tmovies else movies[0]
        _calibrate_intensity(denoiser, movies[0], target, device, predict, progress=progress)
    assert denoiser.history is not None
    return denoiser, denoiser.history


def _calibrate_intensity(
    denoiser: DeepDenoiser,
    movie: Movie,
    target: Movie,
    device: Any,
    predict: DeepPredictConfig | None,
    *,
    progress: bool = False,
) -> None:
    """Calibrate the denoiser's output so that it keeps the intensities of its training data.

    On a sample (at most 64 planes from the middle, at most 256 x 256 from the centre, predicted
    as any recording is) :func:`cascope.denoise.calibration.calibrate` measures the output's
    gain against views of the scene with independent noise and its offset against the target
    (for the self-supervised methods the noisy recording itself, whose mean is the clean mean):
    a network trained for few steps, or one that estimates a median (an L1 loss), misses both.
    A response curve (deepcad, Noise2Noise) travels with the model as ``output_curve``; an
    affine correction is folded into the output normalisation. Either is recorded as
    ``mean_correction`` (the offset at the mean intensity), ``intensity_scale`` and
    ``intensity_shift`` (the affine summary) and ``intensity_calibration`` (how it was found).
    """
    n, ny, nx = movie.shape
    t0, y0, x0 = max(0, (n - 64) // 2), max(0, (ny - 256) // 2), max(0, (nx - 256) // 2)
    region = (slice(t0, t0 + 64), slice(y0, y0 + 256), slice(x0, x0 + 256))
    sample = np.asarray(movie[region], np.float32)
    reference = None if target is movie else np.asarray(target[region], np.float32)

    def run(stack: NDArray[np.float32]) -> NDArray[Any]:
        out = denoiser.predict(
            stack, axes=movie.axes, config=predict, device=device, progress=progress
        )
        assert out is not None
        return out

    cal = calibrate(run, sample, denoiser.config.method, reference)
    if cal is None:
        return
    if cal.curve is not None:
        denoiser.output_curve = cal.curve
    else:
        mean, std = denoiser.output_norm
        denoiser.output_norm = (cal.scale * mean + cal.shift, cal.scale * std)
    level = float(np.mean(sample, dtype=np.float64))
    denoiser.provenance["mean_correction"] = float(cal.correct(np.array(level))) - level
    denoiser.provenance["intensity_scale"] = cal.scale
    denoiser.provenance["intensity_shift"] = cal.shift
    denoiser.provenance["intensity_calibration"] = cal.note


def _listify(x: Any) -> list[Any]:
    if isinstance(x, list | tuple):
        return list(x)
    return [x]


def _split(
    movies: list[Movie], window0: int, fraction: float
) -> tuple[list[tuple[slice, ...]], list[tuple[slice, ...]] | None]:
    """Hold out the last planes of each recording for validation when they fit a window."""
    if fraction <= 0:
        return [(slice(None),)] * len(movies), None
    train: list[tuple[slice, ...]] = []
    val: list[tuple[slice, ...]] = []
    for m in movies:
        n = m.shape[0]
        n_val = max(window0, math.ceil(fraction * n))
        if n - n_val < window0:
            log.warning("recording too short for a held-out validation part; validating on it")
            train.append((slice(None),))
            val.append((slice(None),))
        else:
            train.append((slice(0, n - n_val),))
            val.append((slice(n - n_val, n),))
    return train, val
