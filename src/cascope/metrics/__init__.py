"""Scores of a result against ground truth.

Image quality (:func:`psnr`, :func:`ssim`, :func:`si_psnr` and their per-frame forms), trace
fidelity (:func:`trace_correlation`), all of them for a denoised recording at once
(:func:`score_denoising`, the one score card of every denoising benchmark and the demo), dense
classification (:func:`classification_report`), one-to-one matching of instances and events
(:func:`match_instances`, :func:`match_events`, :func:`average_precision`) and centreline Dice
(:func:`cldice`).
"""

from cascope.metrics.classification import (
    MAX_CLASSES,
    ClassificationReport,
    classification_report,
)
from cascope.metrics.cldice import cldice
from cascope.metrics.denoising import DenoiseScores, score_denoising
from cascope.metrics.image import (
    FrameScores,
    per_frame,
    psnr,
    psnr_per_frame,
    si_psnr,
    si_psnr_improvement,
    si_psnr_per_frame,
    ssim,
)
from cascope.metrics.matching import (
    MatchResult,
    PrecisionRecallCurve,
    as_centroids,
    average_precision,
    match_events,
    match_instances,
)
from cascope.metrics.traces import (
    TraceCorrelation,
    delta_f_over_f,
    extract_traces,
    trace_correlation,
)

__all__ = [
    "MAX_CLASSES",
    "ClassificationReport",
    "DenoiseScores",
    "FrameScores",
    "MatchResult",
    "PrecisionRecallCurve",
    "TraceCorrelation",
    "as_centroids",
    "average_precision",
    "classification_report",
    "cldice",
    "delta_f_over_f",
    "extract_traces",
    "match_events",
    "match_instances",
    "per_frame",
    "psnr",
    "psnr_per_frame",
    "score_denoising",
    "si_psnr",
    "si_psnr_improvement",
    "si_psnr_per_frame",
    "ssim",
    "trace_correlation",
]
