"""Configuration of volumetric structure segmentation: preprocessing, labelling, networks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cascope.config._types import Size3
from cascope.config.training import TrainingConfig


class SegmentPreprocessConfig(BaseModel):
    """The reference chain: per-slice denoising, then a stack denoiser chosen by density, top-hat.

    With ``stack="auto"`` the stack denoiser is chosen from the foreground density of the
    per-slice result (``cascope.segment.field_density``: the share of the imaged field above
    Otsu's threshold once the stack is smoothed and its background removed). BM4D (block
    matching over the stack) is used for sparse fields, where it removes noise best; the
    bilateral filter for dense ones, where BM4D's block matching averages neighbouring axons
    together and erases them.
    """

    model_config = ConfigDict(extra="forbid")

    slice_denoiser: Literal["bm3d", "gaussian", "median", "none"] = Field(
        default="bm3d",
        description="Denoiser applied to every YX slice first (bm3d: the reference).",
    )
    stack: Literal["auto", "bm4d", "bilateral", "gaussian", "none"] = Field(
        default="auto", description="Denoiser over the whole stack; 'auto' picks bm4d or bilateral."
    )
    density_threshold: float = Field(
        default=0.15,
        ge=0,
        le=1,
        description="With stack='auto': foreground fraction above which the field counts as "
        "dense (bilateral); at or below it, sparse (bm4d). The seed chain's rule: a sparse "
        "real confocal stack measures about 0.05, a simulated dense field about 0.2.",
    )
    tophat_radius: tuple[float, float, float] | None = Field(
        default=(2.0, 10.0, 10.0),
        description="Semi-axes (z, y, x) of the top-hat ellipsoid in voxels; larger than the "
        "structures to keep. None skips background removal.",
    )
    noise_sigma: float | None = Field(
        default=None, gt=0, description="Noise standard deviation in input units (None: estimated)."
    )


class LabelConfig(BaseModel):
    """Semi-automatic labelling: threshold, connected components, minimum size."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["seed", "constant", "otsu", "triangle", "li"] = Field(
        default="seed",
        description="'seed': the default chain for a raw stack (cascope.segment.seed_labels); "
        "otherwise a plain threshold method ('constant' uses value).",
    )
    value: float | None = Field(
        default=None, description="Threshold for method='constant', input units."
    )
    connectivity: Literal[6, 18, 26] = Field(
        default=26, description="Voxel connectivity of components."
    )
    min_size: int = Field(default=1000, ge=0, description="Smallest component kept, in voxels.")


class SemanticConfig(BaseModel):
    """Instance labels -> background / axon / border classes (see cascope.segment.semantic)."""

    model_config = ConfigDict(extra="forbid")

    border: int = Field(default=1, ge=1, description="Thickness of the border ring in voxels.")
    planes: Literal["yz", "all"] = Field(
        default="yz",
        description="Axes of the ring: 'yz' within each y-z plane, 'all' along every axis.",
    )


class AugmentConfig(BaseModel):
    """TorchIO augmentation of training patches; spatial transforms move labels with the image."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Augment training patches.")
    flip: float = Field(
        default=0.5, ge=0, le=1, description="Probability of random flips (any axis)."
    )
    affine: float = Field(
        default=0.3, ge=0, le=1, description="Probability of an in-plane rotation + scaling."
    )
    elastic: float = Field(
        default=0.1, ge=0, le=1, description="Probability of an elastic deformation."
    )
    gamma: float = Field(default=0.3, ge=0, le=1, description="Probability of a random gamma.")
    noise: float = Field(
        default=0.2, ge=0, le=1, description="Probability of added Gaussian noise."
    )
    bias_field: float = Field(
        default=0.2, ge=0, le=1, description="Probability of a smooth bias field."
    )


class SegmenterConfig(BaseModel):
    """A 3-class (background / axon / border) 3D segmentation network and its training."""

    model_config = ConfigDict(extra="forbid")

    arch: Literal["unet", "vgg16-unet"] = Field(
        default="unet",
        description="cascope's U-Net, or the VGG16-encoder U-Net (trained from scratch).",
    )
    depth: int = Field(default=3, ge=1, le=6, description="U-Net: resolution levels.")
    base: int = Field(default=16, ge=1, description="U-Net: channels at the first level.")
    width: float = Field(
        default=0.25, gt=0, description="VGG16-U-Net: multiplier of the VGG16 widths."
    )
    blocks: int = Field(
        default=4, ge=1, le=5, description="VGG16-U-Net: VGG16 blocks used (5 = all)."
    )
    patch: Size3 = Field(default=(16, 64, 64), description="Training patch (z, y, x) in voxels.")
    class_weights: tuple[float, float, float] = Field(
        default=(0.2, 1.0, 2.0), description="Loss weights of background, axon, border."
    )
    focal_gamma: float = Field(
        default=2.0, ge=0, description="Focusing exponent of the focal loss."
    )
    dice_weight: float = Field(
        default=1.0, ge=0, description="Weight of the Dice term beside focal."
    )
    foreground_fraction: float = Field(
        default=0.7, ge=0, le=1, description="Share of patches centred on a foreground voxel."
    )
    gap_weight: float = Field(
        default=0.0,
        ge=0,
        le=254,
        description="Extra loss weight on the background between neighbouring instances (the "
        "U-Net weight map, gap_weight * exp(-(d1 + d2)^2 / 2 gap_sigma^2) with d1, d2 the "
        "distances to the two nearest instances); 0 turns it off.",
    )
    gap_sigma: float = Field(default=3.0, gt=0, description="Width of the gap weight, in voxels.")
    exclude_padding: bool = Field(
        default=False,
        description="Leave the zero padding around the imaged field (a rotated or cropped "
        "capture; cascope.segment.imaged_field) out of the loss, and centre the patches that are "
        "not centred on foreground on imaged voxels.",
    )
    semantic: SemanticConfig = Field(
        default_factory=SemanticConfig, description="How instance labels become classes."
    )
    augment: AugmentConfig = Field(
        default_factory=AugmentConfig, description="Training augmentation."
    )
    training: TrainingConfig = Field(
        default_factory=lambda: TrainingConfig.model_validate({"steps": 500, "batch_size": 2}),
        description="Optimiser, steps, checkpoints.",
    )
    min_size: int = Field(
        default=100, ge=0, description="Smallest predicted instance kept, voxels."
    )


class SeedConfig(BaseModel):
    """The default seed chain of ``cascope label`` on a raw stack (see ``segment.seed_labels``).

    Lengths are in µm when the stack records its voxel size and in voxels otherwise.
    """

    model_config = ConfigDict(extra="forbid")

    slice_denoiser: Literal["bilateral", "bm3d", "gaussian", "none"] = Field(
        default="bilateral", description="Denoiser of every YX slice (bm3d: slowest)."
    )
    stack: Literal["auto", "bm4d", "bilateral", "gaussian", "none"] = Field(
        default="auto",
        description="Denoiser over the stack; 'auto' picks by the foreground fraction: "
        "sparse_stack for sparse fields, bilateral for dense ones.",
    )
    sparse_stack: Literal["bm4d", "gaussian"] = Field(
        default="gaussian",
        description="The stack denoiser 'auto' uses for a sparse field (bm4d: the reference, "
        "minutes per stack on a CPU; gaussian: seconds).",
    )
    density_threshold: float = Field(
        default=0.15,
        ge=0,
        le=1,
        description="Foreground fraction (of the smoothed stack, background removed, over its "
        "Otsu threshold) above which a field is dense; a sparse real confocal stack measures "
        "about 0.05 (any crop of it), a simulated dense field about 0.2.",
    )
    smooth: tuple[float, float, float] = Field(
        default=(1.0, 3.0, 3.0), description="Gaussian sigma (z, y, x) of the stack smoothing."
    )
    background_radius: tuple[float, float, float] | None = Field(
        default=(1.0, 15.0, 15.0),
        description="Half-size (z, y, x) of the top-hat box, larger than an axon's half-width; "
        "None skips background removal.",
    )
    method: Literal["otsu", "triangle", "li"] = Field(
        default="otsu", description="Threshold over the imaged field (zero padding excluded)."
    )
    threshold_scale: float = Field(
        default=0.7,
        gt=0,
        description="Multiplier of the automatic threshold. Otsu over a sparse field sits high "
        "(the few axons are its bright class); 0.7 recovered the most curated axons on a real "
        "confocal stack (benchmarks/axons_real.py).",
    )
    connectivity: Literal[6, 18, 26] = Field(default=26, description="Component connectivity.")
    min_size: int = Field(default=1000, ge=0, description="Smallest component kept, voxels.")
