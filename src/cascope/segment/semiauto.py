"""Semi-automatic labelling: threshold, edge map, 3D connected components, per-label statistics.

The output is a first instance labelling to curate by hand (the napari annotation tool reads it).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from cascope.errors import InputError
from cascope.segment.preprocess import field_density, imaged_field, subtract_opening
from cascope.segment.semantic import relabel_min_size

if TYPE_CHECKING:
    from cascope.config.segment import SeedConfig

log = logging.getLogger(__name__)

ThresholdMethod = Literal["constant", "otsu", "triangle", "li"]
Connectivity = Literal[6, 18, 26]


def _volume(data: ArrayLike) -> NDArray[np.float32]:
    arr = np.asarray(data)
    if arr.ndim not in (2, 3):
        raise InputError(f"expected a 2D (Y, X) or 3D (Z, Y, X) image, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"expected a numeric image, got dtype {arr.dtype}")
    out = arr.astype(np.float32)
    if not np.isfinite(out).all():
        raise InputError("the image contains NaN or infinite values")
    return out


def threshold_value(
    data: ArrayLike, *, method: ThresholdMethod = "otsu", value: float | None = None
) -> float:
    """Choose an intensity threshold.

    Parameters
    ----------
    data : array-like
        The image (any shape).
    method : {"constant", "otsu", "triangle", "li"}
        ``"constant"`` uses ``value``; the others are scikit-image's automatic thresholds
        (Otsu: between-class variance; triangle: suits a small bright foreground on a large
        background; Li: minimum cross-entropy).
    value : float, optional
        The threshold for ``"constant"`` (in the image's units).

    Returns
    -------
    float
        Voxels strictly above it are foreground.
    """
    from skimage import filters

    if method == "constant":
        if value is None:
            raise InputError("the constant threshold needs a value")
        return float(value)
    arr = _volume(data)
    if arr.size == 0 or arr.min() == arr.max():
        return float(arr.max(initial=0.0))
    fn = {"otsu": filters.threshold_otsu, "triangle": filters.threshold_triangle}.get(method)
    if fn is not None:
        return float(fn(arr))
    if method == "li":
        return float(filters.threshold_li(arr))
    raise InputError(f"unknown threshold method {method!r}")


def sobel_edges(data: ArrayLike, *, axes: str = "ZYX") -> NDArray[np.float32]:
    """Gradient magnitude by Sobel filters along every axis (edges of structures).

    Parameters
    ----------
    data : array-like
        The image.
    axes : str
        Its axes, ``"ZYX"`` or ``"YX"``; with ``"ZYX"`` the gradient includes Z.

    Returns
    -------
    ndarray of float32
        ``sqrt(sum_i sobel_i(data) ** 2)``, same shape, in image units per voxel (times 8 for
        YX, 32 for ZYX: the Sobel kernels' sums of weights, left unnormalised as usual).
    """
    arr = _volume(data)
    if len(axes) != arr.ndim:
        raise InputError(f"axes {axes!r} do not match an image of {arr.ndim} dimensions")
    total = np.zeros(arr.shape, np.float32)
    for ax in range(arr.ndim):
        g = ndimage.sobel(arr, axis=ax, mode="nearest")
        total += g * g
    return np.sqrt(total)


def connected_components(
    mask: ArrayLike, *, connectivity: Connectivity = 26, min_size: int = 0
) -> NDArray[np.int32]:
    """Label the connected components of a binary mask, dropping small ones.

    Parameters
    ----------
    mask : array-like of bool
        Foreground, 2D or 3D.
    connectivity : {6, 18, 26}
        Neighbours that connect voxels (faces; faces+edges; faces+edges+corners). In 2D, 6 means
        4-connectivity and 18/26 mean 8-connectivity.
    min_size : int
        Components smaller than this many voxels are removed.

    Returns
    -------
    ndarray of int32
        Labels 1..N, 0 background.
    """
    import cc3d

    m = np.ascontiguousarray(np.asarray(mask, dtype=bool))
    if m.ndim not in (2, 3):
        raise InputError(f"expected a 2D or 3D mask, got shape {m.shape}")
    conn = connectivity if m.ndim == 3 else (4 if connectivity == 6 else 8)
    lab = cc3d.connected_components(m, connectivity=conn)
    return relabel_min_size(lab, min_size=min_size)


def label_volume(
    data: ArrayLike,
    *,
    method: ThresholdMethod | Literal["seed"] = "otsu",
    value: float | None = None,
    connectivity: Connectivity = 26,
    min_size: int = 1000,
) -> NDArray[np.int32]:
    """Threshold an image and label its connected components (the reference pipeline's labelling).

    Parameters
    ----------
    data : array-like
        The (preprocessed) image, 2D or 3D.
    method, value
        See :func:`threshold_value`; ``"seed"`` runs the whole default chain for a raw 3D stack
        instead (:func:`seed_labels` with this connectivity and minimum size).
    connectivity : {6, 18, 26}
        See :func:`connected_components`.
    min_size : int
        Smallest component kept, in voxels (the reference pipeline keeps >= 1000).

    Returns
    -------
    ndarray of int32
        Instance labels.

    Examples
    --------
    >>> img = np.zeros((4, 20, 20), np.float32)
    >>> img[1:3, 2:6, 2:6] = 10
    >>> img[1:3, 10:18, 10:18] = 10
    >>> int(label_volume(img, min_size=1).max())
    2
    """
    if method == "seed":
        arr2 = np.asarray(data)
        if arr2.ndim == 2:  # one image: a one-slice stack
            return seed_labels(arr2[None], connectivity=connectivity, min_size=min_size)[0][0]
        return seed_labels(arr2, connectivity=connectivity, min_size=min_size)[0]
    arr = _volume(data)
    thr = threshold_value(arr, method=method, value=value)
    log.info("threshold %s = %.4g", method, thr)
    return connected_components(arr > thr, connectivity=connectivity, min_size=min_size)


def label_statistics(
    labels: ArrayLike,
    image: ArrayLike | None = None,
    *,
    voxel_size: tuple[float, ...] | None = None,
) -> pd.DataFrame:
    """One row per instance: size, bounding box, centroid and intensity statistics.

    Parameters
    ----------
    labels : array-like of int
        Instance labels, 0 background.
    image : array-like, optional
        Intensities of the same shape (adds mean, median, min, max, sum).
    voxel_size : tuple of float, optional
        Voxel size per axis in µm (adds ``volume_um3``).

    Returns
    -------
    DataFrame
        Columns ``label, voxels, [volume_um3], centroid_*, bbox_min_*, bbox_max_*`` and, with an
        image, ``mean, median, min, max, sum``; axes named z, y, x (or y, x).
    """
    lab = np.asarray(labels)
    if not np.issubdtype(lab.dtype, np.integer):
        raise InputError(f"labels must be integers, got dtype {lab.dtype}")
    names = "zyx"[-lab.ndim :]
    ids = np.unique(lab)
    ids = ids[ids > 0]
    cols: dict[str, NDArray[np.generic]] = {"label": ids.astype(np.int64)}
    if ids.size == 0:
        return pd.DataFrame(cols)
    cols["voxels"] = np.asarray(ndimage.sum_labels(np.ones(lab.shape), lab, ids)).astype(np.int64)
    if voxel_size is not None:
        if len(voxel_size) != lab.ndim:
            raise InputError(f"voxel_size needs {lab.ndim} values, got {len(voxel_size)}")
        cols["volume_um3"] = np.asarray(cols["voxels"], dtype=np.float64) * float(
            np.prod(voxel_size)
        )
    centroids = np.asarray(ndimage.center_of_mass(np.ones(lab.shape), lab, ids)).reshape(
        -1, lab.ndim
    )
    boxes = ndimage.find_objects(lab.astype(np.int64))
    for i, n in enumerate(names):
        cols[f"centroid_{n}"] = centroids[:, i]
        cols[f"bbox_min_{n}"] = np.array([boxes[j - 1][i].start for j in ids])
        cols[f"bbox_max_{n}"] = np.array([boxes[j - 1][i].stop for j in ids])
    if image is not None:
        img = np.asarray(image, dtype=np.float64)
        if img.shape != lab.shape:
            raise InputError(f"image shape {img.shape} differs from labels {lab.shape}")
        cols["mean"] = np.asarray(ndimage.mean(img, lab, ids))
        cols["median"] = np.asarray(ndimage.median(img, lab, ids))
        cols["min"] = np.asarray(ndimage.minimum(img, lab, ids))
        cols["max"] = np.asarray(ndimage.maximum(img, lab, ids))
        cols["sum"] = np.asarray(ndimage.sum_labels(img, lab, ids))
    return pd.DataFrame(cols)


def _voxels(length: tuple[float, float, float], voxel_size: tuple[float, ...] | None) -> NDArray:
    """Lengths (z, y, x) in µm to voxels (unchanged when the voxel size is unknown)."""
    if voxel_size is None:
        return np.asarray(length, dtype=np.float64)
    return np.asarray(length, dtype=np.float64) / np.asarray(voxel_size, dtype=np.float64)


def seed_labels(
    data: ArrayLike,
    *,
    voxel_size: tuple[float, float, float] | None = None,
    config: SeedConfig | None = None,
    **overrides: object,
) -> tuple[NDArray[np.int32], dict[str, object]]:
    """Separate structures of a raw (Z, Y, X) stack: the default chain of ``cascope label``.

    1. per-slice denoising (bilateral by default, BM3D on request);
    2. the recipe chosen from the data: the foreground fraction of the imaged field
       (:func:`~cascope.segment.field_density`, with the smoothing and the box of step 3) tells
       a sparse field (a Gaussian or BM4D over the stack) from a dense one (a bilateral filter,
       which keeps neighbouring axons apart);
    3. top-hat background removal with an anisotropic box whose half-sizes are in µm (voxels
       when the voxel size is unknown);
    4. a threshold computed over the imaged field only (zero padding excluded);
    5. connected components and a minimum size.

    Parameters
    ----------
    data : array-like, (Z, Y, X)
        The raw stack.
    voxel_size : (float, float, float), optional
        Voxel size (z, y, x) in µm.
    config : SeedConfig, optional
        The chain's settings.
    **overrides
        Any config field.

    Returns
    -------
    labels : ndarray of int32
        Instance labels.
    info : dict
        ``density``, ``recipe`` ("sparse" or "dense"), ``stack`` (the stack denoiser used),
        ``threshold``, ``field_fraction`` and ``labels``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> vol = rng.poisson(3, (6, 64, 64)).astype(np.float32)
    >>> vol[2:4, 10:14, 5:60] += 40
    >>> vol[2:4, 40:44, 5:60] += 40
    >>> lab, info = seed_labels(vol, min_size=50)
    >>> int(lab.max()), info["recipe"]
    (2, 'sparse')
    """
    from cascope.config.segment import SeedConfig
    from cascope.denoise import bilateral, bm3d, bm4d, gaussian

    cfg = config or SeedConfig()
    if overrides:
        cfg = SeedConfig.model_validate({**cfg.model_dump(), **overrides})
    arr = _volume(data)
    if arr.ndim != 3:
        raise InputError(f"expected a (Z, Y, X) stack, got shape {arr.shape}")
    field = imaged_field(arr)
    x = arr
    if cfg.slice_denoiser == "bilateral":
        x = bilateral(x, axes="ZYX", mode="2d")
    elif cfg.slice_denoiser == "bm3d":
        x = bm3d(x, axes="ZYX")
    elif cfg.slice_denoiser == "gaussian":
        x = gaussian(x, axes="ZYX", sigma=1.0, mode="2d")
    x = np.asarray(x, dtype=np.float32)
    sigma = tuple(float(v) for v in _voxels(cfg.smooth, voxel_size))
    box: tuple[int, ...] | None = None
    if cfg.background_radius is not None:
        half = np.maximum(np.rint(_voxels(cfg.background_radius, voxel_size)), 0).astype(int)
        box = tuple(int(v) for v in 2 * half + 1)
    density = field_density(x, smooth=sigma, box=box, field=field)
    recipe = "dense" if density > cfg.density_threshold else "sparse"
    stack = cfg.stack
    if stack == "auto":
        stack = "bilateral" if recipe == "dense" else cfg.sparse_stack
    if stack == "bm4d":
        x = bm4d(x, axes="ZYX")
    elif stack == "bilateral":
        x = bilateral(x, axes="ZYX", mode="3d")
    elif stack == "gaussian":
        x = ndimage.gaussian_filter(x, sigma)
    x = subtract_opening(x, box)
    thr = cfg.threshold_scale * threshold_value(x[:, field], method=cfg.method)
    mask = (x > thr) & field[None]
    lab = connected_components(mask, connectivity=cfg.connectivity, min_size=cfg.min_size)
    info: dict[str, object] = {
        "density": density,
        "recipe": recipe,
        "stack": stack,
        "threshold": thr,
        "field_fraction": float(field.mean()),
        "labels": int(lab.max()),
    }
    log.info(
        "seed chain: foreground fraction %.3f -> %s field, %s over the stack; %s threshold "
        "%.3g; %d labels",
        density,
        recipe,
        stack,
        cfg.method,
        thr,
        int(lab.max()),
    )
    return lab, info
