"""Deep denoising: temporal Noise2Noise (DeepCAD), Noise2Void 2D/3D, Noise2Noise and CARE.

All strategies are data pairings (:mod:`cascope.training.samplers`) over one U-Net family and
one trainer; prediction uses blended tiles streamed in temporal blocks (:mod:`cascope.tiling`).
The input's mean and standard deviation are recorded with the model and inverted at prediction,
so the output is in the input's units.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray

from cascope._json import versions
from cascope.config.denoise import SELF_SUPERVISED, DeepDenoiseConfig, DeepPredictConfig
from cascope.errors import InputError
from cascope.io import Movie, as_movie, check_finite, check_output, open_writer_like, read
from cascope.models import UNet, load_model, save_model
from cascope.preprocess.sampling import sample_planes
from cascope.tiling import (
    ArrayWriter,
    BatchPredictor,
    BlockWriter,
    averaged_over_flips,
    predict_streamed,
    predict_streamed_on_device,
    torch_predictor,
)
from cascope.training import (
    Pairing,
    PatchSampler,
    Trainer,
    TrainResult,
    blind_spot_pairing,
    get_loss,
    noise2noise_pairing,
    seed_everything,
    supervised_pairing,
    temporal_interleave_pairing,
)

log = logging.getLogger(__name__)

PAIRED = ("n2n", "care")


@dataclass
class DeepDenoiser:
    """A trained denoising network with everything needed to apply it.

    Attributes
    ----------
    model : torch.nn.Module
        The U-Net (evaluation mode).
    config : DeepDenoiseConfig
        How it was trained.
    input_norm, output_norm : (float, float)
        Mean and standard deviation used to normalise inputs and to restore outputs.
    axes : str
        Axes of the data it was trained on (``"TYX"`` or ``"ZYX"``).
    provenance : dict
        Training facts (steps, losses, time, versions).
    """

    model: torch.nn.Module
    config: DeepDenoiseConfig
    input_norm: tuple[float, float]
    output_norm: tuple[float, float]
    axes: str = "TYX"
    provenance: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path, *, force: bool = False) -> Path:
        """Write the model folder (``weights.safetensors`` + ``model.yaml``)."""
        extra = {
            "task": "denoise",
            "strategy": self.config.method,
            "axes": self.axes,
            "normalization": {
                "input": {"mean": self.input_norm[0], "std": self.input_norm[1]},
                "output": {"mean": self.output_norm[0], "std": self.output_norm[1]},
            },
            "denoise": self.config.model_dump(mode="json"),
            "provenance": self.provenance,
        }
        return save_model(path, self.model, extra=extra, force=force)

    @classmethod
    def load(cls, path: str | Path, *, device: str | torch.device = "cpu") -> DeepDenoiser:
        """Read a model folder written by :meth:`save` (no code is executed)."""
        model, doc = load_model(path, device=device)
        if doc.get("task") != "denoise":
            raise InputError("the model folder does not hold a denoising model", Path(path))
        from pydantic import ValidationError

        from cascope.models.checkpoint import CONFIG, check_normalization

        cfg_path = Path(path) / CONFIG
        norm = doc.get("normalization") or {}
        try:
            config = DeepDenoiseConfig.model_validate(doc.get("denoise"))
        except ValidationError as err:
            first = err.errors()[0]
            key = ".".join(["denoise", *(str(p) for p in first["loc"])])
            raise InputError(f"{key}: {first['msg']}", cfg_path) from err
        return cls(
            model=model,
            config=config,
            input_norm=check_normalization(norm.get("input"), "normalization.input", cfg_path),
            output_norm=check_normalization(norm.get("output"), "normalization.output", cfg_path),
            axes=str(doc.get("axes", "TYX")),
            provenance=dict(doc.get("provenance") or {}),
        )

    def predict(
        self,
        data: Any,
        *,
        axes: str | None = None,
        config: DeepPredictConfig | None = None,
        writer: BlockWriter | None = None,
        device: str | torch.device = "auto",
        progress: bool = False,
    ) -> NDArray[Any] | None:
        """Denoise a recording, streamed in blocks along its first axis.

        Parameters
        ----------
        data : Movie or array-like
            ``(T|Z, Y, X)`` (or a single ``(Y, X)`` image), read lazily block by block.
        axes : str, optional
            Axes of a bare array (default: the axes the model was trained on).
        config : DeepPredictConfig, optional
            Tiling, blending, block size and output type.
        writer : BlockWriter, optional
            Receives each finished block (e.g. :func:`cascope.io.open_writer`); without one the
            result is returned in memory.
        device : str or torch.device
            Where the network runs.
        progress : bool
            Show a progress bar.

        Returns
        -------
        ndarray or None
            The denoised recording when no writer is given.
        """
        from cascope.denoise.stream import cast_output, output_dtype

        cfg = config or DeepPredictConfig.model_validate({})
        movie, squeeze = _as_stack(data, axes or self.axes)
        out_dtype = output_dtype(movie.dtype, cfg.dtype)
        result = None
        if writer is None:
            result = np.empty(movie.shape, out_dtype)
            writer = ArrayWriter(result)
        in_mean, in_std = self.input_norm
        out_mean, out_std = self.output_norm
        predictor = torch_predictor(
            self.model,
            device=device,
            amp=cfg.amp,
            channels_last=cfg.channels_last,
            compile=cfg.compile,
        )
        ndim = self.config.network_ndim
        tile = cfg.tile if ndim == 3 else (min(cfg.tile[0], 8), *cfg.tile[1:])
        overlap: Any = cfg.overlap
        if ndim == 2:  # frames are independent: no overlap along T
            overlap = (0, *(round(cfg.overlap * t) for t in tile[1:]))
        streaming = {
            "tile": tile,
            "block": cfg.block,
            "halo": tile[0] // 2 if ndim == 3 else 0,
            "overlap": overlap,
            "batch_size": cfg.batch_size,
            "blend": cfg.blend,
            "background_io": cfg.background_io,
            "progress": progress,
        }
        data = _Finite(movie)
        on_device = cfg.blend_on == "device" or (
            cfg.blend_on == "auto" and predictor.device.type == "cuda"
        )
        if on_device and not cfg.tta:
            predict_streamed_on_device(
                predictor,
                data,
                _CastOnHost(writer, out_dtype),
                preprocess=lambda t: (t.float() - in_mean) / in_std,
                postprocess=lambda t: _restore_on_device(t * out_std + out_mean, out_dtype),
                **streaming,
            )
        else:
            host: BatchPredictor = predictor
            if cfg.tta:  # tiles are (B, C, T|Z, Y, X); a 2D network sees each plane alone
                host = averaged_over_flips(predictor, (2, 3, 4) if ndim == 3 else (3, 4))

            class _Normalised:
                """Normalise blocks as they are read."""

                shape = movie.shape

                def __getitem__(self, key: Any) -> NDArray[np.float32]:
                    block = np.asarray(data[key], np.float32)
                    return (block - np.float32(in_mean)) / np.float32(in_std)

            def restore(block: NDArray[np.float32]) -> NDArray[Any]:
                return cast_output(block * np.float32(out_std) + np.float32(out_mean), out_dtype)

            predict_streamed(host, _Normalised(), writer, postprocess=restore, **streaming)
        if result is not None and squeeze:
            return result[0]
        return result


def _restore_on_device(block: torch.Tensor, dtype: np.dtype[Any]) -> torch.Tensor:
    """Convert a float block to ``dtype`` on its device where that is cheap to copy back.

    As :func:`cascope.denoise.stream.cast_output`: integers are rounded and clipped. Integers of
    up to 16 bits are made on the device, so only they cross to the host (uint16 as int32, as
    CUDA has few kernels for torch's unsigned types, then narrowed on the host); other types
    cross as float32 and are cast there (:class:`_CastOnHost`), as on the host path.
    """
    if np.issubdtype(dtype, np.integer) and dtype.itemsize <= 2:
        info = np.iinfo(dtype)
        if dtype.kind == "u" and dtype.itemsize > 1:
            target = torch.int32
        else:
            target = torch.from_numpy(np.empty(0, dtype.newbyteorder("="))).dtype
        return block.round().clamp_(info.min, info.max).to(target)
    return block


class _CastOnHost:
    """A block writer that casts blocks that are not yet of ``dtype`` (see _restore_on_device)."""

    def __init__(self, writer: BlockWriter, dtype: np.dtype[Any]) -> None:
        self.writer, self.dtype = writer, dtype

    def write(self, block: NDArray[Any], start: int) -> None:
        from cascope.denoise.stream import cast_output

        if block.dtype == self.dtype:
            pass
        elif block.dtype.kind in "iu" and self.dtype.kind in "iu":  # clamped on the device
            block = block.astype(self.dtype)
        else:
            block = cast_output(block, self.dtype)
        self.writer.write(block, start)


def _as_stack(data: Any, axes: str) -> tuple[Movie, bool]:
    """Wrap data as a ``(N, Y, X)`` movie; a 2D image becomes a stack of one."""
    if isinstance(data, Movie):
        movie = data
    else:
        arr = data if hasattr(data, "shape") else np.asarray(data)
        if len(arr.shape) == 2:
            return Movie(np.asarray(arr)[None], axes="TYX"), True
        movie = as_movie(arr, axes)
    if movie.ndim == 2:
        return Movie(movie[...][None], axes="T" + movie.axes), True
    if movie.ndim != 3 or movie.axes[1:] != "YX" or movie.axes[0] not in "TZ":
        raise InputError(
            f"deep denoising needs a (T|Z, Y, X) recording, got axes {movie.axes!r}", movie.source
        )
    return movie, False


class _Finite:
    """A recording read along its first axis, refusing NaN or infinite values (InputError).

    Blocks are checked as they are read (in the reader thread when streaming), so a bad plane
    stops the prediction before its block is written, and the file is never read twice.
    """

    def __init__(self, movie: Movie) -> None:
        self.movie, self.shape, self.dtype = movie, movie.shape, movie.dtype

    def __getitem__(self, key: Any) -> NDArray[Any]:
        block = np.asarray(self.movie[key])
        if isinstance(key, slice):  # planes along the first axis: name the bad ones
            start = key.indices(self.shape[0])[0]
            check_finite(block, path=self.movie.source, axis=self.movie.axes[0], start=start)
        else:
            check_finite(block, path=self.movie.source)
        return block


def _check_finite(movie: Movie, block: int = 64) -> None:
    """Read a floating-point recording once, refusing NaN or infinite values (InputError)."""
    if not np.issubdtype(movie.dtype, np.floating):
        return
    data = _Finite(movie)
    for start in range(0, movie.shape[0], block):
        data[start : start + block]


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
    movies = [_as_stack(m, axes)[0] for m in _listify(inputs)]
    if cfg.method in PAIRED:
        if targets is None:
            raise InputError(f"method {cfg.method!r} needs targets (--target)")
        tmovies = [_as_stack(m, axes)[0] for m in _listify(targets)]
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
        _check_finite(m)
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
    seed_everything(seed)
    net = build_network(cfg)
    trainer = Trainer(
        net,
        sampler,
        get_loss(cfg.loss),
        config=cfg.training,
        val_sampler=val_sampler,
        device=device,
        checkpoint_dir=checkpoint_dir,
    )
    result = trainer.fit(resume=resume, progress=progress)
    model = trainer.model.to("cpu").eval()
    provenance = {
        "steps": result.steps_done,
        "final_loss": result.losses[-1] if result.losses else None,
        "best_val_loss": result.best_val,
        "best_step": result.best_step,
        "rollbacks": result.rollbacks,
        "seconds": round(result.seconds, 2),
        "patches_seen": result.steps_done * cfg.training.batch_size,
        "device": str(trainer.device),
        "precision": str(trainer.amp_dtype or torch.float32).removeprefix("torch."),
        "float32_steps": result.float32_steps,
        "mean_correction": 0.0,
        **versions(("cascope", "torch")),
        "trained_on": [str(m.source) for m in movies if m.source is not None],
        "input_shapes": [list(m.shape) for m in movies],
    }
    denoiser = DeepDenoiser(
        model=model,
        config=cfg,
        input_norm=in_norm,
        output_norm=out_norm,
        axes=movies[0].axes,
        provenance=provenance,
    )
    if cfg.mean_correction:
        target = tmovies[0] if tmovies else movies[0]
        _keep_mean(denoiser, movies[0], target, device, predict, progress=progress)
    return denoiser, result


def _keep_mean(
    denoiser: DeepDenoiser,
    movie: Movie,
    target: Movie,
    device: Any,
    predict: DeepPredictConfig | None,
    *,
    progress: bool = False,
) -> None:
    """Shift the denoiser's output so that it keeps the mean of a sample of its training data.

    The denoised sample (at most 64 planes from the middle, at most 256 x 256 from the centre,
    predicted as any recording is) is compared with the same region of the target (for the
    self-supervised methods the noisy recording itself, whose mean is the clean mean): a network
    trained for few steps, or one that estimates a median (an L1 loss), misses it. The
    difference is taken off the output's restoring mean and recorded as ``mean_correction``.
    """
    n, ny, nx = movie.shape
    t0, y0, x0 = max(0, (n - 64) // 2), max(0, (ny - 256) // 2), max(0, (nx - 256) // 2)
    region = (slice(t0, t0 + 64), slice(y0, y0 + 256), slice(x0, x0 + 256))
    sample = np.asarray(movie[region], np.float32)
    reference = sample if target is movie else np.asarray(target[region], np.float32)
    out = denoiser.predict(
        sample, axes=movie.axes, config=predict, device=device, progress=progress
    )
    assert out is not None
    shift = float(np.mean(out, dtype=np.float64) - np.mean(reference, dtype=np.float64))
    if not math.isfinite(shift):
        return
    mean, std = denoiser.output_norm
    denoiser.output_norm = (mean - shift, std)
    denoiser.provenance["mean_correction"] = -shift
    log.info("mean correction: %.4g (input units)", -shift)


def denoise_deep(
    data: Any,
    *,
    model: DeepDenoiser | str | Path | None = None,
    method: str = "deepcad",
    axes: str = "TYX",
    train: DeepDenoiseConfig | None = None,
    predict: DeepPredictConfig | None = None,
    writer: BlockWriter | None = None,
    device: str | torch.device = "auto",
    progress: bool = False,
) -> NDArray[Any] | None:
    """Denoise a recording with a trained model, or train on the recording itself first.

    Parameters
    ----------
    data : Movie or array-like
        ``(T|Z, Y, X)`` recording.
    model : DeepDenoiser, str or Path, optional
        A trained model or model folder; without one a model is trained on ``data``.
    method : {"deepcad", "n2v", "n2v3d"}
        Self-supervised strategy used when no model is given.
    axes : str
        Axes of a bare array.
    train, predict : optional
        Training (when no model is given) and prediction options.
    writer : BlockWriter, optional
        Streaming destination; without one the result is returned.
    device : str or torch.device
        Where the network runs.
    progress : bool
        Show progress bars.

    Returns
    -------
    ndarray or None
        The denoised recording in the input's units, unless a writer was given.
    """
    model = _trained_or_loaded(data, model, method, train, axes, device, progress, predict)
    return model.predict(
        data, axes=axes, config=predict, writer=writer, device=device, progress=progress
    )


def _trained_or_loaded(
    data: Any,
    model: DeepDenoiser | str | Path | None,
    method: str,
    train: DeepDenoiseConfig | None,
    axes: str,
    device: str | torch.device,
    progress: bool,
    predict: DeepPredictConfig | None = None,
) -> DeepDenoiser:
    """Return the model, load the model folder, or (no model) train ``method`` on ``data``."""
    if isinstance(model, DeepDenoiser):
        return model
    if model is not None:
        return DeepDenoiser.load(model)
    if method not in SELF_SUPERVISED:
        raise InputError(f"method {method!r} needs pairs; train it with `cascope train`")
    cfg = train or DeepDenoiseConfig.model_validate({"method": method})
    if cfg.method != method:
        cfg = cfg.model_copy(update={"method": method})
    trained, _ = train_denoiser(
        data, config=cfg, axes=axes, device=device, progress=progress, predict=predict
    )
    return trained


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


def read_recording(
    path: str | Path, *, axes: str | None = None, dataset: str | None = None
) -> Movie:
    """Open a recording lazily with :func:`cascope.io.read` (any format it reads)."""
    return read(path, axes=axes, dataset=dataset, kind="movie")


def denoise_deep_file(
    input_path: str | Path,
    output_path: str | Path,
    *,
    model: DeepDenoiser | str | Path | None = None,
    method: str = "deepcad",
    train: DeepDenoiseConfig | None = None,
    predict: DeepPredictConfig | None = None,
    axes: str | None = None,
    dataset: str | None = None,
    device: str | torch.device = "auto",
    force: bool = False,
    progress: bool = False,
) -> Path:
    """Denoise a recording file into a new file, streamed in blocks (``cascope denoise --model``).

    Without ``model``, a ``method`` network is first trained on the input itself.

    Parameters
    ----------
    input_path, output_path : str or Path
        Recording to read and file to write (the output never replaces the input; it is written
        under a temporary name and renamed when complete).
    model, method, train, predict, device, progress
        As in :func:`denoise_deep`.
    axes : str, optional
        Axes of the input when the file does not say.
    dataset : str, optional
        Dataset inside an HDF5 file.
    force : bool
        Replace an existing output.

    Returns
    -------
    Path
        The output file.
    """
    from cascope.denoise.stream import output_dtype

    src = Path(input_path)
    check_output(output_path, inputs=[src], force=force)
    movie = read_recording(src, axes=axes, dataset=dataset)
    stack, _ = _as_stack(movie, movie.axes)
    pcfg = predict or DeepPredictConfig.model_validate({})
    model = _trained_or_loaded(stack, model, method, train, stack.axes, device, progress, pcfg)
    dtype = output_dtype(stack.dtype, pcfg.dtype)
    with open_writer_like(output_path, stack, dtype, force=force, inputs=[src]) as writer:
        model.predict(stack, config=pcfg, writer=writer, device=device, progress=progress)
    return Path(output_path)
