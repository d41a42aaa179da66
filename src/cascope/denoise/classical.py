"""Classical denoisers on arrays with explicit axes: Gaussian, median, bilateral, BM3D, BM4D.

Every function takes an array (or a :class:`~cascope.io.Movie` small enough to read) with an
``axes`` string and returns a float32 array of the same shape **in the input's units**: nothing is
rescaled. Filters run per YX plane (``mode="2d"``) or over a stack of planes (``mode="3d"``: the
Z axis when there is one, otherwise T); other axes (C, and T for Z stacks) are looped over.
For long movies use :func:`cascope.denoise.denoise_movie`, which streams blocks of frames.
"""

from __future__ import annotations

import itertools
import logging
import math
import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from cascope.config.denoise_classical import ClassicalDenoiseConfig
from cascope.errors import CascopeError, InputError
from cascope.io import Movie, as_movie, validate_axes
from cascope.preprocess.sampling import evenly_spaced
from cascope.preprocess.vst import generalized_anscombe, inverse_generalized_anscombe

logger = logging.getLogger(__name__)

Mode = Literal["2d", "3d"]
FloatArray = NDArray[np.float32]


def stack_axis(axes: str) -> str:
    """Return the axis a 3d filter treats as depth: Z when present, otherwise T.

    Parameters
    ----------
    axes : str
        Axes of the data.

    Returns
    -------
    str
        ``"Z"`` or ``"T"``.
    """
    if "Z" in axes:
        return "Z"
    if "T" in axes:
        return "T"
    raise InputError(f"a 3d filter needs a Z or T axis; the data axes are {axes!r}")


def _core_axes(axes: str, mode: Mode) -> str:
    return "YX" if mode == "2d" else stack_axis(axes) + "YX"


def _as_array(data: ArrayLike | Movie, axes: str) -> tuple[NDArray[Any], str]:
    if isinstance(data, Movie):
        movie = as_movie(data, axes)
        return np.asarray(movie.data[...]), movie.axes
    arr = np.asarray(data)
    return arr, validate_axes(axes, arr.ndim)


def _per_axis(axes: str, mode: Mode, plane: Any, stack: Any, other: Any) -> list[Any]:
    """Return a window parameter per axis of the data.

    ``plane`` along Y and X, ``stack`` (default ``plane``) along the stack axis in 3d mode,
    ``other`` along the axes filtered one by one.
    """
    core = _core_axes(axes, mode)
    along_stack = plane if stack is None else stack
    return [(plane if a in "YX" else along_stack) if a in core else other for a in axes]


def _apply_over(
    arr: NDArray[Any], axes: str, core: str, fn: Callable[[FloatArray], NDArray[Any]]
) -> FloatArray:
    """Apply ``fn`` to every sub-array spanning the ``core`` axes (in that order)."""
    order = [axes.index(a) for a in axes if a not in core] + [axes.index(a) for a in core]
    moved = np.transpose(arr, order)
    n_loop = arr.ndim - len(core)
    out = np.empty(moved.shape, dtype=np.float32)
    for idx in itertools.product(*[range(s) for s in moved.shape[:n_loop]]):
        sub = np.ascontiguousarray(moved[idx], dtype=np.float32)
        out[idx] = np.asarray(fn(sub), dtype=np.float32).reshape(sub.shape)
    return np.transpose(out, np.argsort(order))


def estimate_noise_sigma(data: ArrayLike | Movie, *, axes: str, max_planes: int = 16) -> float:
    """Estimate the noise standard deviation from the data, in its own units.

    Uses the wavelet-domain median absolute deviation of each YX plane
    (:func:`skimage.restoration.estimate_sigma`, Donoho's estimator) on up to ``max_planes``
    evenly spaced planes and returns their median. For Poisson–Gaussian data the noise depends
    on the intensity; this gives a typical value (apply a variance-stabilising transform first
    for a single well-defined sigma).

    Parameters
    ----------
    data : array-like or Movie
        The recording (a lazy ``Movie`` is read plane by plane, never whole).
    axes : str
        Its axes.
    max_planes : int
        Number of planes to look at.

    Returns
    -------
    float
        Estimated noise standard deviation (> 0).

    Examples
    --------
    >>> import numpy as np
    >>> noisy = np.random.default_rng(0).normal(100, 5, (4, 128, 128))
    >>> round(estimate_noise_sigma(noisy, axes="TYX"))
    5
    """
    from skimage.restoration import estimate_sigma

    movie = as_movie(data, axes) if isinstance(data, Movie) else as_movie(np.asarray(data), axes)
    lead = [i for i, a in enumerate(movie.axes) if a not in "YX"]
    lead_shape = [movie.shape[i] for i in lead]
    n_total = math.prod(lead_shape)
    if n_total == 0:
        raise InputError("cannot estimate noise: the data has no planes", movie.source)
    picks = evenly_spaced(n_total, max_planes)
    sigmas = []
    for flat in picks:
        pos = np.unravel_index(int(flat), lead_shape) if lead else ()
        index: list[Any] = [slice(None)] * movie.ndim
        for i, p in zip(lead, pos, strict=True):
            index[i] = int(p)
        plane = np.asarray(movie[tuple(index)], dtype=np.float64)
        if plane.size == 0 or plane.min() == plane.max():
            # a constant plane (blank, padded) has no wavelet detail: NaN or a rounding residue
            # such as 1e-32, which would make the bilateral filter's weights overflow
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            sigmas.append(float(estimate_sigma(plane)))
    # constant planes say nothing about the noise of the others; a noiseless movie gives 0,
    # which no filter can use
    found = [s for s in sigmas if np.isfinite(s)]
    sigma = float(np.median(found)) if found else 0.0
    return sigma if sigma > 0 else 1e-6


def gaussian(
    data: ArrayLike | Movie,
    *,
    axes: str,
    sigma: float = 1.0,
    mode: Mode = "2d",
    sigma_stack: float | None = None,
) -> FloatArray:
    """Gaussian smoothing per plane or over the stack (mirror boundaries).

    Parameters
    ----------
    data : array-like or Movie
        The recording.
    axes : str
        Its axes, e.g. ``"TYX"``.
    sigma : float
        Kernel standard deviation along Y and X, in pixels.
    mode : {"2d", "3d"}
        Per YX plane, or also along the stack axis (Z, else T).
    sigma_stack : float, optional
        Standard deviation along the stack axis in 3d mode (default ``sigma``).

    Returns
    -------
    ndarray of float32
        Same shape and units as the input.

    Examples
    --------
    >>> import numpy as np
    >>> gaussian(np.ones((3, 8, 8), np.uint16), axes="TYX", sigma=1.0).dtype
    dtype('float32')
    """
    arr, axes = _as_array(data, axes)
    sig = _per_axis(axes, mode, sigma, sigma_stack, 0.0)
    return ndimage.gaussian_filter(arr.astype(np.float32), sigma=sig, mode="reflect")


def median(
    data: ArrayLike | Movie,
    *,
    axes: str,
    size: int = 3,
    mode: Mode = "2d",
    size_stack: int | None = None,
) -> FloatArray:
    """Median filter with a box window per plane or over the stack (mirror boundaries).

    Parameters
    ----------
    data : array-like or Movie
        The recording.
    axes : str
        Its axes.
    size : int
        Window width along Y and X (odd).
    mode : {"2d", "3d"}
        Per YX plane, or also along the stack axis (Z, else T).
    size_stack : int, optional
        Window length along the stack axis in 3d mode (default ``size``).

    Returns
    -------
    ndarray of float32
        Same shape and units as the input.
    """
    arr, axes = _as_array(data, axes)
    sizes = _per_axis(axes, mode, size, size_stack, 1)
    return ndimage.median_filter(arr.astype(np.float32), size=sizes, mode="reflect")


def _bilateral_nd(
    img: FloatArray, radii: tuple[int, ...], spatial_sigma: float, range_sigma: float
) -> FloatArray:
    """Brute-force bilateral filter on an n-d array: a box window with Gaussian weights."""
    pad = np.pad(img, [(r, r) for r in radii], mode="reflect")
    num = np.zeros_like(img)
    den = np.zeros_like(img)
    # a vanishing range (a noiseless movie) would overflow float32 and make 0 * inf = NaN; at
    # 1e-12 every neighbour that differs at all already weighs nothing
    inv_range = np.float32(-0.5 / max(float(range_sigma), 1e-12) ** 2)
    for offs in itertools.product(*[range(-r, r + 1) for r in radii]):
        w_space = np.float32(math.exp(-sum(o * o for o in offs) / (2.0 * spatial_sigma**2)))
        sl = tuple(slice(r + o, r + o + n) for r, o, n in zip(radii, offs, img.shape, strict=True))
        shifted = pad[sl]
        diff = shifted - img
        w = np.exp(diff * diff * inv_range) * w_space
        num += w * shifted
        den += w
    return num / den


def bilateral(
    data: ArrayLike | Movie,
    *,
    axes: str,
    noise_sigma: float | None = None,
    radius: int = 2,
    spatial_sigma: float = 1.5,
    range_factor: float = 2.0,
    mode: Mode = "2d",
    radius_stack: int = 1,
) -> FloatArray:
    """Edge-preserving bilateral filter per plane or over the stack.

    Each output value is a weighted mean over a box window of half-width ``radius`` (and
    ``radius_stack`` along the stack axis in 3d mode) with weights
    ``exp(-d² / 2 spatial_sigma²) * exp(-(v - v0)² / 2 (range_factor * noise_sigma)²)``, where
    ``d`` is the offset in pixels (planes along the stack axis) and ``v - v0`` the intensity
    difference in input units. The same direct implementation serves 2d and 3d, so the two modes
    are consistent (:func:`skimage.restoration.denoise_bilateral` is 2d only and bins the
    intensities).

    Parameters
    ----------
    data : array-like or Movie
        The recording.
    axes : str
        Its axes.
    noise_sigma : float, optional
        Noise standard deviation in input units; estimated when omitted.
    radius : int
        Window half-width along Y and X.
    spatial_sigma : float
        Standard deviation of the distance weight, pixels.
    range_factor : float
        Intensity weight width as a multiple of ``noise_sigma``.
    mode : {"2d", "3d"}
        Per YX plane, or also along the stack axis (Z, else T).
    radius_stack : int
        Window half-width along the stack axis in 3d mode.

    Returns
    -------
    ndarray of float32
        Same shape and units as the input.
    """
    arr, axes = _as_array(data, axes)
    if noise_sigma is None:
        noise_sigma = estimate_noise_sigma(arr, axes=axes)
    core = _core_axes(axes, mode)
    radii = tuple(radius if a in "YX" else radius_stack for a in core)
    range_sigma = range_factor * noise_sigma
    return _apply_over(
        arr, axes, core, lambda sub: _bilateral_nd(sub, radii, spatial_sigma, range_sigma)
    )


def _import_optional(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError as err:
        raise CascopeError(
            f"the {name} method needs the optional package {name!r}: "
            "pip install 'cascope[bm3d]' (BM3D/BM4D are free for non-commercial use only)"
        ) from err


def _block_matching(
    run: Callable[..., Any],
    data: ArrayLike | Movie,
    axes: str,
    noise_sigma: float | None,
    mode: Mode,
) -> FloatArray:
    """Run ``run`` (``bm3d.bm3d`` or ``bm4d.bm4d``) over every plane or stack."""
    arr, axes = _as_array(data, axes)
    if noise_sigma is None:
        noise_sigma = estimate_noise_sigma(arr, axes=axes)
    core = _core_axes(axes, mode)
    return _apply_over(arr, axes, core, lambda sub: run(sub, sigma_psd=noise_sigma))


def bm3d(data: ArrayLike | Movie, *, axes: str, noise_sigma: float | None = None) -> FloatArray:
    """BM3D (block matching and 3D collaborative filtering) on every YX plane.

    Needs the optional package ``bm3d`` (``pip install 'cascope[bm3d]'``).

    Parameters
    ----------
    data : array-like or Movie
        The recording.
    axes : str
        Its axes.
    noise_sigma : float, optional
        Noise standard deviation in input units; estimated when omitted.

    Returns
    -------
    ndarray of float32
        Same shape and units as the input.
    """
    return _block_matching(_import_optional("bm3d").bm3d, data, axes, noise_sigma, "2d")


def bm4d(data: ArrayLike | Movie, *, axes: str, noise_sigma: float | None = None) -> FloatArray:
    """BM4D on every stack of planes (Z, else T, with Y and X).

    Needs the optional package ``bm4d`` (``pip install 'cascope[bm3d]'``); the parameters and
    the result are those of :func:`bm3d`.
    """
    return _block_matching(_import_optional("bm4d").bm4d, data, axes, noise_sigma, "3d")


def _filter(arr: NDArray[Any], axes: str, cfg: ClassicalDenoiseConfig) -> FloatArray:
    mode = cfg.effective_mode
    if cfg.method == "gaussian":
        return gaussian(arr, axes=axes, sigma=cfg.sigma, mode=mode, sigma_stack=cfg.sigma_stack)
    if cfg.method == "median":
        return median(arr, axes=axes, size=cfg.size, mode=mode, size_stack=cfg.size_stack)
    if cfg.method == "bilateral":
        return bilateral(
            arr,
            axes=axes,
            noise_sigma=cfg.noise_sigma,
            radius=cfg.radius,
            spatial_sigma=cfg.spatial_sigma,
            range_factor=cfg.range_factor,
            mode=mode,
            radius_stack=cfg.radius_stack,
        )
    if cfg.method == "bm3d":
        return bm3d(arr, axes=axes, noise_sigma=cfg.noise_sigma)
    return bm4d(arr, axes=axes, noise_sigma=cfg.noise_sigma)


def denoise_array(
    data: ArrayLike | Movie,
    *,
    axes: str,
    config: ClassicalDenoiseConfig | None = None,
    **overrides: Any,
) -> FloatArray:
    """Denoise an in-memory recording with the classical method a config names.

    Parameters
    ----------
    data : array-like or Movie
        The recording (read whole: use :func:`cascope.denoise.denoise_movie` for big files).
    axes : str
        Its axes.
    config : ClassicalDenoiseConfig, optional
        Method and parameters (defaults: Gaussian, sigma 1, per plane).
    **overrides
        Any config field, e.g. ``method="median", size=5``.

    Returns
    -------
    ndarray of float32
        The denoised recording in the input's units (``config.dtype`` is applied by
        :func:`~cascope.denoise.denoise_movie`, not here).

    Examples
    --------
    >>> import numpy as np
    >>> noisy = np.random.default_rng(0).normal(100, 10, (2, 32, 32))
    >>> out = denoise_array(noisy, axes="TYX", method="median", size=3)
    >>> out.shape, out.dtype.name, bool(out.std() < noisy.std())
    ((2, 32, 32), 'float32', True)
    """
    cfg = config or ClassicalDenoiseConfig()
    if overrides:
        cfg = ClassicalDenoiseConfig.model_validate({**cfg.model_dump(), **overrides})
    arr, axes = _as_array(data, axes)
    if cfg.vst is None:
        return _filter(arr, axes, cfg)
    v = cfg.vst
    stab = generalized_anscombe(arr, gain=v.gain, read_noise=v.read_noise, offset=v.offset)
    den = _filter(stab, axes, cfg)
    return inverse_generalized_anscombe(den, gain=v.gain, read_noise=v.read_noise, offset=v.offset)
