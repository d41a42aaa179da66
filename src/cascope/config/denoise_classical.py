"""Configuration of the classical denoisers (Gaussian, median, bilateral, BM3D, BM4D)."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: The classical methods :func:`cascope.denoise.denoise_array` knows.
ClassicalMethod = Literal["gaussian", "median", "bilateral", "bm3d", "bm4d"]

CLASSICAL_METHODS: tuple[str, ...] = get_args(ClassicalMethod)


class VarianceStabilization(BaseModel):
    """Generalised Anscombe transform parameters for Poisson–Gaussian data.

    The camera model is ``value = offset + gain * Poisson(photons) + Normal(0, read_noise)``
    (all in ADU); ``cascope qc`` estimates ``gain`` and ``read_noise`` from the mean–variance
    relation of a movie.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    gain: float = Field(default=..., gt=0, description="Conversion gain in ADU per photo-electron.")
    read_noise: float = Field(
        default=0.0, ge=0, description="Standard deviation of the Gaussian read noise, in ADU."
    )
    offset: float = Field(default=0.0, description="Camera offset (dark level) in ADU.")


class ClassicalDenoiseConfig(BaseModel):
    """How to denoise a recording with a classical filter.

    Output values stay in the input's units: no method rescales the data. Filters work per
    YX plane (``mode="2d"``) or over a stack of planes (``mode="3d"``: along Z when the recording
    has a Z axis, otherwise along T). BM3D is always per plane and BM4D always per stack.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: ClassicalMethod = Field(
        default="gaussian",
        description="Filter: gaussian, median, bilateral, bm3d (per plane), bm4d.",
    )
    mode: Literal["2d", "3d"] = Field(
        default="2d",
        description="Filter each YX plane alone ('2d') or the stack of planes together ('3d'); "
        "ignored by bm3d (2d) and bm4d (3d).",
    )
    sigma: float = Field(
        default=1.0,
        gt=0,
        description="Gaussian: standard deviation of the kernel in pixels (Y and X).",
    )
    sigma_stack: float | None = Field(
        default=None,
        ge=0,
        description="Gaussian in 3d mode: standard deviation along the stack axis (T or Z) in "
        "planes; None means the same as sigma.",
    )
    size: int = Field(default=3, ge=1, description="Median: window width in pixels (Y and X).")
    size_stack: int | None = Field(
        default=None,
        ge=1,
        description="Median in 3d mode: window length along the stack axis; None means size.",
    )
    radius: int = Field(
        default=2, ge=1, description="Bilateral: half-width of the window in pixels (Y and X)."
    )
    radius_stack: int = Field(
        default=1,
        ge=0,
        description="Bilateral in 3d mode: half-width of the window along the stack axis.",
    )
    spatial_sigma: float = Field(
        default=1.5,
        gt=0,
        description="Bilateral: standard deviation of the spatial weight, in pixels.",
    )
    range_factor: float = Field(
        default=2.0,
        gt=0,
        description="Bilateral: standard deviation of the intensity weight as a multiple of the "
        "noise standard deviation.",
    )
    noise_sigma: float | None = Field(
        default=None,
        gt=0,
        description="Noise standard deviation in input units (after the variance-stabilising "
        "transform when one is set) for bilateral, bm3d, bm4d; None estimates it from the data.",
    )
    vst: VarianceStabilization | None = Field(
        default=None,
        description="Apply the generalised Anscombe transform before filtering and its unbiased "
        "inverse after it (Poisson–Gaussian data); None filters the raw values.",
    )
    block: int = Field(
        default=64, ge=1, description="Frames (planes along the streaming axis) processed at once."
    )
    halo: int | None = Field(
        default=None,
        ge=0,
        description="Extra planes read on each side of a block for 3d filters; None derives it "
        "from the filter's reach (bm4d: 8).",
    )
    dtype: Literal["same", "float32"] = Field(
        default="float32",
        description="Output type: 'float32' keeps the filter's float result; 'same' rounds and "
        "clips to the input's integer type (floats stay as they are).",
    )
    background_io: bool = Field(
        default=True,
        description="Read the next block and write the previous one in background threads while "
        "the filter works; off: one after the other, which holds two blocks less in memory.",
    )

    @model_validator(mode="after")
    def _check_median_size(self) -> ClassicalDenoiseConfig:
        if self.method == "median" and self.size % 2 == 0:
            raise ValueError("median size must be odd so the window is centred")
        return self

    @property
    def effective_mode(self) -> Literal["2d", "3d"]:
        """The mode the method actually runs in (BM3D is 2d, BM4D is 3d)."""
        if self.method == "bm3d":
            return "2d"
        if self.method == "bm4d":
            return "3d"
        return self.mode

    def reach(self) -> int:
        """Planes along the stack axis that one output plane depends on, on each side.

        Returns
        -------
        int
            The halo streaming needs for the result to equal a one-shot run (0 for 2d filters;
            for BM4D, whose block matching is non-local, a fixed context after which the result
            is practically the same).
        """
        if self.halo is not None:
            return self.halo
        if self.effective_mode == "2d":
            return 0
        if self.method == "gaussian":
            s = self.sigma if self.sigma_stack is None else self.sigma_stack
            # scipy.ndimage.gaussian_filter truncates the kernel at 4 sigma
            return int(4.0 * s + 0.5)
        if self.method == "median":
            return (self.size if self.size_stack is None else self.size_stack) // 2
        if self.method == "bilateral":
            return self.radius_stack
        return 8
