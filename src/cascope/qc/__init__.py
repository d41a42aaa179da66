"""Data checks before analysis: quantisation, saturation, offset, noise, SNR, frame correlation.

:func:`run_qc` reads a sample of frame pairs of a recording and returns a :class:`QCReport` with
flags and a one-line recommendation (e.g. which self-supervised denoiser suits the data).
"""

from cascope.qc.checks import QCReport, run_qc
from cascope.qc.noise import NoiseModel, fit_noise_model, robust_variance

__all__ = ["NoiseModel", "QCReport", "fit_noise_model", "robust_variance", "run_qc"]
