"""Volumetric structure segmentation: preprocessing, semi-automatic labels, classes, networks.

``instances_to_semantic`` / ``semantic_to_instances`` convert between curated instance labels and
the background / axon / border classes a network learns; ``train_segmenter`` and
``segment_volume`` train and apply a 3-class 3D U-Net (or VGG16-encoder U-Net).
"""

from cascope.segment.evaluate import ClassScores, InstanceScores, class_scores, instance_scores
from cascope.segment.predict import (
    decode_in_blocks,
    decode_instances,
    predict_probabilities,
    predict_semantic,
    segment_volume,
)
from cascope.segment.preprocess import (
    choose_stack_denoiser,
    field_density,
    foreground_density,
    imaged_field,
    preprocess_volume,
)
from cascope.segment.semantic import instances_to_semantic, relabel_min_size, semantic_to_instances
from cascope.segment.semiauto import (
    connected_components,
    label_statistics,
    label_volume,
    seed_labels,
    sobel_edges,
    threshold_value,
)
from cascope.segment.train import (
    Segmenter,
    as_semantic,
    build_segmenter,
    dice_focal_loss,
    gap_weights,
    train_segmenter,
)

__all__ = [
    "ClassScores",
    "InstanceScores",
    "Segmenter",
    "as_semantic",
    "build_segmenter",
    "choose_stack_denoiser",
    "class_scores",
    "connected_components",
    "decode_in_blocks",
    "decode_instances",
    "dice_focal_loss",
    "field_density",
    "foreground_density",
    "gap_weights",
    "imaged_field",
    "instance_scores",
    "instances_to_semantic",
    "label_statistics",
    "label_volume",
    "predict_probabilities",
    "predict_semantic",
    "preprocess_volume",
    "relabel_min_size",
    "seed_labels",
    "segment_volume",
    "semantic_to_instances",
    "sobel_edges",
    "threshold_value",
    "train_segmenter",
]
