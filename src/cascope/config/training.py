"""Options of the network trainer shared by denoising, event detection and segmentation."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

CHANNELS_LAST_HELP = (
    "Compute in the channels-last memory format (faster convolutions on CUDA and on the CPU, in "
    "float32 and in bfloat16)."
)


class TrainingConfig(BaseModel):
    """How :class:`cascope.training.Trainer` optimises a network."""

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(default=1000, ge=1, description="Number of optimiser steps (batches).")
    batch_size: int = Field(default=2, ge=1, description="Patches per batch.")
    lr: float = Field(default=1e-3, gt=0, description="Adam learning rate.")
    betas: tuple[float, float] = Field(
        default=(0.9, 0.999), description="Adam coefficients of the running gradient averages."
    )
    weight_decay: float = Field(default=0.0, ge=0, description="Adam weight decay.")
    warmup_steps: int = Field(
        default=0, ge=0, description="Raise the learning rate linearly over the first N steps."
    )
    lr_schedule: Literal["constant", "cosine"] = Field(
        default="constant", description="Learning-rate schedule over the run."
    )
    grad_clip: float | None = Field(
        default=None, gt=0, description="Clip the gradient norm to this value (None: no clipping)."
    )
    amp: Literal["auto", "bf16", "fp16", "off"] = Field(
        default="auto",
        description="Mixed precision. 'auto': bf16 on CUDA where supported (else fp16), float32 "
        "on the CPU; 'bf16' also on the CPU (worth it only on one with bfloat16 instructions); "
        "'off': float32 everywhere.",
    )
    channels_last: bool = Field(default=True, description=CHANNELS_LAST_HELP)
    compile: bool = Field(default=False, description="torch.compile the network on CUDA.")
    val_every: int = Field(default=100, ge=1, description="Validate every this many steps.")
    val_batches: int = Field(default=4, ge=1, description="Number of fixed validation batches.")
    checkpoint_every: int = Field(
        default=100, ge=1, description="Write a resumable checkpoint every N steps."
    )
    patience: int = Field(
        default=0,
        ge=0,
        description="Stop after this many validations without improvement (0: never).",
    )
    min_delta: float = Field(
        default=0.0, ge=0, description="Improvement smaller than this does not count."
    )
    restore_best: bool = Field(
        default=True,
        description="End with the weights of the best validation loss (when validating).",
    )
    divergence: float | None = Field(
        default=None,
        gt=1,
        description="When a validation loss exceeds this multiple of the best one (or a loss "
        "stops being finite), go back to the best weights and optimiser state and halve the "
        "learning rate (None: never; a non-finite loss then stops the run). The denoisers use 2: "
        "their losses sit on a noise floor, so a jump to twice the best is a blow-up; losses "
        "that fall towards zero (events, segmentation) can double without one.",
    )
    max_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Stop after this much training time, validating first (None: run every "
        "step); the best weights so far are kept.",
    )
    seed: int = Field(default=0, description="Seed of torch, NumPy and Python random at the start.")

    @field_validator("betas")
    @classmethod
    def _check_betas(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= b < 1.0 for b in v):
            raise ValueError(f"Adam betas must lie in [0, 1), got {v}")
        return v
