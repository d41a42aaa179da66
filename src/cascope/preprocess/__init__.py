"""Preprocessing: normalisation with its inverse, background removal, variance stabilisation."""

from cascope.preprocess.background import (
    add_offset,
    ellipsoid_footprint,
    subtract_offset,
    tophat_background,
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
    "ellipsoid_footprint",
    "generalized_anscombe",
    "inverse_generalized_anscombe",
    "meanstd_normalization",
    "percentile_normalization",
    "subtract_offset",
    "tophat_background",
]
