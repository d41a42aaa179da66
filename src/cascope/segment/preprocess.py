"""The reference preprocessing chain for axon stacks, as one configurable step.

1. a per-slice denoiser (BM3D by default) on every YX slice;
2. a stack denoiser: BM4D for sparse fields, bilateral for dense ones (``stack="auto"``, see
   :func:`foreground_density` and :class:`~cascope.config.segment.SegmentPreprocessConfig`);
3. top-hat background removal with anisotropic radii.

Computation is in float32; the result is cast back to the input's dtype (rounded and clipped to
its range) so the bit depth is preserved.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cascope.config.segment import SegmentPreprocessConfig
from cascope.errors import InputError
from cascope.io import check_finite

log = logging.getLogger(__name__)


def foreground_density(volume: ArrayLike) -> float:
    """Fraction of voxels above the volume's Otsu threshold (0 for a constant volume)."""
    from skimage.filters import threshold_otsu

    arr = np.asarray(volume, dtype=np.float32)
    if arr.min() == arr.max():
        return 0.0
    return float((arr > threshold_otsu(arr)).mean())


def choose_stack_denoiser(volume: ArrayLike, *, threshold: float = 0.08) -> str:
    """``"bilateral"`` for dense fields (foreground fraction > ``threshold``), else ``"bm4d"``."""
    density = foreground_density(volume)
    choice = "bilateral" if density > threshold else "bm4d"
    log.info("foreground density %.3f -> %s", density, choice)
    return choice


def _cast_like(result: NDArray[np.float32], dtype: np.dtype[Any]) -> NDArray[Any]:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(result), info.min, info.max).astype(dtype)
    return result.astype(dtype)


def preprocess_volume(
    volume: ArrayLike,
    *,
    config: SegmentPreprocessConfig | None = None,
    **overrides: Any,
) -> tuple[NDArray[Any], dict[str, Any]]:
    """Denoise a (Z, Y, X) stack slice by slice, then as a stack, then remove its background.

    Parameters
    ----------
    volume : array-like, (Z, Y, X)
        The raw stack. Not modified.
    config : SegmentPreprocessConfig, optional
        The chain's settings.
    **overrides
        Any config field, e.g. ``stack="bilateral"``.

    Returns
    -------
    result : ndarray
        Same shape and dtype as the input.
    info : dict
        What was done: ``slice_denoiser``, ``stack`` (the resolved choice), ``density``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> vol = rng.poisson(20, (4, 32, 32)).astype(np.uint16)
    >>> out, info = preprocess_volume(vol, slice_denoiser="gaussian", stack="none")
    >>> out.dtype.name, out.shape
    ('uint16', (4, 32, 32))
    """
    from cascope.denoise import bilateral, bm3d, bm4d, gaussian, median
    from cascope.preprocess import tophat_background

    cfg = config or SegmentPreprocessConfig()
    if overrides:
        cfg = SegmentPreprocessConfig.model_validate({**cfg.model_dump(), **overrides})
    src = np.asarray(volume)
    if src.ndim != 3:
        raise InputError(f"expected a (Z, Y, X) stack, got shape {src.shape}")
    if not np.issubdtype(src.dtype, np.number):
        raise InputError(f"expected a numeric stack, got dtype {src.dtype}")
    check_finite(src, axis="Z")
    x = src.astype(np.float32)
    sigma = cfg.noise_sigma
    if cfg.slice_denoiser == "bm3d":
        x = bm3d(x, axes="ZYX", noise_sigma=sigma)
    elif cfg.slice_denoiser == "gaussian":
        x = gaussian(x, axes="ZYX", sigma=1.0, mode="2d")
    elif cfg.slice_denoiser == "median":
        x = median(x, axes="ZYX", size=3, mode="2d")
    density = foreground_density(x)
    stack = cfg.stack
    if stack == "auto":
        stack = "bilateral" if density > cfg.density_threshold else "bm4d"
        log.info("foreground density %.3f -> %s", density, stack)
    if stack == "bm4d":
        x = bm4d(x, axes="ZYX", noise_sigma=sigma)
    elif stack == "bilateral":
        x = bilateral(x, axes="ZYX", noise_sigma=sigma, mode="3d")
    elif stack == "gaussian":
        x = gaussian(x, axes="ZYX", sigma=1.0, mode="3d")
    if cfg.tophat_radius is not None:
        rz, ry, rx = cfg.tophat_radius
        x, _ = tophat_background(x, axes="ZYX", radius={"Z": rz, "Y": ry, "X": rx})
    info = {"slice_denoiser": cfg.slice_denoiser, "stack": stack, "density": density}
    return _cast_like(np.asarray(x, dtype=np.float32), src.dtype), info
