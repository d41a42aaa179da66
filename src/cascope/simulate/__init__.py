"""Simulated recordings with ground truth: somatic movies, mSCT movies, axon volumes, image pairs.

Every simulation is seeded and described by a parameter model of
:mod:`cascope.config.simulate` (photons per pixel, camera gain, read noise, offset, bit depth,
frame rate, indicator kinetics). ``noisy`` arrays are uint16 camera values (ADU) drawn from a
Poisson–Gaussian model; ``clean`` arrays are their expected values in the same units.
"""

from cascope.config.simulate import AxonParams, CameraParams, MsctParams, PairParams, SomaticParams
from cascope.simulate._export import save
from cascope.simulate._noise import acquire, expected_adu
from cascope.simulate.axons import AxonResult, Centreline, axons
from cascope.simulate.mscts import MsctResult, mscts
from cascope.simulate.pairs import PairResult, pairs
from cascope.simulate.somatic import SomaticResult, somatic

__all__ = [
    "AxonParams",
    "AxonResult",
    "CameraParams",
    "Centreline",
    "MsctParams",
    "MsctResult",
    "PairParams",
    "PairResult",
    "SomaticParams",
    "SomaticResult",
    "acquire",
    "axons",
    "expected_adu",
    "mscts",
    "pairs",
    "save",
    "somatic",
]
