"""Settings of the data-quality checks (``cascope.qc``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class QCConfig(BaseModel):
    """Sampling and decision thresholds of :func:`cascope.qc.run_qc`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_pairs: int = Field(
        default=32,
        ge=1,
        description="Pairs of consecutive frames read, spread evenly over time (bounds memory).",
    )
    samples_per_frame: int = Field(
        default=20_000,
        ge=100,
        description="Pixels drawn at random per frame for percentiles and the noise fit.",
    )
    max_signal_levels: int = Field(
        default=12,
        ge=2,
        description=(
            "Flag the dynamic range as compressed when at most this many distinct values lie "
            "between the low and high signal percentiles."
        ),
    )
    signal_percentiles: tuple[float, float] = Field(
        default=(0.5, 99.5),
        description="Percentiles bounding the occupied intensity range (ignores rare outliers).",
    )
    saturation_limit: float = Field(
        default=1e-3,
        ge=0,
        le=1,
        description="Flag saturation when more than this fraction of pixels sits at the ceiling.",
    )
    offset_percentile: float = Field(
        default=1.0,
        ge=0,
        le=50,
        description="Percentile of the time-averaged frame taken as offset plus dark background.",
    )
    offset: float | None = Field(
        default=None, description="Known camera offset in ADU (skips the estimate)."
    )
    correlation_threshold: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description=(
            "Noise-corrected correlation of consecutive frames above which temporal "
            "Noise2Noise (DeepCAD) is recommended."
        ),
    )
    noise_bins: int = Field(
        default=24, ge=3, description="Intensity bins of the mean-variance fit."
    )
    seed: int = Field(default=0, ge=0, description="Seed of the pixel sampling.")
