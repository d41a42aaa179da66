"""Preprocessing: normalisation, background, variance stabilisation, baselines and ΔF/F."""

from cascope.preprocess.background import (
    add_offset,
    ellipsoid_footprint,
    subtract_offset,
    tophat_background,
)
from cascope.preprocess.dff import (
    baseline_reliable,
    delta_f_over_f,
    noise_sigma,
    roi_traces,
    trace_baseline,
)
from cascope.preprocess.normalization import (
    Normalization,
    meanstd_normalization,
    percentile_normalization,
)
from cascope.preprocess.vst import generalized_anscombe, inverse_generalized_anscombe

__all__ = [
    "Normalization",
    "add_offset",
    "baseline_reliable",
    "delta_f_over_f",
    "ellipsoid_footprint",
    "generalized_anscombe",
    "inverse_generalized_anscombe",
    "meanstd_normalization",
    "noise_sigma",
    "percentile_normalization",
    "roi_traces",
    "subtract_offset",
    "tophat_background",
    "trace_baseline",
]
