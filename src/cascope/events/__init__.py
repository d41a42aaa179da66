"""Calcium-event detection: preprocessing, PU-trained 3D U-Net, block-wise detection, features.

Pipeline: :func:`preprocess` (triangle foreground, ALS baseline, ``(x - b(t)) / F``) →
network probability (:func:`train_event_detector`, :func:`detect_events`) or the classical
:func:`detect_threshold_baseline` → threshold, 26-connected components, size filter
(:func:`label_events`, streamed by :class:`StreamingDetector` with block ownership) →
:func:`event_features` → :func:`compare_conditions` (its report files and figures:
:func:`cascope.report.compare_report`).
"""

from cascope.events.classical import baseline_scores, detect_threshold_baseline
from cascope.events.compare import (
    cluster_events,
    compare_conditions,
    compare_feature,
    event_types,
)
from cascope.events.features import decay_tau, event_features, read_table, rise_time, write_table
from cascope.events.labels import MIN_SIZE, StreamingDetector, detect_in_blocks, label_events
from cascope.events.preprocess import preprocess, triangle_foreground
from cascope.events.pu import PUSampler, bce_loss, nnpu_loss
from cascope.events.train import (
    EventModel,
    detect_events,
    load_event_model,
    probability,
    train_event_detector,
    train_from_msct_h5,
)
from cascope.events.tuning import threshold_from_event_f1, threshold_from_pr
from cascope.preprocess import Normalization
from cascope.preprocess.dff import (
    als_baseline,
    baseline_reliable,
    delta_f_over_f,
    noise_sigma,
    percentile_baseline,
    roi_traces,
    trace_baseline,
)

__all__ = [
    "MIN_SIZE",
    "EventModel",
    "Normalization",
    "PUSampler",
    "StreamingDetector",
    "als_baseline",
    "baseline_reliable",
    "baseline_scores",
    "bce_loss",
    "cluster_events",
    "compare_conditions",
    "compare_feature",
    "decay_tau",
    "delta_f_over_f",
    "detect_events",
    "detect_in_blocks",
    "detect_threshold_baseline",
    "event_features",
    "event_types",
    "label_events",
    "load_event_model",
    "nnpu_loss",
    "noise_sigma",
    "percentile_baseline",
    "preprocess",
    "probability",
    "read_table",
    "rise_time",
    "roi_traces",
    "threshold_from_event_f1",
    "threshold_from_pr",
    "trace_baseline",
    "train_event_detector",
    "train_from_msct_h5",
    "triangle_foreground",
    "write_table",
]
