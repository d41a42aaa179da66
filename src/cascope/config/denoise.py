"""Configuration of self-supervised and supervised deep denoising."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from cascope.config._types import Size3
from cascope.config.denoise_classical import CLASSICAL_METHODS
from cascope.config.training import CHANNELS_LAST_HELP, TrainingConfig

#: Data-pairing strategies over the one trainer.
DeepMethod = Literal["deepcad", "n2v", "n2v3d", "n2n", "care"]

#: The same strategies as a tuple (for choices and messages).
DEEP_METHODS: tuple[str, ...] = get_args(DeepMethod)

#: The strategies that train on the noisy recording alone (no pairs, no clean target).
SELF_SUPERVISED: tuple[str, ...] = ("deepcad", "n2v", "n2v3d")


#: Training defaults of the denoisers (options not given keep these). On the deepcad_compare
#: movies (960 patches of the 1 M-parameter U-Net) lr 2e-3 diverged: the loss blew up within a
#: few hundred steps and the network fell to a near-constant output, with or without a warm-up
#: and gradient-norm clipping (one clipped run reached 50.6 dB at 20 photons/pixel, the next
#: diverged at 4); lr 1e-3 trained steadily at both noise levels with batch 2, but at batch 1 it
#: blew up late at 4 photons/pixel (benchmarks/results/training_divergence.md), hence the rollback
#: to the best state at half the rate when a validation loss doubles.
DENOISE_TRAINING: dict[str, Any] = {
    "steps": 1000,
    "batch_size": 2,
    "lr": 1e-3,
    "divergence": 2.0,
}

#: Training steps of a denoising network when none are given: the one default of every command
#: (``cascope denoise``, ``cascope train denoiser``, ``cascope benchmark denoise``) and of the
#: library.
DENOISE_STEPS: int = DENOISE_TRAINING["steps"]

#: Training losses of the denoisers.
DenoiseLoss = Literal["l2", "l1", "l1+l2"]
DENOISE_LOSSES: tuple[str, ...] = get_args(DenoiseLoss)


def check_loss(value: Any) -> Any:
    """Refuse an unknown training loss with a message naming ``--loss``.

    Parameters
    ----------
    value : Any
        The loss as given.

    Returns
    -------
    Any
        ``value``, when it is one of :data:`DENOISE_LOSSES` or not text.

    Raises
    ------
    ValueError
        Text naming no loss.
    """
    if isinstance(value, str) and value not in DENOISE_LOSSES:
        raise ValueError(f"--loss {value!r}: use one of {', '.join(DENOISE_LOSSES)}")
    return value


#: A training loss, refused with a message naming ``--loss`` when unknown.
Loss = Annotated[DenoiseLoss, BeforeValidator(check_loss)]

#: The default loss. Noise2Noise trained with a squared error estimates the mean of the noisy
#: target, which for independent zero-mean noise is the clean signal; an L1 term estimates its
#: median instead, and at a few photons per pixel the median of a Poisson count lies well below
#: its mean (at 1 photon per pixel: 0 or 1 instead of 1.0). On simulated Poisson–Gaussian movies
#: at 0.5 to 50 photons per pixel l2 kept the mean where l1+l2 shifted it down
#: (benchmarks/results/denoise_bias.md).
DEFAULT_LOSS: DenoiseLoss = "l2"


def _default_training() -> TrainingConfig:
    return TrainingConfig.model_validate(DENOISE_TRAINING)


class DeepDenoiseConfig(BaseModel):
    """How to train a denoising network.

    ``deepcad`` is temporal Noise2Noise: the even frames of a window predict the interleaved odd
    frames (and vice versa). ``n2v`` / ``n2v3d`` are blind-spot (Noise2Void) training on frames
    or on (T|Z, Y, X) patches. ``n2n`` needs two noisy recordings of the same scene, ``care``
    low-/high-SNR pairs. Inputs are normalised by their mean and standard deviation, recorded
    with the model and inverted at prediction, so the output is in the input's units.
    """

    model_config = ConfigDict(extra="forbid")

    method: DeepMethod = Field(default="deepcad", description="Pairing strategy.")
    patch: Size3 = Field(
        default=(32, 64, 64),
        description="Network input patch (T|Z, Y, X); deepcad crops twice the T length and "
        "interleaves; n2v (2D) uses only (Y, X).",
    )
    ndim: Literal[2, 3] | None = Field(
        default=None,
        description="Network dimensionality; None: 2 for n2v, 3 for the others.",
    )
    depth: int = Field(default=4, ge=1, le=6, description="U-Net resolution levels.")
    base: int = Field(default=16, ge=1, description="U-Net channels at the first level.")
    norm: Literal["batch", "none"] = Field(
        default="none",
        description="Normalisation layers; 'none' avoids the train/eval shift of batch norm in "
        "short runs (both keep tiled prediction exact).",
    )
    residual: bool | None = Field(
        default=None,
        description="Predict a correction added to the input (deepcad, n2n, care only; blind-spot "
        "training cannot). None means off: on simulated movies it helped at 20 photons/pixel "
        "but hurt at 4 (benchmarks/results/denoise_quality.md).",
    )
    n2v2: bool = Field(
        default=False,
        description="N2V2 network: blur pooling and no top skip connection (n2v, n2v3d).",
    )
    loss: Loss = Field(
        default=DEFAULT_LOSS,
        description="Training loss: l2 (the default) keeps the mean intensity at any photon "
        "count; l1 and l1+l2 pull the output towards the median of the noise, below the mean "
        "at low photon counts (benchmarks/results/denoise_bias.md).",
    )
    mean_correction: bool = Field(
        default=True,
        description="After training, calibrate the output's intensities against views of the "
        "scene with independent noise: a monotone response curve for deepcad (interleaved "
        "frames) and Noise2Noise (the second recording), a gain for CARE (the clean target), "
        "and the offset (the denoised middle of the training recording keeps its target's "
        "mean; for the self-supervised methods the noisy recording, whose mean is the clean "
        "mean): keeps the intensities inside bright structures too, whether the network was "
        "trained for few steps or at half a photon per pixel "
        "(benchmarks/results/denoise_bias_1000steps.md).",
    )
    mask_fraction: float = Field(
        default=0.02,
        gt=0,
        lt=0.5,
        description="Blind-spot methods: fraction of voxels masked per patch.",
    )
    mask_radius: int = Field(
        default=2,
        ge=1,
        description="Blind-spot methods: neighbourhood radius of the replacement voxel.",
    )
    augment: bool = Field(
        default=True, description="Random rotations/flips (8 in-plane x temporal flip: 16-fold)."
    )
    val_fraction: float = Field(
        default=0.1,
        ge=0,
        lt=0.5,
        description="Fraction of planes (at the end) held out for validation.",
    )
    training: TrainingConfig = Field(
        default_factory=_default_training, description="Optimiser, steps, checkpoints, seed."
    )

    @field_validator("training", mode="before")
    @classmethod
    def _training_defaults(cls, value: Any) -> Any:
        """Options given as a mapping complete the denoising defaults, not the trainer's."""
        if isinstance(value, dict):
            return {**DENOISE_TRAINING, **value}
        return value

    @model_validator(mode="after")
    def _check(self) -> DeepDenoiseConfig:
        if self.method == "deepcad" and self.ndim == 2:
            raise ValueError("deepcad is temporal: it needs a 3D network (ndim=3)")
        if self.residual and self.method in ("n2v", "n2v3d"):
            raise ValueError("blind-spot training cannot use a residual network")
        if self.method == "n2v3d" and self.ndim == 2:
            raise ValueError("n2v3d is 3D; use method 'n2v' for 2D blind-spot training")
        return self

    @property
    def use_residual(self) -> bool:
        """Whether the network adds its output to the input (``residual=None`` means no)."""
        return bool(self.residual)

    @property
    def network_ndim(self) -> int:
        """The dimensionality used (resolving ``ndim=None``)."""
        if self.ndim is not None:
            return self.ndim
        return 2 if self.method == "n2v" else 3


class DeepPredictConfig(BaseModel):
    """How to apply a denoising network to a recording."""

    model_config = ConfigDict(extra="forbid")

    tile: Size3 = Field(
        default=(32, 128, 128),
        description="Tile (T|Z, Y, X) fed to the network (clipped to the data).",
    )
    overlap: float = Field(
        default=0.25,
        ge=0,
        lt=1,
        description="Overlap of neighbouring tiles as a fraction of the tile.",
    )
    blend: Literal["gaussian", "linear", "constant"] = Field(
        default="gaussian", description="Blending of overlapping tiles."
    )
    batch_size: int = Field(default=2, ge=1, description="Tiles per network call.")
    block: int = Field(
        default=256, ge=1, description="Frames per streamed block (bounds host memory)."
    )
    dtype: Literal["same", "float32"] = Field(
        default="float32",
        description="Output type: float32, or the input's type (integers rounded and clipped).",
    )
    amp: Literal["auto", "bf16", "fp16", "off"] = Field(
        default="auto",
        description="Reduced precision: 'auto' is bf16 on CUDA (fp16 where bf16 is not "
        "supported) and float32 on the CPU; 'bf16' also on the CPU; 'off' is float32 everywhere.",
    )
    channels_last: bool = Field(default=True, description=CHANNELS_LAST_HELP)
    compile: bool = Field(default=False, description="torch.compile the network on CUDA.")
    blend_on: Literal["auto", "host", "device"] = Field(
        default="auto",
        description="Where each block is normalised, tiled, blended and cast to the output type: "
        "'device' on the network's device (the host only reads and writes), 'host' in NumPy; "
        "'auto' is the device on CUDA and the host on the CPU. Test-time augmentation always "
        "blends on the host.",
    )
    background_io: bool = Field(
        default=True,
        description="Read the next block and write the previous one in background threads while "
        "the network computes (on CUDA through pinned memory); off: one after the other, which "
        "holds two blocks less in memory.",
    )
    tta: bool = Field(
        default=False,
        description="Test-time augmentation: average the predictions of the flipped tiles (T, Y, X "
        "for 3D networks, Y, X for 2D): a little closer to the truth, 8x (4x) the prediction time.",
    )


#: Options of a network's prediction, and the flags that set them: refused with a filter.
_NETWORK_FLAGS = {
    "tta": "--tta",
    "tile": "--tile",
    "batch_size": "--batch-size",
    "compile": "--compile",
    "blend_on": "--blend-on",
}


class DenoiseRequest(BaseModel):
    """One run of ``cascope denoise``: the denoiser, where it runs, and the options given.

    A classical filter, a self-supervised network trained on the input (``method`` in
    :data:`SELF_SUPERVISED`) or a trained ``model``; options that do not fit the denoiser are
    refused, each with a message that names its flag.
    """

    model_config = ConfigDict(extra="forbid")

    method: str = Field(
        default="gaussian",
        description="A classical filter or a self-supervised network (default gaussian).",
    )
    model: Path | None = Field(
        default=None, description="A trained denoiser: folder or bioimage.io package."
    )
    loss: Annotated[DenoiseLoss | None, BeforeValidator(check_loss)] = Field(
        default=None, description="Training loss of a network trained here."
    )
    distributed: bool = Field(
        default=False, description="Run the blocks on Dask workers (classical filters)."
    )
    mode: str = Field(default="2d", description="Classical filters: 2d or 3d.")
    tta: bool = Field(default=False, description="Networks: test-time augmentation.")
    tile: tuple[int, int, int] | None = Field(default=None, description="Networks: tile given.")
    batch_size: int | None = Field(default=None, description="Networks: tiles per call given.")
    compile: bool = Field(default=False, description="Networks: torch.compile.")
    blend_on: str | None = Field(default=None, description="Networks: where blocks blend.")

    @model_validator(mode="before")
    @classmethod
    def _method_or_model(cls, data: Any) -> Any:
        """Refuse a method beside a model (it brings its own); without either use gaussian."""
        if not isinstance(data, dict) or data.get("method") is None:
            return {**data, "method": "gaussian"} if isinstance(data, dict) else data
        if data.get("model") is not None:
            raise ValueError(
                f"--method {data['method']} and --model: the model was trained with its own "
                "method; give one of them"
            )
        return data

    @property
    def network(self) -> bool:
        """Whether a network denoises: a trained model, or one trained on the input."""
        return self.model is not None or self.method in SELF_SUPERVISED

    @model_validator(mode="after")
    def _fit(self) -> DenoiseRequest:
        if self.loss is not None and (self.model is not None or not self.network):
            raise ValueError(
                "--loss: for a network trained here (--method deepcad, n2v or n2v3d without "
                "--model); a model keeps the loss it was trained with"
            )
        if self.distributed and self.network:
            raise ValueError(
                "--scheduler/--cluster run the classical filters; networks run on one machine"
            )
        if self.network:
            return self
        if self.method not in CLASSICAL_METHODS:
            known = ", ".join((*CLASSICAL_METHODS, *SELF_SUPERVISED))
            raise ValueError(f"--method {self.method!r} is not one of {known}")
        given = [flag for name, flag in _NETWORK_FLAGS.items() if getattr(self, name)]
        if given:
            raise ValueError(
                f"{', '.join(given)}: for networks only (--model or a network --method)"
            )
        if self.mode not in ("2d", "3d"):
            raise ValueError(f"--mode {self.mode!r}: use 2d or 3d")
        return self
