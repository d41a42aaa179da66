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

Back to instances
-----------------
The axon class alone over-splits: wherever an object is at most ``2 * border`` voxels thick (thin
axons, and z is often only a few dozen slices) its core breaks or vanishes. The map itself tells
where two instances truly touch: a border voxel whose whole ring lies in the foreground can only
be border because of a contact (*contact evidence*). :func:`semantic_to_instances` keeps every
foreground piece in one instance unless such evidence separates it; contacts between objects
that are all border there (two thin axons crossing) leave no evidence and come back merged.
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
Connectivity = Literal[6, 18, 26]

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


def _contact_evidence(
    sem: NDArray[np.integer], fg: NDArray[np.bool_], border: int, ring_axes: tuple[int, ...]
) -> NDArray[np.bool_]:
    """Border voxels that only a contact explains: their whole ring lies in the foreground."""
    ring_fp = _cross(sem.ndim, ring_axes)
    full = _extreme(fg.view(np.uint8), ring_fp, border, kind="min").astype(bool)
    return (sem == BORDER) & full


def _over_segment(
    sem: NDArray[np.integer],
    fg: NDArray[np.bool_],
    evidence: NDArray[np.bool_],
    border: int,
    conn: Connectivity,
) -> tuple[NDArray[np.int32], int]:
    """Regions: axon-class cores flooded through the foreground, never through contact evidence.

    Returns the region labels and the number of regions that hold a core (labels ``1..n_core``);
    coreless foreground pieces follow as labels of their own.
    """
    import cc3d
    from skimage.segmentation import watershed

    def add_pieces(regions: NDArray[np.int32], where: NDArray[np.bool_]) -> None:
        pieces = cc3d.connected_components(np.ascontiguousarray(where), connectivity=conn)
        regions[where] = pieces[where].astype(np.int32) + regions.max()

    core = cc3d.connected_components(np.ascontiguousarray(sem == AXON), connectivity=conn)
    n_core = int(core.max())
    flat = np.zeros(sem.shape, np.uint8)  # a flat image makes the watershed a breadth-first flood
    regions = np.zeros(sem.shape, np.int32)
    if n_core:
        regions = np.asarray(
            watershed(flat, markers=core.astype(np.int32), mask=fg & ~evidence), dtype=np.int32
        )
    left = fg & ~evidence & (regions == 0)
    if left.any():
        add_pieces(regions, left)
    if evidence.any() and regions.max() > 0:
        # an evidence voxel within reach of a core belongs to that core's instance; the rest go
        # to the nearest region
        ball = _cross(sem.ndim, tuple(range(sem.ndim)))
        near = _extreme(np.where(sem == AXON, regions, 0), ball, border, kind="max")
        regions = np.where(evidence, near, regions)
        regions = np.asarray(watershed(flat, markers=regions, mask=fg), dtype=np.int32)
    left = fg & (regions == 0)
    if left.any():
        add_pieces(regions, left)
    return regions, n_core


def _separation_constraints(
    regions: NDArray[np.int32], evidence: NDArray[np.bool_], border: int
) -> list[tuple[int, tuple[int, ...]]]:
    """One ``(region, other regions)`` per distinct contact: the region must stay apart from one.

    A contact-evidence voxel has a voxel of another instance within city-block distance
    ``border``; the regions it sees there (other than its own) are the candidates.
    """
    coords = np.nonzero(evidence)
    if not coords[0].size:
        return []
    own = regions[coords]
    nd = regions.ndim
    offsets = [
        o
        for o in np.ndindex(*(2 * border + 1,) * nd)
        if 0 < sum(abs(v - border) for v in o) <= border
    ]
    shape = regions.shape
    seen = np.stack(
        [
            regions[
                tuple(np.clip(c + (o[a] - border), 0, shape[a] - 1) for a, c in enumerate(coords))
            ]
            for o in offsets
        ],
        axis=1,
    )
    seen = np.where(seen == own[:, None], 0, seen)
    seen.sort(axis=1)
    seen[:, 1:][seen[:, 1:] == seen[:, :-1]] = 0  # each candidate once per voxel
    seen.sort(axis=1)
    has = seen[:, -1] > 0
    rows = np.unique(np.concatenate([own[has, None], seen[has]], axis=1), axis=0)
    return [(int(r[0]), tuple(int(v) for v in r[1:] if v > 0)) for r in rows]


def _merge_regions(
    regions: NDArray[np.int32],
    constraints: list[tuple[int, tuple[int, ...]]],
    conn: Connectivity,
) -> NDArray[np.int64]:
    """Merge touching regions, largest contact first, unless a merge breaks a constraint.

    Returns the group (a region id) of every region id.
    """
    import cc3d

    n = int(regions.max())
    parent = np.arange(n + 1)
    members: dict[int, list[int]] = {r: [r] for r in range(1, n + 1)}
    cons: dict[int, list[tuple[int, tuple[int, ...]]]] = {}
    for c in constraints:
        cons.setdefault(c[0], []).append(c)
    contacts = cc3d.contacts(regions, connectivity=conn, surface_area=False)
    for (a, b), _ in sorted(contacts.items(), key=lambda kv: (-kv[1], kv[0])):
        ga, gb = int(parent[a]), int(parent[b])
        if ga == gb:
            continue
        joined = (ga, gb)
        # a contact is broken when its region and every candidate end up in one group
        if any(
            all(parent[o] in joined for o in others)
            for g in joined
            for _, others in cons.get(g, ())
        ):
            continue
        if len(members[ga]) < len(members[gb]):
            ga, gb = gb, ga
        parent[members[gb]] = ga
        members[ga] += members.pop(gb)
        cons.setdefault(ga, []).extend(cons.pop(gb, []))
    return parent


def semantic_to_instances(
    semantic: ArrayLike,
    *,
    min_size: int = 0,
    connectivity: Connectivity = 18,
    keep_orphan_borders: bool = True,
    border: int = 1,
    planes: Planes = "yz",
) -> NDArray[np.int32]:
    """Turn a background / axon / border class map back into instance labels.

    A thin object's axon-class core breaks wherever it is at most ``2 * border`` voxels thick,
    so cores alone over-split. The conversion therefore treats every foreground piece as one
    object unless the map *proves* two objects touch there:

    1. **contact evidence**: a border voxel whose ring (``border`` voxels along the ``planes``
       axes, as in :func:`instances_to_semantic`) lies wholly in the foreground is border only
       because another instance lies within ``border`` voxels of it;
    2. **regions**: the axon-class components (``connectivity``) are flooded breadth-first
       through the foreground but never through evidence voxels, which are assigned last;
       coreless foreground pieces become regions of their own;
    3. **merging**: touching regions are merged, the largest contact first, unless the merge
       would leave an evidence voxel with no other region within its reach.

    With ``border`` and ``planes`` those of the map, two touching instances stay apart wherever
    their contact has an evidence voxel, and a thin object whose core broke comes back whole.
    Instances smaller than ``min_size`` voxels are then removed and the rest renumbered 1..N.

    Parameters
    ----------
    semantic : array-like of int, (Z, Y, X) or (Y, X)
        Classes 0, 1, 2. Not modified.
    min_size : int
        Smallest instance kept, in voxels.
    connectivity : {6, 18, 26}
        Connectivity of the cores, of coreless pieces and of touching regions (3D; 2D uses 4
        for 6 and 8 otherwise). Instances meeting only at an edge or a corner have no contact
        border, so 18 and 26 may merge them; 6 keeps them apart but leaves diagonal steps of
        one-voxel-thin objects as separate pieces.
    keep_orphan_borders : bool
        Keep instances without any axon-class voxel (objects so thin they are all border).
    border : int
        Border thickness the map was made with (>= 1).
    planes : {"yz", "all"}
        Ring axes the map was made with. Assuming ``"yz"`` for an ``"all"`` map is the safe
        mismatch: it can only keep more objects apart.

    Returns
    -------
    ndarray of int32
        Instance labels, 0 background.

    Examples
    --------
    >>> lab = np.zeros((1, 5, 8), np.int32)
    >>> lab[0, 1:4, 1:4] = 1
    >>> lab[0, 1:4, 4:7] = 2
    >>> back = semantic_to_instances(instances_to_semantic(lab, planes="all"), planes="all")
    >>> bool((back == lab).all())
    True
    """
    sem = np.asarray(semantic)
    if sem.ndim not in (2, 3):
        raise InputError(f"semantic classes must be 2D or 3D, got shape {sem.shape}")
    if sem.size and (sem.min() < 0 or sem.max() > BORDER):
        raise InputError("semantic classes must be 0 (background), 1 (axon) or 2 (border)")
    if border < 1:
        raise InputError(f"border must be at least 1 voxel, got {border}")
    if planes not in ("yz", "all"):
        raise InputError(f"planes must be 'yz' or 'all', got {planes!r}")
    vol = sem[np.newaxis] if sem.ndim == 2 else sem  # a 2D map is a one-slice volume
    ring_axes = (0, 1, 2) if planes == "all" else (0, 1)
    fg = vol > 0
    evidence = _contact_evidence(vol, fg, border, ring_axes)
    regions, n_core = _over_segment(vol, fg, evidence, border, connectivity)
    constraints = _separation_constraints(regions, evidence, border)
    group = _merge_regions(regions, constraints, connectivity)
    if not keep_orphan_borders:
        cored = np.zeros(len(group), dtype=bool)
        cored[group[1 : n_core + 1]] = True
        group = np.where(cored[group], group, 0)
    log.debug(
        "semantic_to_instances: %d regions (%d with a core), %d contacts, %d instances",
        regions.max(),
        n_core,
        len(constraints),
        len(np.unique(group[1:])),
    )
    out = relabel_min_size(group[regions], min_size=min_size)
    return out[0] if sem.ndim == 2 else out


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
