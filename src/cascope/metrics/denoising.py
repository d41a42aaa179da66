"""One score card for a denoised recording against its ground truth.

Every denoising number cascope reports (the demo, ``benchmarks/denoise_*``, the peer
comparisons) comes from :func:`score_denoising`, so PSNR, SSIM, SI-PSNR and trace correlation
mean the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from cascope.metrics.image import psnr, si_psnr, si_psnr_per_frame, ssim
from cascope.metrics.traces import trace_correlation


@dataclass(frozen=True)
class DenoiseScores:
    """Scores of one denoised recording (see :func:`score_denoising` for the conventions).

    Attributes
    ----------
    psnr : float
        PSNR in dB over the whole recording.
    ssim : float
        Mean SSIM over the frames.
    si_psnr : float
        SI-PSNR in dB: of the whole recording, or the mean over frames with ``per_frame``.
    si_psnr_std : float or None
        Standard deviation of the per-frame SI-PSNR (``per_frame`` only).
    si_psnr_gain : float or None
        ``si_psnr`` minus that of the noisy input, in the same form (when it was given).
    trace_corr : float or None
        Mean over neurons of the Pearson r of extracted ΔF/F with the ground truth (when
        footprints and ground-truth ΔF/F were given).
    data_range : float
        The data range PSNR and SSIM used.
    """

    psnr: float
    ssim: float
    si_psnr: float
    si_psnr_std: float | None
    si_psnr_gain: float | None
    trace_corr: float | None
    data_range: float

    def to_dict(self) -> dict[str, float]:
        """Return the scores as a flat dict for JSON and tables, leaving out those not computed.

        Keys: ``psnr``, ``ssim``, ``si_psnr`` and, where computed, ``si_psnr_std``,
        ``si_psnr_gain``, ``trace_corr`` (the data range is left out).
        """
        out: dict[str, float] = {"psnr": self.psnr, "ssim": self.ssim, "si_psnr": self.si_psnr}
        for key in ("si_psnr_std", "si_psnr_gain", "trace_corr"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def score_denoising(
    pred: ArrayLike,
    clean: ArrayLike,
    *,
    noisy: ArrayLike | None = None,
    footprints: ArrayLike | None = None,
    dff_true: ArrayLike | None = None,
    data_range: float | None = None,
    per_frame: bool = False,
) -> DenoiseScores:
    """Score a denoised (T, Y, X) recording against the clean ground truth.

    Conventions, the same for every caller:

    - Every array is read as float64; ``pred`` is scored as given (score what was written to
      disk, e.g. a uint16 file, by passing that).
    - **Data range** of PSNR and SSIM: ``max(clean) - min(clean)`` over the whole clean
      recording, one number for every frame (never the dtype's range), unless ``data_range``
      is given.
    - **SSIM**: 2-D windows, frame by frame, averaged over frames.
    - **SI-PSNR** (:func:`~cascope.metrics.si_psnr`): of the whole recording as one array (as
      CAREamics scores), or with ``per_frame`` the mean and standard deviation over frames.
    - **Trace correlation** (:func:`~cascope.metrics.trace_correlation`): each neuron's trace
      is its footprint-weighted mean, turned into ΔF/F and correlated with the ground-truth
      ΔF/F; the score is the mean r over neurons.

    Parameters
    ----------
    pred : array-like, (T, Y, X)
        The denoised recording.
    clean : array-like, (T, Y, X)
        Ground truth (the noise-free expected values).
    noisy : array-like, optional
        The input that was denoised: adds ``si_psnr_gain``.
    footprints : array-like, (N, Y, X), optional
        Neuron footprints; with ``dff_true`` adds ``trace_corr``.
    dff_true : array-like, (N, T), optional
        Ground-truth ΔF/F of those neurons.
    data_range : float, optional
        Override of the data range of PSNR and SSIM.
    per_frame : bool
        SI-PSNR frame by frame (mean and std) instead of over the whole recording.

    Returns
    -------
    DenoiseScores

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> clean = rng.random((4, 16, 16))
    >>> s = score_denoising(clean + 0.01 * rng.standard_normal(clean.shape), clean)
    >>> s.psnr > 35 and s.ssim > 0.9
    True
    """
    p = np.asarray(pred, dtype=np.float64)
    c = np.asarray(clean, dtype=np.float64)
    if p.ndim != 3:
        raise ValueError(f"expected a (T, Y, X) recording, got shape {p.shape}")
    rng = float(c.max() - c.min()) if data_range is None else float(data_range)
    std: float | None = None
    gain: float | None = None
    if per_frame:
        frames = si_psnr_per_frame(p, c)
        si, std = frames.mean, frames.std
        if noisy is not None:
            gain = float(np.mean(frames.values - si_psnr_per_frame(noisy, c).values))
    else:
        si = si_psnr(p, c)
        if noisy is not None:
            gain = si - si_psnr(noisy, c)
    corr: float | None = None
    if (footprints is None) != (dff_true is None):
        raise ValueError("trace correlation needs both footprints and dff_true")
    if footprints is not None:
        corr = trace_correlation(p, footprints, dff_true).mean  # type: ignore[arg-type]
    return DenoiseScores(
        psnr=psnr(p, c, data_range=rng),
        ssim=ssim(p, c, data_range=rng),
        si_psnr=si,
        si_psnr_std=std,
        si_psnr_gain=gain,
        trace_corr=corr,
        data_range=rng,
    )
