"""Event detection from a score movie, in three parts re-exported here.

- :mod:`cascope.events.labels`: streamed labelling (threshold, 3D components, size filter, event
  table; block-wise with ownership of events crossing block borders);
- :mod:`cascope.events.tuning`: the threshold from labelled events (precision-recall, event F1);
- :mod:`cascope.events.classical`: the classical robust z-score detector.
"""

from cascope.events.classical import (
    BASELINE_SIGMA,
    baseline_scores,
    detect_threshold_baseline,
    robust_z,
    temporal_noise_factor,
)
from cascope.events.labels import (
    MIN_SIZE,
    TABLE_COLUMNS,
    StreamingDetector,
    detect_in_blocks,
    label_events,
    owned_events,
)
from cascope.events.tuning import threshold_from_event_f1, threshold_from_pr

__all__ = [
    "BASELINE_SIGMA",
    "MIN_SIZE",
    "TABLE_COLUMNS",
    "StreamingDetector",
    "baseline_scores",
    "detect_in_blocks",
    "detect_threshold_baseline",
    "label_events",
    "owned_events",
    "robust_z",
    "temporal_noise_factor",
    "threshold_from_event_f1",
    "threshold_from_pr",
]
