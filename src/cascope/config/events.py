"""Options of event detection: PU training of the 3D U-Net and block-wise detection."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from cascope.config._types import Size3
from cascope.config.training import TrainingConfig


def parse_threshold(value: Any) -> Any:
    """Read a detection threshold: ``'auto'`` or a finite number, also given as text.

    Parameters
    ----------
    value : Any
        The threshold as given (``--threshold`` passes text).

    Returns
    -------
    Any
        ``'auto'`` or the number; other values are left to the field's type.

    Raises
    ------
    ValueError
        Text that is neither ``'auto'`` nor a number, or a number that is not finite.
    """
    number = value
    if isinstance(value, str) and value != "auto":
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"--threshold must be 'auto' or a number, got {value!r}") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"--threshold must be a finite number, got {value!r}")
    return number


#: How unlabeled voxels count in PU training.
PUMode = Literal["nnpu", "sampling"]

#: A detection threshold: a probability (networks) or a z-score (the baseline), or 'auto'.
Threshold = Annotated[float | Literal["auto"], BeforeValidator(parse_threshold)]


class PUConfig(BaseModel):
    """Positive-unlabeled sampling and risk."""

    model_config = ConfigDict(extra="forbid")

    mode: PUMode = Field(
        default="nnpu",
        description="'nnpu': non-negative PU risk (Kiryo et al. 2017) over unlabeled voxels; "
        "'sampling': unlabeled voxels are treated as negatives (the reference method).",
    )
    unlabeled_ratio: float | Literal["complete"] = Field(
        default=1.0,
        description="Unlabeled crops per positive crop (0, 1, 2, 4, ...), or 'complete': windows "
        "drawn uniformly over the whole movie, without positive centring.",
    )
    prior: float | None = Field(
        default=None,
        ge=0,
        lt=1,
        description="Voxel prior: fraction of the unlabeled voxels the sampler draws that are "
        "(hidden) events; None estimates it from label_coverage and the labelled-voxel density "
        "of unlabeled crops.",
    )
    label_coverage: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Assumed fraction of events that are labelled (1: complete labels). Sets "
        "the nnPU prior and, in both modes, the PU-corrected precision of threshold tuning on "
        "validation labels that are equally partial.",
    )
    surrogate: Literal["auto", "logistic", "sigmoid"] = Field(
        default="auto",
        description="Voxel loss of the nnPU risk: the logistic loss (with complete labels the "
        "risk is then binary cross-entropy) or the bounded sigmoid loss of Kiryo et al., whose "
        "non-negative correction stays bounded; 'auto': sigmoid with partial labels "
        "(label_coverage < 1 or a prior given), logistic otherwise.",
    )
    beta: float = Field(default=0.0, ge=0, description="nnPU slack of the negative risk.")
    gamma: float = Field(
        default=1.0, gt=0, description="nnPU step size when the negative risk goes below -beta."
    )
    pos_weight: float = Field(
        default=4.0, gt=0, description="Weight of the positive risk (events are rare voxels)."
    )

    @field_validator("mode", mode="before")
    @classmethod
    def _known_mode(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in get_args(PUMode):
            raise ValueError(f"--pu must be nnpu or sampling, got {value!r}")
        return value

    @field_validator("unlabeled_ratio", mode="before")
    @classmethod
    def _ratio(cls, value: Any) -> Any:
        """Read ``--unlabeled-ratio`` text: a number or ``complete``."""
        if not isinstance(value, str) or value == "complete":
            return value
        try:
            return float(value)
        except ValueError:
            raise ValueError(
                f"--unlabeled-ratio must be a number or 'complete', got {value!r}"
            ) from None


class EventModelConfig(BaseModel):
    """The 3D U-Net of event detection."""

    model_config = ConfigDict(extra="forbid")

    depth: int = Field(default=3, ge=1, le=6, description="Resolution levels.")
    base: int = Field(default=16, ge=2, description="Channels at the first level.")
    norm: Literal["batch", "group", "instance", "none"] = Field(
        default="batch", description="Normalisation layers (batch keeps tiling exact)."
    )


class EventTrainConfig(BaseModel):
    """Training an event detector."""

    model_config = ConfigDict(extra="forbid")

    window: Size3 = Field(default=(32, 32, 32), description="Training crop (T, Y, X).")
    cache: Size3 = Field(
        default=(64, 64, 64),
        description="Positive crops lie at a random place inside this box centred on an event.",
    )
    augment: bool = Field(default=True, description="Random flips/rotations in (Y, X).")
    model: EventModelConfig = Field(default_factory=EventModelConfig, description="Network.")
    pu: PUConfig = Field(default_factory=PUConfig, description="PU sampling and risk.")
    training: TrainingConfig = Field(
        default_factory=lambda: TrainingConfig(steps=1000, batch_size=4, val_every=100),
        description="Optimisation options of the shared trainer.",
    )
    als_lam: float = Field(default=1e4, gt=0, description="ALS baseline smoothness λ.")
    als_p: float = Field(default=0.01, gt=0, lt=1, description="ALS baseline asymmetry p.")
    threshold_method: Literal["f1", "pr", "fixed"] = Field(
        default="f1",
        description="How the detection threshold is chosen on validation data: event-F1 grid "
        "search, per-voxel PR point closest to P=R=1, or 0.5.",
    )


class DetectConfig(BaseModel):
    """Block-wise detection with a trained network."""

    model_config = ConfigDict(extra="forbid")

    threshold: Threshold = Field(
        default="auto", description="Probability threshold; 'auto' uses the model's own."
    )
    tile: Size3 = Field(default=(32, 64, 64), description="Prediction tile (T, Y, X).")
    overlap: float = Field(default=0.25, ge=0, lt=1, description="Tile overlap fraction.")
    block: int = Field(default=256, ge=1, description="Frames per streamed block.")
    halo: int = Field(
        default=32, ge=0, description="Context frames each side of a block (longest event)."
    )
    min_size: Size3 = Field(
        default=(2, 3, 3), description="Smallest event bounding box (frames, pixels, pixels)."
    )
    batch_size: int = Field(default=4, ge=1, description="Tiles per network call.")
    device: str = Field(default="auto", description="'auto', 'cpu' or 'cuda'.")
