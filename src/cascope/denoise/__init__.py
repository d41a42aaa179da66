"""Denoising: classical filters, deep (self-)supervised networks, streaming of any length."""

from cascope.denoise._cast import cast_output, output_dtype
from cascope.denoise.classical import (
    bilateral,
    bm3d,
    bm4d,
    denoise_array,
    estimate_noise_sigma,
    gaussian,
    median,
)
from cascope.denoise.deep import denoise_deep
from cascope.denoise.model import DeepDenoiser
from cascope.denoise.stream import BlockWriter, denoise_file, denoise_movie, stream_blocks
from cascope.denoise.train import train_denoiser

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
