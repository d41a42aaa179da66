"""Instance labels <-> three semantic classes (0 background, 1 axon, 2 border).

Networks cannot predict arbitrary instance ids, but they can predict a *border* class that keeps
touching objects apart. :func:`instances_to_semantic` turns curated instance labels into training
targets; :func:`semantic_to_instances` turns a predicted class map back into instances.

Border definition
-----------------
A voxel of instance ``L`` is *border* (class 2) when

1. **ring**: some voxel within city-block distance ``border`` of it, moving only along the axes
   named by ``planes``, is not ``L`` (background or another instance); or
2. **contact**: some voxel within city-block distance ``border`` along *any* axis belongs to
   another instance (``!= L`` and ``!= 0``) — the voxels where two instances touch.

``planes="all"`` moves along Z, Y and X, so the ring is a shell all around each instance (its
end caps included). ``planes="yz"`` moves only along Z and Y: the ring is computed in each y–z
plane (each slice ``labels[:, :, x]``), i.e. around the cross-section of structures running
along X, and objects get no cap at their X ends; contacts between instances are still marked
along every axis. This is the "borders based on the y–z plane" rule of the reference axon
pipeline. The volume's edge is not an object boundary (voxels outside the volume repeat the
edge), so objects cut by the edge get no border there. With ``border=1, planes="all"`` the result
is the usual "instance voxels with a 6-neighbour of another label".
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from cascope.errors import InputError

log = logging.getLogger(__name__)

Planes = Literal["yz", "all"]

BACKGROUND, AXON, BORDER = 0, 1, 2


def _cross(ndim: int, axes: tuple[int, ...]) -> NDArray[np.bool_]:
    """City-block unit ball restricted to ``axes`` (a 3-long cross along each of them)."""
    fp = np.zeros((3,) * ndim, dtype=bool)
    centre = (1,) * ndim
    fp[centre] = True
    for a in axes:
        for off in (0, 2):
            idx = list(centre)
            idx[a] = off
            fp[tuple(idx)] = True
    return fp


def _extreme(
    arr: NDArray[np.integer], fp: NDArray[np.bool_], times: int, *, kind: str
) -> NDArray[np.integer]:
    """Max (or min) over the city-block ball of radius ``times``: the cross applied repeatedly."""
    filt = ndimage.maximum_filter if kind == "max" else ndimage.minimum_filter
    out = arr
    for _ in range(times):
        out = filt(out, footprint=fp, mode="nearest")
    return out


def _check_labels(labels: ArrayLike) -> NDArray[np.integer]:
    arr = np.asarray(labels)
    if arr.ndim not in (2, 3):
        raise InputError(f"labels must be 2D (Y, X) or 3D (Z, Y, X), got shape {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.mod(arr, 1) == 0):
            return arr.astype(np.int64)
        raise InputError(f"labels must be integers, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise InputError("labels must not be negative")
    return arr


def instances_to_semantic(
    labels: ArrayLike, *, border: int = 1, planes: Planes = "yz"
) -> NDArray[np.uint8]:
    """Convert instance labels into background (0) / axon (1) / border (2) classes.

    See the module documentation for the exact definition of the border.

    Parameters
    ----------
    labels : array-like of int, (Z, Y, X) or (Y, X)
        Instance labels, 0 = background. Not modified.
    border : int
        Thickness of the border ring in voxels (>= 1).
    planes : {"yz", "all"}
        Axes along which the ring is measured: ``"yz"`` within each y–z plane (Z and Y axes),
        ``"all"`` along every axis. Contacts between instances are marked along every axis in
        both cases. For 2D labels ``"yz"`` means the Y axis only.

    Returns
    -------
    ndarray of uint8
        The class of every voxel, same shape as ``labels``.

    Examples
    --------
    >>> lab = np.zeros((1, 5, 8), np.int32)
    >>> lab[0, 1:4, 1:4] = 1
    >>> lab[0, 1:4, 4:7] = 2
    >>> instances_to_semantic(lab, border=1, planes="all")[0]
    array([[0, 0, 0, 0, 0, 0, 0, 0],
           [0, 2, 2, 2, 2, 2, 2, 0],
           [0, 2, 1, 2, 2, 1, 2, 0],
           [0, 2, 2, 2, 2, 2, 2, 0],
           [0, 0, 0, 0, 0, 0, 0, 0]], dtype=uint8)
    """
    arr = _check_labels(labels)
    if border < 1:
        raise InputError(f"border must be at least 1 voxel, got {border}")
    if planes not in ("yz", "all"):
        raise InputError(f"planes must be 'yz' or 'all', got {planes!r}")
    nd = arr.ndim
    every = tuple(range(nd))
    ring_axes = every if planes == "all" else every[:-1]
    # the filters compare labels, so a compact integer type keeps them fast and small
    lab = arr.astype(np.int32, copy=False) if arr.max(initial=0) < 2**31 else arr
    fg = lab > 0
    ring_fp = _cross(nd, ring_axes)
    ring = (_extreme(lab, ring_fp, border, kind="max") != lab) | (
        _extreme(lab, ring_fp, border, kind="min") != lab
    )
    edge = ring & fg
    if planes != "all":
        # contacts: another (nonzero) label within reach along any axis. Background is hidden
        # from the max by 0 and from the min by the largest value, so it never counts.
        all_fp = _cross(nd, every)
        top = np.iinfo(lab.dtype).max
        hidden = np.where(fg, lab, top)
        larger = _extreme(lab, all_fp, border, kind="max") > lab
        smaller = _extreme(hidden, all_fp, border, kind="min") < lab
        edge |= fg & (larger | smaller)
    out = fg.astype(np.uint8)
    out[edge] = BORDER
    return out


def semantic_to_instances(
    semantic: ArrayLike,
    *,
    min_size: int = 0,
    connectivity: Literal[6, 18, 26] = 18,
    keep_orphan_borders: bool = True,
) -> NDArray[np.int32]:
    """Turn a background / axon / border class map back into instance labels.

    The axon class (1) is split into connected components (the border class keeps touching
    objects apart); each component then grows back into the border class by a watershed on the
    distance to the nearest component, restricted to the foreground (classes 1 and 2).
    Foreground pieces that no component reaches (objects so thin they are all border) become
    instances of their own when ``keep_orphan_borders``. Instances smaller than ``min_size``
    voxels are removed and the rest renumbered 1..N in order of first appearance.

    Parameters
    ----------
    semantic : array-like of int, (Z, Y, X) or (Y, X)
        Classes 0, 1, 2. Not modified.
    min_size : int
        Smallest instance kept, in voxels.
    connectivity : {6, 18, 26}
        Connectivity of the axon-class components (3D; 2D uses 4 for 6 and 8 otherwise). With a
        border of at least one voxel, axon-class voxels of two different instances never share
        a face or an edge, so 18 never merges touching instances and bridges diagonal steps of
        thin objects; 26 can merge instances meeting at a corner.
    keep_orphan_borders : bool
        Make foreground pieces without an axon-class core into instances.

    Returns
    -------
    ndarray of int32
        Instance labels, 0 background.

    Examples
    --------
    >>> lab = np.zeros((1, 5, 8), np.int32)
    >>> lab[0, 1:4, 1:4] = 1
    >>> lab[0, 1:4, 4:7] = 2
    >>> back = semantic_to_instances(instances_to_semantic(lab, planes="all"))
    >>> bool((back == lab).all())
    True
    """
    import cc3d
    from skimage.segmentation import watershed

    sem = np.asarray(semantic)
    if sem.ndim not in (2, 3):
        raise InputError(f"semantic classes must be 2D or 3D, got shape {sem.shape}")
    if sem.size and (sem.min() < 0 or sem.max() > BORDER):
        raise InputError("semantic classes must be 0 (background), 1 (axon) or 2 (border)")
    conn = connectivity if sem.ndim == 3 else (4 if connectivity == 6 else 8)
    core = cc3d.connected_components(np.ascontiguousarray(sem == AXON), connectivity=conn)
    fg = sem > 0
    if core.max() > 0:
        dist = ndimage.distance_transform_edt(core == 0)
        grown = watershed(dist, markers=core.astype(np.int32), mask=fg)
    else:
        grown = np.zeros(sem.shape, np.int32)
    grown = np.asarray(grown, dtype=np.int64)
    if keep_orphan_borders:
        orphans = fg & (grown == 0)
        if orphans.any():
            extra = cc3d.connected_components(np.ascontiguousarray(orphans), connectivity=conn)
            grown[orphans] = extra[orphans].astype(np.int64) + grown.max()
    return relabel_min_size(grown, min_size=min_size)


def relabel_min_size(labels: ArrayLike, *, min_size: int = 0) -> NDArray[np.int32]:
    """Drop instances smaller than ``min_size`` voxels and renumber the rest 1..N.

    Parameters
    ----------
    labels : array-like of int
        Instance labels, 0 background. Not modified.
    min_size : int
        Smallest instance kept, in voxels.

    Returns
    -------
    ndarray of int32
        Labels renumbered in order of increasing old label.
    """
    arr = np.asarray(labels)
    ids, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True)
    keep = (ids != 0) & (counts >= max(int(min_size), 1))
    new = np.zeros(len(ids), dtype=np.int32)
    new[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return new[inverse.reshape(arr.shape)]
