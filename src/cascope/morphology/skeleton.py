"""Per-structure shape measurements from TEASAR skeletons (kimimaro).

Length
    Each unbranched piece of the skeleton is smoothed (Gaussian, 2 vertices) before its length is
    summed, so the voxel staircase does not inflate it. A skeleton runs to the surface of a rounded
    end while the structure's centreline stops one radius earlier, so every free end that does not
    touch the volume's edge is shortened by the piece's median radius (distance to the boundary).
Branches
    ``branch_points`` = skeleton vertices of degree >= 3, ``branches`` = unbranched pieces.
Mean diameter
    ``2 * sqrt(volume / (pi * length))``: the diameter of a cylinder of the same volume and length.
Tortuosity
    Length of the longest path through the skeleton divided by the straight distance between its
    two ends (1 for a straight structure).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import gaussian_filter1d

from cascope.errors import InputError

log = logging.getLogger(__name__)


def _pieces(n_vertices: int, edges: NDArray[np.integer]) -> list[list[int]]:
    """Split a skeleton graph into unbranched paths between vertices of degree != 2."""
    adj: dict[int, list[int]] = defaultdict(list)
    for a, b in edges:
        adj[int(a)].append(int(b))
        adj[int(b)].append(int(a))
    nodes = {v for v, nb in adj.items() if len(nb) != 2}
    seen: set[tuple[int, int]] = set()
    out: list[list[int]] = []
    starts = nodes or ({next(iter(adj))} if adj else set())
    for n in starts:
        for nb in adj[n]:
            if (n, nb) in seen:
                continue
            path = [n, nb]
            seen.update({(n, nb), (nb, n)})
            while path[-1] not in nodes and path[-1] != n:
                cur = path[-1]
                nxt = [x for x in adj[cur] if x != path[-2]]
                if not nxt:
                    break
                seen.update({(cur, nxt[0]), (nxt[0], cur)})
                path.append(nxt[0])
            out.append(path)
    return out


def _smoothed_length(points: NDArray[np.float64]) -> float:
    if len(points) > 3:
        inner = gaussian_filter1d(points, 2.0, axis=0, mode="nearest")[1:-1]
        points = np.concatenate([points[:1], inner, points[-1:]])
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())


def _longest_path(
    n: int, edges: NDArray[np.integer], w: NDArray[np.float64]
) -> tuple[int, int, float]:
    """Two ends and length of the longest geodesic path of a tree (two sweeps)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import shortest_path

    g = coo_matrix((w, (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    d0 = shortest_path(g, directed=False, indices=0)
    d0[~np.isfinite(d0)] = -1
    a = int(np.argmax(d0))
    da = shortest_path(g, directed=False, indices=a)
    da[~np.isfinite(da)] = -1
    b = int(np.argmax(da))
    return a, b, float(da[b])


def skeleton_measurements(
    labels: ArrayLike,
    *,
    voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
    scale: float = 1.5,
    const: float = 3.0,
    min_size: int = 10,
) -> pd.DataFrame:
    """Skeletonise every instance and measure it.

    Parameters
    ----------
    labels : array-like of int, (Z, Y, X)
        Instance labels, 0 background.
    voxel_size : sequence of 3 float
        Voxel size (z, y, x); lengths, diameters and volumes come out in its unit (voxels by
        default, µm when given in µm).
    scale, const : float
        TEASAR invalidation ball: ``scale * radius + const`` (const in ``voxel_size`` units).
    min_size : int
        Instances smaller than this many voxels get no skeleton (NaN length).

    Returns
    -------
    DataFrame
        One row per label: ``label, voxels, volume, length, branch_points, branches,
        mean_diameter, tortuosity``.
    """
    import kimimaro

    lab = np.asarray(labels)
    if lab.ndim != 3 or not np.issubdtype(lab.dtype, np.integer):
        raise InputError(f"labels must be an integer (Z, Y, X) volume, got {lab.shape} {lab.dtype}")
    vs = np.asarray(voxel_size, dtype=np.float64)
    if vs.shape != (3,) or (vs <= 0).any():
        raise InputError("voxel_size needs three positive values (z, y, x)")
    ids, counts = np.unique(lab, return_counts=True)
    keep = ids > 0
    ids, counts = ids[keep], counts[keep]
    skels: dict[int, Any] = {}
    if ids.size:
        skels = kimimaro.skeletonize(
            np.ascontiguousarray(lab.astype(np.uint32)),
            teasar_params={"scale": scale, "const": const},
            anisotropy=tuple(vs),
            dust_threshold=min_size,
            fix_branching=True,
            progress=False,
            parallel=1,
        )
    upper = (np.asarray(lab.shape) - 1) * vs
    rows = []
    for label, n_vox in zip(ids, counts, strict=True):
        row: dict[str, float] = {
            "label": int(label),
            "voxels": int(n_vox),
            "volume": float(n_vox * vs.prod()),
            "length": np.nan,
            "branch_points": 0,
            "branches": 0,
            "mean_diameter": np.nan,
            "tortuosity": np.nan,
        }
        sk = skels.get(int(label))
        if sk is not None and len(sk.edges):
            # spurs shorter than a few radii are surface noise, not branches
            tick = 3 * float(sk.radius.max())
            sk = kimimaro.postprocess(sk, dust_threshold=0, tick_threshold=tick)
            v = np.asarray(sk.vertices, dtype=np.float64)
            e = np.asarray(sk.edges, dtype=np.int64)
            deg = np.bincount(e.ravel(), minlength=len(v))
            pieces = _pieces(len(v), e)
            length = 0.0
            for p in pieces:
                length += _smoothed_length(v[p])
                r = float(np.median(sk.radius[p]))
                for end in (p[0], p[-1]):
                    at_edge = np.any(v[end] <= vs) or np.any(v[end] >= upper - vs)
                    if deg[end] == 1 and not at_edge:
                        length -= r
            length = max(length, 0.0)
            w = np.linalg.norm(v[e[:, 0]] - v[e[:, 1]], axis=1)
            a, b, path = _longest_path(len(v), e, w)
            chord = float(np.linalg.norm(v[a] - v[b]))
            row.update(
                length=length,
                branch_points=int((deg >= 3).sum()),
                branches=len(pieces),
                mean_diameter=2 * np.sqrt(row["volume"] / (np.pi * length)) if length else np.nan,
                tortuosity=path / chord if chord > 0 else np.nan,
            )
        rows.append(row)
    return pd.DataFrame(
        rows,
        columns=[
            "label",
            "voxels",
            "volume",
            "length",
            "branch_points",
            "branches",
            "mean_diameter",
            "tortuosity",
        ],
    )
