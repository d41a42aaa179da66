"""Configuration of the movie pipeline: quality check → denoise → detect events → features."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cascope.config._types import Size3
from cascope.config.denoise_classical import ClassicalDenoiseConfig
from cascope.config.events import Threshold, parse_threshold

DenoiseMethod = Literal[
    "none", "auto", "gaussian", "median", "bilateral", "bm3d", "bm4d", "deepcad", "n2v", "n2v3d"
]


class DenoiseStep(BaseModel):
    """How the pipeline denoises the recording."""

    model_config = ConfigDict(extra="forbid")

    method: DenoiseMethod = Field(
        default="gaussian",
        description="A classical filter, a self-supervised network trained on the recording "
        "itself (deepcad, n2v, n2v3d), 'auto' (the denoiser the quality check recommends for "
        "this recording) or 'none' to skip denoising.",
    )
    model: Path | None = Field(
        default=None,
        description="A trained denoiser folder (`cascope train denoiser`); overrides `method`.",
    )
    classical: ClassicalDenoiseConfig | None = Field(
        default=None,
        description="Options of a classical filter; None: the defaults of `method`.",
    )
    steps: int = Field(
        default=1000, ge=1, description="Training steps of a network trained on the recording."
    )
    patch: Size3 = Field(
        default=(32, 64, 64), description="Training patch (T, Y, X) of such a network."
    )
    dtype: Literal["same", "float32"] = Field(
        default="float32",
        description="Type of denoised.tif: float32, or the input's type (rounded and clipped; "
        "about 1 dB SI-PSNR lost at a few photons per pixel).",
    )


class EventsStep(BaseModel):
    """How the pipeline detects calcium events and measures them."""

    model_config = ConfigDict(extra="forbid")

    model: Path | None = Field(
        default=None,
        description="A trained event detector folder (`cascope train events`); None runs the "
        "classical intensity-threshold detector.",
    )
    threshold: Threshold = Field(
        default="auto",
        description="Network: probability ('auto' = the model's tuned one). Baseline: z-score "
        "('auto' = 4).",
    )
    source: Literal["auto", "input", "denoised"] = Field(
        default="auto",
        description="Detect on the raw input or on the denoised movie. 'auto': the input (event "
        "networks are trained on raw movies; the threshold detector smooths the movie itself and "
        "no denoiser helped it consistently: benchmarks/results/denoise_detect.md). Features "
        "are always measured on the raw input.",
    )
    features: bool = Field(default=True, description="Add kinetic and shape features.")

    @model_validator(mode="before")
    @classmethod
    def _probability_for_a_model(cls, data: Any) -> Any:
        """Refuse a network's threshold that is no probability (the baseline's is a z-score)."""
        if isinstance(data, dict) and data.get("model") is not None:
            given = data.get("threshold", "auto")
            value = parse_threshold(given)
            if isinstance(value, int | float) and not 0 < value < 1:
                raise ValueError(
                    f"--threshold {given}: with --model it is a probability, between 0 and 1"
                )
        return data


class PipelineConfig(BaseModel):
    """One recording through every stage; each stage is optional.

    Examples
    --------
    >>> cfg = PipelineConfig.model_validate({"input": "movie.tif", "denoise": {"method": "median"}})
    >>> cfg.events.threshold
    'auto'
    """

    model_config = ConfigDict(extra="forbid")

    input: Path = Field(description="The recording, a (T, Y, X) movie in any format cascope reads.")
    axes: str | None = Field(default=None, description="Axes when the file does not record them.")
    frame_rate: float | None = Field(
        default=None, gt=0, description="Frames per second when the file does not record it."
    )
    qc: bool = Field(default=True, description="Run the data quality check first.")
    denoise: DenoiseStep | None = Field(default_factory=DenoiseStep, description="None: skip.")
    events: EventsStep | None = Field(default_factory=EventsStep, description="None: skip.")
    rois: Path | None = Field(
        default=None,
        description="ROIs the user already has (ImageJ .zip/.roi, a (Y, X) label image, a JSON "
        "list of {'coordinates': [[y, x], ...]}, or suite2p's stat.npy): per-ROI traces and ΔF/F "
        "in traces.csv, and each event's ROI in events.csv.",
    )
    device: str = Field(default="auto", description="'auto', 'cpu' or 'cuda' for networks.")

    @classmethod
    def from_yaml(cls, path: str | Path, *, input: str | Path | None = None) -> PipelineConfig:
        """Read a YAML file; relative paths in it are taken relative to the file's folder.

        ``input`` (a path relative to the working directory) replaces the file's own input, so
        a config without one can be run on any movie.
        """
        from cascope.errors import InputError

        p = Path(path)
        try:
            doc = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as err:
            raise InputError(f"is not valid YAML: {' '.join(str(err).split())}", p) from err
        if not isinstance(doc, dict):
            raise InputError("is not a pipeline configuration (expected key: value lines)", p)
        if input is not None:
            doc["input"] = str(Path(input).expanduser().resolve())
        cfg = cls.model_validate(doc)
        return cfg.resolved(p.parent)

    def resolved(self, base: Path) -> PipelineConfig:
        """Return a copy whose relative paths are taken relative to ``base``."""

        def fix(p: Path | None) -> Path | None:
            return None if p is None or p.is_absolute() else (base / p).resolve()

        update: dict[str, object] = {"input": fix(self.input) or self.input}
        if self.rois is not None:
            update["rois"] = fix(self.rois) or self.rois
        if self.denoise is not None and self.denoise.model is not None:
            update["denoise"] = self.denoise.model_copy(
                update={"model": fix(self.denoise.model) or self.denoise.model}
            )
        if self.events is not None and self.events.model is not None:
            update["events"] = self.events.model_copy(
                update={"model": fix(self.events.model) or self.events.model}
            )
        return self.model_copy(update=update)

    def to_yaml(self) -> str:
        """Return the configuration as YAML text (what the pipeline saves beside its outputs)."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)
