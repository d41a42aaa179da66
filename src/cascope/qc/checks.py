"""Run the data-quality checks on a recording, reading only a sample of frame pairs.

See :func:`run_qc` for what is measured and the rules behind each flag.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cascope.config.qc import QCConfig
from cascope.errors import InputError
from cascope.io import Movie, as_movie, check_finite
from cascope.qc.noise import NoiseModel, fit_noise_model

logger = logging.getLogger(__name__)

#: Above this many distinct values the exact level count is abandoned (continuous data).
_MAX_TRACKED_LEVELS = 100_000


@dataclass
class QCReport:
    """Findings of :func:`run_qc`; ``flags`` and ``recommendation`` summarise them.

    Attributes are documented in :func:`run_qc`; ``to_dict`` gives the JSON form.
    """

    shape: tuple[int, ...]
    dtype: str
    axes: str
    frame_axis: str | None
    frames_sampled: int
    background_added: bool
    value_min: float
    value_max: float
    signal_low: float
    signal_high: float
    n_levels: int | None
    n_signal_levels: int | None
    level_step: float | None
    dynamic_range_compressed: bool
    saturation_level: float | None
    saturation_fraction: float
    saturated: bool
    offset: float
    offset_estimated: bool
    noise: NoiseModel
    mean_photons: float | None
    snr: float | None
    temporal_correlation: float | None
    temporal_correlation_raw: float | None
    flags: list[str] = field(default_factory=list)
    recommendation: str = ""
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python, JSON-ready form (NaN becomes ``None``)."""
        out = asdict(self)
        out["noise"] = self.noise.to_dict()
        out["shape"] = list(self.shape)
        for key, value in out.items():
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = None
        return out


class _Levels:
    """Exact counts of distinct values over the sampled frames, until there are too many."""

    def __init__(self) -> None:
        self.values: NDArray[Any] = np.zeros(0)
        self.counts: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.overflow = False

    def add(self, frame: NDArray[Any]) -> None:
        if self.overflow:
            return
        v, c = np.unique(frame, return_counts=True)
        allv = np.concatenate([self.values, v])
        uniq, inv = np.unique(allv, return_inverse=True)
        self.counts = np.bincount(
            inv, weights=np.concatenate([self.counts, c]), minlength=len(uniq)
        ).astype(np.int64)
        self.values = uniq
        if len(uniq) > _MAX_TRACKED_LEVELS:
            self.overflow = True
            self.values, self.counts = np.zeros(0), np.zeros(0, dtype=np.int64)


def _frame_view(movie: Movie, channel: int | None) -> tuple[str | None, int, Any]:
    """Frame axis letter, number of frames and a function reading frame ``i`` as (rows, X)."""
    axes = movie.axes
    if "C" in axes:
        n_c = movie.shape[axes.index("C")]
        if channel is None and n_c > 1:
            raise InputError(f"the recording has {n_c} channels: choose one", movie.source)
        if channel is not None and not 0 <= channel < n_c:
            raise InputError(f"channel {channel} out of range (0..{n_c - 1})", movie.source)
    elif channel not in (None, 0):
        raise InputError(f"channel {channel}: the recording has one channel", movie.source)
    frame_axis = "T" if "T" in axes else ("Z" if "Z" in axes else None)
    n = movie.shape[axes.index(frame_axis)] if frame_axis else 1

    def read(i: int) -> NDArray[np.float64]:
        index: list[Any] = [slice(None)] * movie.ndim
        kept = []
        for k, letter in enumerate(axes):
            if letter == frame_axis:
                index[k] = i
            elif letter == "C":
                index[k] = channel or 0
            else:
                kept.append(letter)
        raw = np.asarray(movie[tuple(index)])
        # a NaN or infinite value would turn every statistic into NaN (and the JSON invalid)
        check_finite(raw, path=movie.source, where=f" in {frame_axis or 'the frame'} {i}")
        block = raw.astype(np.float64, copy=False)
        # other planes (Z of a TZYX movie) are stacked along Y into one tall frame
        block = np.moveaxis(block, [kept.index("Y"), kept.index("X")], [-2, -1])
        return block.reshape(-1, block.shape[-1])

    return frame_axis, n, read


def _pair_starts(n: int, max_pairs: int) -> list[int]:
    if n < 2:
        return [0]
    return sorted({int(round(v)) for v in np.linspace(0, n - 2, min(max_pairs, n - 1))})


def _second_differences(
    frame: NDArray[np.float64],
) -> list[tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """Per direction: ``(2 x_i - x_{i-1} - x_{i+1}) / sqrt 6`` and the matching local mean.

    The second difference cancels a linear intensity gradient (the first difference does not)
    and has the variance of one pixel when the noise is independent between pixels. The local
    mean returned, ``(x_{i-1} + x_i + x_{i+1}) / 3``, has weights orthogonal to the difference's,
    so the two are uncorrelated and binning by the mean does not bias the variance.
    """
    out = []
    for axis in (0, 1):
        if frame.shape[axis] < 3:
            continue
        centre = np.moveaxis(frame, axis, 0)
        lo, mid, hi = centre[:-2], centre[1:-1], centre[2:]
        out.append(((lo + mid + hi) / 3.0, (2 * mid - lo - hi) / math.sqrt(6.0)))
    return out


def _neighbour_samples(
    frame: NDArray[np.float64], rng: np.random.Generator, k: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Local means and normalised second differences in both directions, subsampled."""
    means, diffs = [np.zeros(0)], [np.zeros(0)]
    for m, d in _second_differences(frame):
        pick = rng.integers(0, m.size, min(k, m.size))
        means.append(m.ravel()[pick])
        diffs.append(d.ravel()[pick])
    return np.concatenate(means), np.concatenate(diffs)


def _frame_noise_variance(frame: NDArray[np.float64]) -> float:
    """Mean noise variance of a frame: mean square of its normalised second differences.

    Both directions are averaged (scanners often correlate noise along a line). Signal
    curvature adds to it, so the estimate errs high and the corrected correlation errs low.
    """
    parts = [d for _, d in _second_differences(frame)]
    return float(np.mean([np.mean(p * p) for p in parts])) if parts else 0.0


def _pair_correlation(a: NDArray[np.float64], b: NDArray[np.float64]) -> tuple[float, float]:
    """Spatial Pearson r of two frames, raw and with the noise variance taken out.

    ``cov(a, b)`` is free of noise independent between frames, but each frame's variance holds
    its mean noise variance (:func:`_frame_noise_variance`), which is subtracted.
    """
    da, db = a - a.mean(), b - b.mean()
    cov = float(np.mean(da * db))
    va, vb = float(np.mean(da * da)), float(np.mean(db * db))
    raw = cov / math.sqrt(va * vb) if va > 0 and vb > 0 else float("nan")
    sa = va - _frame_noise_variance(a)
    sb = vb - _frame_noise_variance(b)
    if sa <= 0 or sb <= 0:
        return raw, float("nan")
    return raw, float(np.clip(cov / math.sqrt(sa * sb), -1.0, 1.0))


def _saturation(
    levels: _Levels, dtype: np.dtype[Any], total: int, vmax: float
) -> tuple[float | None, float]:
    """Ceiling value and the fraction of pixels at it.

    The ceiling is the dtype's maximum for integer data; otherwise the observed maximum when it
    is a plateau: at least 0.01 % of the pixels and five times as common as the next-lower value.
    """
    if np.issubdtype(dtype, np.integer) and levels.values.size:
        top = float(np.iinfo(dtype).max)
        if levels.values[-1] == top:
            return top, float(levels.counts[-1] / total)
    if levels.values.size >= 2:
        c_top, c_next = int(levels.counts[-1]), int(levels.counts[-2])
        if c_top >= 1e-4 * total and c_top >= 5 * c_next:
            return float(levels.values[-1]), c_top / total
    return (vmax if levels.values.size else None), 0.0


def run_qc(
    data: Movie | ArrayLike,
    *,
    axes: str | None = None,
    background: ArrayLike | None = None,
    channel: int | None = None,
    config: QCConfig | None = None,
) -> QCReport:
    """Check a recording: quantisation, saturation, offset, noise model, SNR, frame correlation.

    Only up to ``config.max_pairs`` pairs of consecutive frames (spread over the recording) are
    read, so memory stays bounded for any length. The frame axis is ``T``, else ``Z`` (a stack
    is checked plane to plane); other planes are stacked into one tall frame.

    - **Levels.** ``n_levels`` distinct values in the sampled frames; ``n_signal_levels`` of them
      between the ``signal_percentiles`` (0.5 and 99.5 %). The range is **compressed** when at
      most ``max_signal_levels`` (12) values carry the signal: rule relative to the occupied
      range, so any constant offset does not matter.
    - **Saturation.** Fraction of pixels at the ceiling (see :func:`_saturation`); flagged above
      ``saturation_limit`` (0.1 %).
    - **Offset.** ``offset_percentile`` (1 %) of the time-averaged sampled frames after a 5x5
      box mean: the camera offset plus the darkest background (or ``config.offset`` when known).
    - **Noise.** Poisson–Gaussian model from normalised second differences of neighbouring
      pixels (:func:`cascope.qc.noise.fit_noise_model`);
      ``mean_photons = (mean - offset) / gain``. Flagged unreliable when no positive slope fits
      or the range is compressed (rounding then dominates the variance).
    - **SNR.** Single-frame SNR of bright structure: ``(p95 - offset) / σ(p95)`` with ``p95`` the
      95th percentile of the time-averaged frame and ``σ`` the model's noise at that level.
    - **Temporal correlation.** Median over pairs of the spatial correlation of consecutive
      frames after removing each frame's noise variance (mean square of normalised second
      differences): 1 when the frames show the same signal, the assumption of temporal Noise2Noise;
      ``temporal_correlation_raw`` keeps the noise in. ``None`` when no frame has signal
      variance above its noise.

    Parameters
    ----------
    data : Movie or array-like
        The recording.
    axes : str, optional
        Axes of a bare array (e.g. ``"TYX"``).
    background : array-like, optional
        A background/offset frame (Y, X) that was subtracted from the recording; it is added back
        to every frame before the checks so the noise model sees the true intensities.
    channel : int, optional
        Channel to check when the recording has several.
    config : QCConfig, optional
        Sampling and thresholds.

    Returns
    -------
    QCReport
    """
    cfg = config or QCConfig()
    movie = as_movie(data, axes)
    frame_axis, n, read = _frame_view(movie, channel)
    bg: NDArray[np.float64] | None = None
    if background is not None:
        bg = np.squeeze(np.asarray(background, dtype=np.float64))
        ny, nx = movie.shape[movie.axes.index("Y")], movie.shape[movie.axes.index("X")]
        if bg.shape != (ny, nx):
            raise InputError(f"background frame {bg.shape} does not match frames ({ny}, {nx})")

    rng = np.random.default_rng(cfg.seed)
    levels = _Levels()
    starts = _pair_starts(n, cfg.max_pairs)
    values, nb_means, nb_diffs, pairs = [], [], [], []
    mean_image: NDArray[np.float64] | None = None
    n_read, vmin, vmax = 0, math.inf, -math.inf
    for s in starts:
        frames = [read(s)] + ([read(s + 1)] if n >= 2 else [])
        if bg is not None:
            reps = frames[0].shape[0] // bg.shape[0]
            frames = [f + np.tile(bg, (reps, 1)) for f in frames]
        for f in frames:
            levels.add(f)
            n_read += 1
            vmin, vmax = min(vmin, float(f.min())), max(vmax, float(f.max()))
            mean_image = f.copy() if mean_image is None else mean_image + f
            values.append(f.ravel()[rng.integers(0, f.size, min(cfg.samples_per_frame, f.size))])
            m, d = _neighbour_samples(f, rng, cfg.samples_per_frame)
            nb_means.append(m)
            nb_diffs.append(d)
        if len(frames) == 2:
            pairs.append((frames[0], frames[1]))
    assert mean_image is not None
    mean_image /= n_read
    sample = np.concatenate(values)
    lo, hi = (float(v) for v in np.percentile(sample, cfg.signal_percentiles))

    if levels.overflow:
        n_levels = n_signal = None
        step = None
        compressed = False
    else:
        n_levels = int(levels.values.size)
        inside = levels.values[(levels.values >= lo) & (levels.values <= hi)]
        n_signal = int(inside.size)
        gaps = np.diff(levels.values)
        step = float(np.median(gaps)) if gaps.size else None
        compressed = n_signal <= cfg.max_signal_levels
    total = n_read * int(mean_image.size)
    sat_level, sat_frac = _saturation(levels, movie.dtype, total, vmax)

    estimated = cfg.offset is None
    if cfg.offset is None:
        from scipy.ndimage import uniform_filter

        # a 5x5 box mean removes most of the noise left in the average, which would otherwise
        # pull a low percentile below the true dark level
        smooth = uniform_filter(mean_image, size=5, mode="nearest")
        offset = _snap(float(np.percentile(smooth, cfg.offset_percentile)), hi - lo)
    else:
        offset = float(cfg.offset)
    noise = fit_noise_model(
        np.concatenate(nb_means), np.concatenate(nb_diffs), offset=offset, n_bins=cfg.noise_bins
    )
    mean_photons = (float(mean_image.mean()) - offset) / noise.gain if noise.gain else None
    p95 = float(np.percentile(mean_image, 95))
    sigma = math.sqrt(float(noise.variance(p95)))
    snr = (p95 - offset) / sigma if sigma > 0 else None

    corr_raw = corr = None
    if pairs:
        both = np.array([_pair_correlation(a, b) for a, b in pairs])
        if np.isfinite(both[:, 0]).any():
            corr_raw = float(np.nanmedian(both[:, 0]))
        if np.isfinite(both[:, 1]).any():
            corr = float(np.nanmedian(both[:, 1]))

    report = QCReport(
        shape=movie.shape,
        dtype=movie.dtype.name,
        axes=movie.axes,
        frame_axis=frame_axis,
        frames_sampled=len({*starts, *(s + 1 for s in starts if n >= 2)}),
        background_added=bg is not None,
        value_min=vmin,
        value_max=vmax,
        signal_low=lo,
        signal_high=hi,
        n_levels=n_levels,
        n_signal_levels=n_signal,
        level_step=step,
        dynamic_range_compressed=compressed,
        saturation_level=sat_level,
        saturation_fraction=sat_frac,
        saturated=sat_frac > cfg.saturation_limit,
        offset=offset,
        offset_estimated=estimated,
        noise=noise,
        mean_photons=mean_photons,
        snr=snr,
        temporal_correlation=corr,
        temporal_correlation_raw=corr_raw,
        source=str(movie.source) if movie.source else None,
    )
    _decide(report, cfg)
    logger.info("qc: %s", report.recommendation)
    return report


def _snap(value: float, scale: float, digits: int = 4) -> float:
    """Round ``value`` to ``digits`` significant figures of ``scale`` (``-1.6e-14`` -> ``0.0``).

    A percentile of floating-point data carries summation residue far below the data's own
    resolution; reporting it would suggest a precision the measurement does not have.
    """
    if not math.isfinite(value) or not math.isfinite(scale) or scale <= 0:
        return value
    return round(value, digits - math.floor(math.log10(scale))) + 0.0  # + 0.0: no -0.0


def _decide(report: QCReport, cfg: QCConfig) -> None:
    """Fill in ``flags`` and the one-line ``recommendation``."""
    advice = []
    if report.dynamic_range_compressed:
        report.flags.append("dynamic_range_compressed")
        advice.append(
            f"dynamic range compressed: only {report.n_signal_levels} grey levels carry the "
            "signal (raise detector gain or bit depth; intensities here are coarse counts)"
        )
    if report.saturated:
        report.flags.append("saturated")
        advice.append(
            f"{100 * report.saturation_fraction:.2f} % of pixels saturated at "
            f"{report.saturation_level:g} (lower laser power or gain)"
        )
    if not report.noise.reliable or report.dynamic_range_compressed:
        report.flags.append("noise_model_unreliable")
        if report.noise.problem:
            advice.append(f"noise model unreliable: {report.noise.problem}")
    corr = report.temporal_correlation
    if report.frame_axis is None or report.frames_sampled < 2:
        advice.append("single frame: use n2v (spatial blind-spot) for denoising")
    elif report.frame_axis == "Z":
        # neighbouring planes of a stack show different structures, not the same scene twice
        # (the assumption of temporal N2N): denoise the volume as a volume
        advice.append(
            "volume (Z-stack): denoise it as a volume with n2v3d (3D blind-spot) or bm4d; "
            "temporal N2N (deepcad) needs a time series"
        )
    elif corr is not None and corr >= cfg.correlation_threshold:
        advice.append(
            f"temporal N2N (deepcad) suits this movie (consecutive frames correlate {corr:.2f})"
        )
    else:
        report.flags.append("frames_decorrelated")
        shown = "noise hides the signal" if corr is None else f"correlation {corr:.2f}"
        advice.append(
            f"frames decorrelated ({shown}; motion or fast signal): use n2v, "
            "or register the movie before temporal N2N"
        )
    report.recommendation = "; ".join(advice)
