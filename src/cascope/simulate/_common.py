"""Building blocks shared by the simulations: indicator kinetics, smooth random fields."""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ValidationError
from scipy import ndimage, signal

from cascope.errors import InputError

P = TypeVar("P", bound=BaseModel)


def indicator_response(
    counts: NDArray[np.floating], *, rise_frames: float, decay_frames: float
) -> NDArray[np.float64]:
    """Convolve spike counts (..., T) with a double-exponential indicator kernel of peak 1.

    A spike in frame ``t`` is taken to occur mid-frame, so its response is already visible in
    frame ``t`` (frames integrate light over their whole exposure) and peaks shortly after.

    Parameters
    ----------
    counts : ndarray
        Spike counts per frame, time on the last axis. Not modified.
    rise_frames, decay_frames : float
        Rise and decay time constants in frames (``rise_frames < decay_frames``).

    Returns
    -------
    ndarray of float64
        Same shape as ``counts``: the response, scaled so one isolated spike peaks at 1.
    """
    x = np.asarray(counts, dtype=np.float64)
    n = np.arange(max(64, int(10 * decay_frames)))
    kernel = np.exp(-(n + 0.5) / decay_frames) - np.exp(-(n + 0.5) / rise_frames)
    peak = kernel.max()
    out = np.zeros_like(x)
    # sum of two exponentials = two first-order recursive filters: exact and O(T)
    for tau, sign in ((decay_frames, 1.0), (rise_frames, -1.0)):
        a = np.exp(-1.0 / tau)
        c = np.exp(-0.5 / tau)
        out += sign * signal.lfilter([c], [1.0, -a], x, axis=-1)
    out /= peak
    return out


def smooth_field(
    shape: tuple[int, ...], sigma: float | tuple[float, ...], rng: np.random.Generator
) -> NDArray[np.float64]:
    """Gaussian-filtered white noise, standardised to mean 0 and standard deviation 1.

    Parameters
    ----------
    shape : tuple of int
        Field shape.
    sigma : float or tuple of float
        Correlation length (Gaussian sigma) in pixels, per axis or for all.
    rng : numpy.random.Generator
        Random source.

    Returns
    -------
    ndarray of float64
        The field.
    """
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    field -= field.mean()
    std = field.std()
    return field / std if std > 0 else field


def bleach_curve(n_frames: int, fraction: float) -> NDArray[np.float64]:
    """Exponential bleaching factor per frame: 1 at the first frame, ``1 - fraction`` at the last.

    Parameters
    ----------
    n_frames : int
        Number of frames.
    fraction : float
        Fraction of the fluorescence lost by the last frame, in [0, 1).

    Returns
    -------
    ndarray of float64
        Shape (n_frames,).
    """
    if fraction <= 0 or n_frames < 2:
        return np.ones(n_frames)
    t = np.arange(n_frames) / (n_frames - 1)
    return np.asarray((1.0 - fraction) ** t, dtype=np.float64)


def resolve_params(cls: type[P], params: P | None, overrides: dict[str, Any]) -> P:
    """Build a parameter model from an optional base model and keyword overrides (validated).

    Parameters
    ----------
    cls : type
        The pydantic model class.
    params : model or None
        Base parameters; None starts from the defaults.
    overrides : dict
        Field values that replace those of ``params``; unknown names are rejected.

    Returns
    -------
    model
        A new, validated instance of ``cls``.
    """
    base = params.model_dump() if params is not None else {}
    try:
        return cls.model_validate({**base, **overrides})
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or cls.__name__}: {e['msg']}"
            for e in err.errors()
        )
        raise InputError(f"invalid simulation parameters: {problems}") from err
