"""Deep denoising of a recording or a file: with a trained model, or trained on the data itself.

The strategies (temporal Noise2Noise as DeepCAD, Noise2Void 2D/3D, Noise2Noise, CARE) are
trained by :func:`train_denoiser` (:mod:`cascope.denoise.train`) into a :class:`DeepDenoiser`
(:mod:`cascope.denoise.model`), which streams its prediction over recordings of any length.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from cascope.config.denoise import SELF_SUPERVISED, DeepDenoiseConfig, DeepPredictConfig
from cascope.denoise._cast import output_dtype
from cascope.denoise._checks import as_stack
from cascope.denoise._files import denoise_file_with
from cascope.denoise.model import DeepDenoiser
from cascope.denoise.train import PAIRED, build_network, train_denoiser
from cascope.errors import InputError
from cascope.io import Movie, read
from cascope.tiling import BlockWriter

__all__ = [
    "PAIRED",
    "DeepDenoiser",
    "build_network",
    "denoise_deep",
    "denoise_deep_file",
    "read_recording",
    "train_denoiser",
]


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
    pcfg = predict or DeepPredictConfig.model_validate({})

    def job(movie: Movie) -> tuple[Movie, np.dtype[Any], Callable[[BlockWriter], Any]]:
        stack, _ = as_stack(movie, movie.axes)
        trained = _trained_or_loaded(
            stack, model, method, train, stack.axes, device, progress, pcfg
        )

        def run(writer: BlockWriter) -> None:
            trained.predict(stack, config=pcfg, writer=writer, device=device, progress=progress)

        return stack, output_dtype(stack.dtype, pcfg.dtype), run

    return denoise_file_with(job, input_path, output_path, axes=axes, dataset=dataset, force=force)
