"""Denoising: classical filters, deep (self-)supervised networks, streaming of any length."""

from cascope.denoise.classical import (
    bilateral,
    bm3d,
    bm4d,
    denoise_array,
    estimate_noise_sigma,
    gaussian,
    median,
)
from cascope.denoise.deep import DeepDenoiser, denoise_deep, train_denoiser
from cascope.denoise.stream import (
    BlockWriter,
    cast_output,
    denoise_file,
    denoise_movie,
    output_dtype,
    stream_blocks,
)

__all__ = [
    "BlockWriter",
    "DeepDenoiser",
    "bilateral",
    "bm3d",
    "bm4d",
    "cast_output",
    "denoise_array",
    "denoise_deep",
    "denoise_file",
    "denoise_movie",
    "estimate_noise_sigma",
    "gaussian",
    "median",
    "output_dtype",
    "stream_blocks",
    "train_denoiser",
]
