"""A trained denoiser: the network, its normalisation and how it streams over a recording.

The input's mean and standard deviation are recorded with the model and inverted at
prediction, so the output is in the input's units. Prediction uses blended tiles streamed in
temporal blocks (:mod:`cascope.tiling`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import NDArray

from cascope.config.denoise import DeepDenoiseConfig, DeepPredictConfig
from cascope.denoise._cast import CastOnHost, cast_output, output_dtype, restore_on_device
from cascope.denoise._checks import Finite, as_stack
from cascope.errors import InputError
from cascope.models.response import Curve, apply_ramps
from cascope.tiling import (
    ArrayWriter,
    BatchPredictor,
    BlockWriter,
    averaged_over_flips,
    predict_streamed,
    predict_streamed_on_device,
    torch_predictor,
)
from cascope.training.driver import ModelBundle
from cascope.training.trainer import TrainResult


def _mean_std(norm: tuple[float, float]) -> dict[str, float]:
    return {"mean": norm[0], "std": norm[1]}


class DeepDenoiser(ModelBundle):
    """A trained denoising network with everything needed to apply it.

    Parameters
    ----------
    model : torch.nn.Module
        The U-Net (evaluation mode).
    config : DeepDenoiseConfig
        How it was trained.
    input_norm, output_norm : (float, float)
        Mean and standard deviation used to normalise inputs and to restore outputs (kept in
        :attr:`normalization` as ``{"input": {"mean", "std"}, "output": {...}}``).
    axes : str
        Axes of the data it was trained on (``"TYX"`` or ``"ZYX"``).
    output_curve : Curve, optional
        A monotone response curve applied after the output normalisation (input units), as
        measured by the intensity calibration (:mod:`cascope.denoise.calibration`).
    provenance : dict, optional
        Training facts (steps, losses, time, versions).
    history : TrainResult, optional
        The training run's losses.
    """

    task: ClassVar[str] = "denoise"
    config: DeepDenoiseConfig

    def __init__(
        self,
        model: torch.nn.Module,
        config: DeepDenoiseConfig,
        input_norm: tuple[float, float],
        output_norm: tuple[float, float],
        axes: str = "TYX",
        provenance: dict[str, Any] | None = None,
        history: TrainResult | None = None,
        output_curve: Curve | None = None,
    ) -> None:
        norm = {"input": _mean_std(input_norm), "output": _mean_std(output_norm)}
        super().__init__(model, config, norm, provenance or {}, history)
        self.axes = axes
        self.output_curve = output_curve

    @property
    def input_norm(self) -> tuple[float, float]:
        """Mean and standard deviation inputs are normalised with."""
        n = self.normalization["input"]
        return n["mean"], n["std"]

    @property
    def output_norm(self) -> tuple[float, float]:
        """Mean and standard deviation outputs are restored with."""
        n = self.normalization["output"]
        return n["mean"], n["std"]

    @output_norm.setter
    def output_norm(self, value: tuple[float, float]) -> None:
        self.normalization["output"] = _mean_std(value)

    def document(self) -> dict[str, Any]:
        """Return what ``model.yaml`` records: strategy, axes, normalisation, config, provenance.

        A response curve, when the model has one, is recorded as ``output_curve``.
        """
        doc = {
            "task": self.task,
            "strategy": self.config.method,
            "axes": self.axes,
            "normalization": {
                "input": _mean_std(self.input_norm),
                "output": _mean_std(self.output_norm),
            },
            "denoise": self.config.model_dump(mode="json"),
            "provenance": self.provenance,
        }
        if self.output_curve is not None:
            doc["output_curve"] = self.output_curve.to_dict()
        return doc

    @classmethod
    def load(cls, path: str | Path, *, device: str | torch.device = "cpu") -> DeepDenoiser:
        """Read a model folder written by :meth:`save` (no code is executed)."""
        from cascope.models import load_model

        model, doc = load_model(path, device=device)
        if doc.get("task") != "denoise":
            raise InputError("the model folder does not hold a denoising model", Path(path))
        from pydantic import ValidationError

        from cascope.models.checkpoint import CONFIG, check_curve, check_normalization

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
            output_curve=check_curve(doc.get("output_curve"), "output_curve", cfg_path),
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
        cfg = config or DeepPredictConfig.model_validate({})
        movie, squeeze = as_stack(data, axes or self.axes)
        out_dtype = output_dtype(movie.dtype, cfg.dtype)
        result = None
        if writer is None:
            result = np.empty(movie.shape, out_dtype)
            writer = ArrayWriter(result)
        in_mean, in_std = self.input_norm
        out_mean, out_std = self.output_norm
        curve = self.output_curve
        ramps = curve.ramps() if curve is not None else None

        def restore_tensor(t: torch.Tensor) -> torch.Tensor:
            out = t * out_std + out_mean
            return out if ramps is None else apply_ramps(out, *ramps)

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
        data = Finite(movie)
        on_device = cfg.blend_on == "device" or (
            cfg.blend_on == "auto" and predictor.device.type == "cuda"
        )
        if on_device and not cfg.tta:
            predict_streamed_on_device(
                predictor,
                data,
                CastOnHost(writer, out_dtype),
                preprocess=lambda t: (t.float() - in_mean) / in_std,
                postprocess=lambda t: restore_on_device(restore_tensor(t), out_dtype),
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
                out = block * np.float32(out_std) + np.float32(out_mean)
                if curve is not None:
                    out = curve(out).astype(np.float32)
                return cast_output(out, out_dtype)

            predict_streamed(host, _Normalised(), writer, postprocess=restore, **streaming)
        if result is not None and squeeze:
            return result[0]
        return result
