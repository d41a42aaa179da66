"""Tiled prediction that scales: blended overlapping tiles, any shape, streamed recordings.

Overlapping tiles are blended without seams; any input shape works; tiles are batched; and
recordings are streamed from disk to disk in blocks with a halo.

Examples
--------
>>> import numpy as np
>>> out = predict_tiled(lambda b: b * 2, np.ones((10, 12)), tile=(8, 8), overlap=2)
>>> float(out.min()), float(out.max())
(2.0, 2.0)
"""

from cascope.tiling.cover import Blend, blend_weights, cover, tile_starts
from cascope.tiling.predict import (
    BatchPredictor,
    TorchPredictor,
    averaged_over_flips,
    predict_tiled,
    predict_tiled_tensor,
    torch_predictor,
)
from cascope.tiling.stream import (
    ArrayWriter,
    BlockWriter,
    Fetch,
    block_spans,
    predict_streamed,
    predict_streamed_on_device,
    stream_through,
)

__all__ = [
    "ArrayWriter",
    "BatchPredictor",
    "Blend",
    "BlockWriter",
    "Fetch",
    "TorchPredictor",
    "averaged_over_flips",
    "blend_weights",
    "block_spans",
    "cover",
    "predict_streamed",
    "predict_streamed_on_device",
    "predict_tiled",
    "predict_tiled_tensor",
    "stream_through",
    "tile_starts",
    "torch_predictor",
]
