"""Parameters of the simulated recordings (``cascope.simulate``), with their physical units.

Every simulation is fully described by one of these models plus its ``seed``: the same parameters
give the same arrays, bit for bit. Brightness is given in photons (detected photo-electrons) per
pixel per frame; the camera turns photo-electrons into ADU with a Poisson–Gaussian model (see
:class:`CameraParams`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PositiveInt, model_validator


def _ordered(value: tuple[float, float]) -> tuple[float, float]:
    if value[0] > value[1] or value[0] < 0:
        raise ValueError("a range must be (min, max) with 0 <= min <= max")
    return value


Range = Annotated[tuple[float, float], AfterValidator(_ordered)]
Shape2D = tuple[PositiveInt, PositiveInt]
Shape3D = tuple[PositiveInt, PositiveInt, PositiveInt]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CameraParams(_Params):
    """Detector model: ``ADU = round(gain * (Poisson(photons) + Normal(0, read_noise)) + offset)``.

    The expected value of a pixel is ``offset + gain * photons`` and its variance is
    ``gain * (expected - offset) + gain**2 * read_noise**2`` (plus 1/12 ADU² from rounding).
    """

    gain: float = Field(default=2.0, gt=0, description="Conversion gain in ADU per photo-electron.")
    read_noise: float = Field(
        default=1.5, ge=0, description="Gaussian read noise, standard deviation in photo-electrons."
    )
    offset: float = Field(
        default=100.0, ge=0, description="Camera offset (dark level) in ADU added to every pixel."
    )
    bit_depth: int = Field(
        default=16,
        ge=8,
        le=16,
        description="Bits of the digitiser; values are clipped to [0, 2**bit_depth - 1].",
    )


class SomaticParams(_Params):
    """Two-photon-like movie of neuronal somata with neuropil and GCaMP-like kinetics."""

    seed: int = Field(default=0, ge=0, description="Seed of the random generator.")
    n_frames: int = Field(default=200, ge=1, description="Number of frames T.")
    shape: Shape2D = Field(default=(128, 128), description="Frame size (Y, X) in pixels.")
    n_neurons: int | None = Field(
        default=None,
        ge=0,
        description="Number of neurons; None places one per 550 px² of field (30 in 128×128).",
    )
    cell_radius: float = Field(default=6.0, gt=1, description="Mean soma radius in pixels.")
    nucleus_fraction: float = Field(
        default=0.55, ge=0, lt=1, description="Nucleus radius as a fraction of the soma radius."
    )
    nucleus_brightness: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="Nucleus brightness relative to the cytosol (ring footprints).",
    )
    photons: float = Field(
        default=20.0,
        gt=0,
        description="Resting cytosol brightness of an average neuron, photons per pixel per frame "
        "(sets the SNR).",
    )
    neuropil: float = Field(
        default=0.35, ge=0, description="Mean neuropil brightness as a fraction of ``photons``."
    )
    neuropil_fluctuation: float = Field(
        default=0.15,
        ge=0,
        description="Standard deviation of the neuropil's relative fluctuations.",
    )
    background: float = Field(
        default=0.5,
        ge=0,
        description="Spatially flat background (autofluorescence), photons per pixel.",
    )
    frame_rate: float = Field(default=30.0, gt=0, description="Frame rate in Hz.")
    spike_rate: float = Field(
        default=0.3, ge=0, description="Mean firing rate in Hz (per neuron, log-normally spread)."
    )
    burst_fraction: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="Fraction of firing events that are bursts of 2–5 spikes.",
    )
    spike_dff: float = Field(
        default=0.6, gt=0, description="Peak ΔF/F of one spike (per-neuron values spread ±30 %)."
    )
    rise_time: float = Field(
        default=0.05, gt=0, description="Indicator rise time constant in seconds."
    )
    decay_time: float = Field(
        default=0.4, gt=0, description="Indicator decay time constant in seconds."
    )
    psf_sigma: float = Field(
        default=0.8,
        ge=0,
        description="Lateral blur (Gaussian sigma, pixels) applied to the footprints.",
    )
    bleaching: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="Fraction of all fluorescence lost by the last frame (exp).",
    )
    camera: CameraParams = Field(default_factory=CameraParams, description="Detector model.")

    @model_validator(mode="after")
    def _check_kinetics(self) -> SomaticParams:
        if self.rise_time >= self.decay_time:
            raise ValueError("rise_time must be shorter than decay_time")
        return self


class MsctParams(_Params):
    """Dendrites of cultured neurons with miniature synaptic calcium transients (mSCTs).

    Event kinetics are given in frames: events last a few frames at typical mSCT frame rates.
    """

    seed: int = Field(default=0, ge=0, description="Seed of the random generator.")
    n_frames: int = Field(default=200, ge=1, description="Number of frames T.")
    shape: Shape2D = Field(default=(128, 128), description="Frame size (Y, X) in pixels.")
    n_dendrites: int | None = Field(
        default=None,
        ge=1,
        description="Number of primary dendrites; None uses one per 3000 px² of field (5 in 128²).",
    )
    branch_probability: float = Field(
        default=0.5, ge=0, le=1, description="Probability that a dendrite sprouts one side branch."
    )
    dendrite_width: Range = Field(
        default=(2.0, 4.0), description="Range of dendrite widths (FWHM, pixels)."
    )
    photons: float = Field(
        default=30.0,
        gt=0,
        description="Resting dendrite brightness on its axis, photons per pixel per frame.",
    )
    background: float = Field(
        default=4.0, ge=0, description="Background brightness between dendrites, photons per pixel."
    )
    event_rate: float = Field(
        default=0.5,
        ge=0,
        description="Expected events per frame per 10,000 dendrite pixels (Poisson).",
    )
    amplitude: Range = Field(
        default=(0.3, 1.0),
        description="Range of event peak ΔF/F (relative to the resting dendrite).",
    )
    radius: Range = Field(
        default=(2.0, 4.0),
        description="Range of event radii in pixels (where the signal is 20 % of peak).",
    )
    rise_frames: float = Field(default=0.7, gt=0, description="Event rise time constant in frames.")
    decay_frames: Range = Field(
        default=(3.0, 8.0), description="Range of event decay time constants in frames."
    )
    label_fraction: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="A voxel belongs to an event where its ΔF/F exceeds this fraction of the peak.",
    )
    min_separation: tuple[float, float] = Field(
        default=(10.0, 8.0),
        description="Events closer than (frames, pixels) to an earlier event are redrawn.",
    )
    bleaching: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="Fraction of all fluorescence lost by the last frame (exp).",
    )
    frame_rate: float = Field(default=10.0, gt=0, description="Frame rate in Hz (metadata).")
    psf_sigma: float = Field(
        default=0.7, ge=0, description="Lateral blur (Gaussian sigma, pixels)."
    )
    camera: CameraParams = Field(default_factory=CameraParams, description="Detector model.")


class AxonParams(_Params):
    """Confocal-like volume of tubular axons, optionally a two-channel FRET sensor."""

    seed: int = Field(default=0, ge=0, description="Seed of the random generator.")
    shape: Shape3D = Field(default=(32, 128, 128), description="Volume size (Z, Y, X), voxels.")
    mode: Literal["random", "straight"] = Field(
        default="random",
        description="'random': curved, branching axons; 'straight': one straight tube of "
        "``tube_length`` voxels (for skeleton-length checks).",
    )
    density: Literal["sparse", "dense"] = Field(
        default="sparse",
        description="Axon density when ``n_axons`` is None (dense fields touch and cross).",
    )
    n_axons: int | None = Field(
        default=None, ge=1, description="Number of axons; None follows ``density``."
    )
    radius: Range = Field(default=(1.5, 3.0), description="Range of tube radii, voxels.")
    branch_probability: float = Field(
        default=0.3, ge=0, le=1, description="Probability that an axon has one collateral branch."
    )
    tortuosity: float = Field(
        default=0.02,
        ge=0,
        description="Random turning per voxel of path (radians, standard deviation).",
    )
    tube_length: float = Field(
        default=60.0, gt=0, description="Length of the straight tube, voxels."
    )
    tube_direction: tuple[float, float, float] = Field(
        default=(0.0, 0.6, 0.8), description="Direction (z, y, x) of the straight tube."
    )
    photons: float = Field(
        default=40.0, gt=0, description="Axon brightness (donor channel), photons per voxel."
    )
    background: float = Field(
        default=3.0, ge=0, description="Background brightness, photons per voxel."
    )
    psf_sigma: tuple[float, float, float] = Field(
        default=(2.0, 0.8, 0.8), description="Gaussian PSF sigma (z, y, x) in voxels; larger in z."
    )
    fret: bool = Field(
        default=False, description="Render donor and acceptor channels (axes 'CZYX')."
    )
    fret_ratio: Range = Field(
        default=(0.6, 1.8), description="Range of the planted per-axon acceptor/donor ratio."
    )
    voxel_size: tuple[float, float, float] = Field(
        default=(0.5, 0.2, 0.2), description="Voxel size (z, y, x) in µm (metadata only)."
    )
    camera: CameraParams = Field(default_factory=CameraParams, description="Detector model.")


class PairParams(_Params):
    """Paired low-SNR / high-SNR images of the same scenes (CARE, Noise2Noise, SI-PSNR)."""

    seed: int = Field(default=0, ge=0, description="Seed of the random generator.")
    n_images: int = Field(default=16, ge=1, description="Number of independent scenes (frames).")
    shape: Shape2D = Field(default=(128, 128), description="Image size (Y, X) in pixels.")
    scene: Literal["somatic", "dendrites"] = Field(
        default="somatic", description="What the scenes show: neuron somata or dendrites."
    )
    photons_low: float = Field(
        default=4.0, gt=0, description="Brightness of the low-SNR images, photons."
    )
    photons_high: float = Field(
        default=200.0, gt=0, description="Brightness of the high-SNR image, photons."
    )
    camera: CameraParams = Field(default_factory=CameraParams, description="Detector model.")


__all__ = ["AxonParams", "CameraParams", "MsctParams", "PairParams", "SomaticParams"]
