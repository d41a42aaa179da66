"""Predict classes with blended sliding windows, then instances via the border class."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from torch import nn

from cascope.errors import InputError
from cascope.segment.semantic import relabel_min_size, semantic_to_instances

log = logging.getLogger(__name__)


def predict_probabilities(
    model: nn.Module,
    volume: ArrayLike,
    *,
    tile: tuple[int, int, int] = (16, 64, 64),
    overlap: float = 0.25,
    batch_size: int = 2,
    device: str = "auto",
    tta: bool = False,
) -> NDArray[np.float32]:
    """Class probabilities ``(K, Z, Y, X)`` of a volume, tile by tile with Gaussian blending.

    The volume is normalised by its own 1st/99.8th percentiles (as in training); each tile's
    softmax probabilities are blended, so tile borders leave no seams.

    Parameters
    ----------
    model : Module
        A 3-class segmenter.
    volume : array-like, (Z, Y, X)
        The raw volume.
    tile : tuple of int
        Tile size (clipped to the volume).
    overlap : float
        Overlap between tiles as a fraction of the tile.
    batch_size : int
        Tiles per forward pass.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    tta : bool
        Test-time augmentation: average the probabilities over the four flips of Y and X
        (:func:`cascope.tiling.averaged_over_flips`; four times the cost).

    Returns
    -------
    ndarray of float32
        Probabilities summing to 1 over the first axis.
    """
    from scipy.special import softmax

    from cascope.segment.train import normalize_volume
    from cascope.tiling import averaged_over_flips, predict_tiled, torch_predictor

    arr = np.asarray(volume)
    if arr.ndim != 3:
        raise InputError(f"expected a (Z, Y, X) volume, got shape {arr.shape}")
    x, _ = normalize_volume(arr)
    net = torch_predictor(model, device=device)

    def predict(batch: NDArray[np.float32]) -> NDArray[np.float32]:
        return np.asarray(softmax(net(batch), axis=1), dtype=np.float32)

    run = averaged_over_flips(predict, (3, 4)) if tta else predict
    probs = predict_tiled(
        run, x[None], tile=tile, overlap=overlap, batch_size=batch_size, channel=True
    )
    return probs


Decoder = Literal["border", "border6", "cores", "components"]
#: The ways from a class map to instances that :func:`decode_instances` knows.
DECODERS: tuple[Decoder, ...] = ("border", "border6", "cores", "components")


def _class_map(semantic: ArrayLike) -> NDArray[Any]:
    """Return the class map as an array; refuse (InputError) any but a (Z, Y, X) one."""
    sem = np.asarray(semantic)
    if sem.ndim != 3:
        raise InputError(f"expected a (Z, Y, X) class map, got shape {sem.shape}")
    return sem


def decode_instances(
    semantic: ArrayLike,
    probabilities: ArrayLike | None = None,
    *,
    method: Decoder = "border",
    min_size: int = 100,
    border: int = 1,
    planes: str = "yz",
) -> NDArray[np.int32]:
    """Instances from a predicted class map.

    Parameters
    ----------
    semantic : array-like of int, (Z, Y, X)
        Classes 0 background, 1 axon, 2 border.
    probabilities : array-like, (3, Z, Y, X), optional
        The class probabilities (``"cores"`` floods by the foreground probability when given).
    method : {"border", "border6", "cores", "components"}
        ``"border"``: :func:`~cascope.segment.semantic_to_instances` (contact evidence, 18-
        connected); ``"border6"``: the same, 6-connected (diagonal contacts stay apart);
        ``"cores"``: 6-connected axon-class cores grown through the foreground by a watershed,
        coreless foreground pieces kept; ``"components"``: 26-connected foreground pieces (the
        border class ignored).
    min_size : int
        Smallest instance kept, in voxels.
    border, planes
        The border rule the map was made with (for ``"border"`` and ``"border6"``).

    Returns
    -------
    ndarray of int32
        Instance labels 1..N.
    """
    import cc3d

    sem = _class_map(semantic)
    fg = sem > 0
    if method in ("border", "border6"):
        return semantic_to_instances(
            sem,
            min_size=min_size,
            connectivity=18 if method == "border" else 6,
            border=border,
            planes=planes,  # type: ignore[arg-type]
        )
    if method == "components":
        lab = cc3d.connected_components(np.ascontiguousarray(fg), connectivity=26)
        return relabel_min_size(lab, min_size=min_size)
    if method != "cores":
        raise InputError(f"unknown decoder {method!r}; choose one of {', '.join(DECODERS)}")
    from skimage.segmentation import watershed

    core = cc3d.connected_components(np.ascontiguousarray(sem == 1), connectivity=6)
    if probabilities is not None:
        relief = np.asarray(probabilities, dtype=np.float32)[0]  # background probability
    else:
        relief = (sem != 1).astype(np.float32)
    grown = np.asarray(watershed(relief, markers=core.astype(np.int32), mask=fg), np.int32)
    left = fg & (grown == 0)
    if left.any():
        pieces = cc3d.connected_components(np.ascontiguousarray(left), connectivity=26)
        grown[left] = pieces[left].astype(np.int32) + grown.max()
    return relabel_min_size(grown, min_size=min_size)


def _owned(tiles: list[tuple[slice, ...]], shape: tuple[int, ...]) -> list[tuple[slice, ...]]:
    """Give each tile the core it owns: overlaps split at their middle (the ownership rule)."""
    cuts = []
    for ax, size in enumerate(shape):
        starts = sorted({(t[ax].start, t[ax].stop) for t in tiles})
        edges = {}
        for i, (a, b) in enumerate(starts):
            lo = 0 if i == 0 else (a + starts[i - 1][1]) // 2
            hi = size if i == len(starts) - 1 else (b + starts[i + 1][0]) // 2
            edges[(a, b)] = slice(lo, hi)
        cuts.append(edges)
    return [tuple(cuts[ax][(t[ax].start, t[ax].stop)] for ax in range(len(shape))) for t in tiles]


def decode_in_blocks(
    semantic: ArrayLike,
    probabilities: ArrayLike | None = None,
    *,
    block: tuple[int, int, int] = (64, 256, 256),
    overlap: tuple[int, int, int] = (4, 16, 16),
    method: Decoder = "border",
    min_size: int = 100,
    **options: Any,
) -> NDArray[np.int32]:
    """Decode instances block by block and merge the objects that cross block borders.

    Every block (:func:`cascope.tiling.cover`, overlapping by ``overlap``) is decoded alone by
    :func:`decode_instances`. Each voxel is reported by the one block whose core holds it (the
    cores split every overlap at its middle), and two reported objects are merged when any block
    that sees both sides of their common border decodes the two neighbouring voxels as one
    object. A block therefore never cuts an instance at its edge.

    Parameters
    ----------
    semantic : array-like of int, (Z, Y, X)
        Classes 0/1/2.
    probabilities : array-like, (3, Z, Y, X), optional
        Class probabilities (see :func:`decode_instances`).
    block, overlap : tuple of int
        Block size and minimum overlap per axis, in voxels.
    method : str
        The decoder (see :func:`decode_instances`).
    min_size : int
        Smallest instance kept after merging, in voxels.
    **options
        Other :func:`decode_instances` options.

    Returns
    -------
    ndarray of int32
        Instance labels 1..N.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as graph_components

    from cascope.tiling import cover

    sem = _class_map(semantic)
    prob = None if probabilities is None else np.asarray(probabilities)
    tiles = cover(sem.shape, block, overlap)
    out = np.zeros(sem.shape, np.int64)
    local: list[NDArray[np.int32]] = []
    firsts: list[int] = []
    next_id = 0
    for t, own in zip(tiles, _owned(tiles, sem.shape), strict=True):
        p = None if prob is None else prob[(slice(None), *t)]
        lab = decode_instances(sem[t], p, method=method, min_size=0, **options)
        local.append(lab)
        firsts.append(next_id + 1)
        inner = tuple(
            slice(o.start - s.start, o.stop - s.start) for o, s in zip(own, t, strict=True)
        )
        piece = lab[inner].astype(np.int64)
        out[own] = np.where(piece > 0, piece + next_id, 0)
        next_id += int(lab.max())
    owner_of = np.zeros(next_id + 1, np.int64)  # the block that reports each object
    for k, first in enumerate(firsts):
        owner_of[first:] = k
    pairs = []
    for k, (t, lab) in enumerate(zip(tiles, local, strict=True)):
        glob = out[t]
        for ax in range(3):
            a = [slice(None)] * 3
            b = [slice(None)] * 3
            a[ax], b[ax] = slice(None, -1), slice(1, None)
            la, lb = lab[tuple(a)], lab[tuple(b)]
            ga, gb = glob[tuple(a)], glob[tuple(b)]
            same = (la == lb) & (la > 0) & (ga != gb) & (ga > 0) & (gb > 0)
            if same.any():
                found = np.unique(np.stack([ga[same], gb[same]], axis=1), axis=0)
                pairs.append(np.column_stack([found, np.full(len(found), k)]))
    if pairs:
        # a merge needs the blocks that report both objects to agree: each owner must see the
        # two neighbouring voxels as one object (a block with less context cannot merge alone)
        seen = np.unique(np.concatenate(pairs), axis=0)
        by_pair: dict[tuple[int, int], set[int]] = {}
        for a, b, k in seen.tolist():
            by_pair.setdefault((min(a, b), max(a, b)), set()).add(k)
        keep = [
            (a, b) for (a, b), ks in by_pair.items() if {int(owner_of[a]), int(owner_of[b])} <= ks
        ]
        edges = np.asarray(keep, dtype=np.int64).reshape(-1, 2)
        n = next_id + 1
        graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
        _, group = graph_components(graph, directed=False)
        out = np.where(out > 0, group[out] + 1, 0)
    log.info("decoded %d blocks, %d merges across block borders", len(tiles), sum(map(len, pairs)))
    return relabel_min_size(out, min_size=min_size)


def predict_semantic(model: nn.Module, volume: ArrayLike, **options: Any) -> NDArray[np.uint8]:
    """Most probable class of every voxel (see :func:`predict_probabilities` for options)."""
    return np.argmax(predict_probabilities(model, volume, **options), axis=0).astype(np.uint8)


def segment_volume(
    model: nn.Module | str | Path,
    volume: ArrayLike,
    *,
    min_size: int | None = None,
    device: str = "auto",
    block: tuple[int, int, int] = (64, 256, 256),
    **options: Any,
) -> tuple[NDArray[np.int32], NDArray[np.uint8]]:
    """Segment a volume into instances with a trained 3-class model.

    Parameters
    ----------
    model : Module or path
        The network, or a model folder written by :func:`~cascope.segment.train_segmenter`.
    volume : array-like, (Z, Y, X)
        The raw volume.
    min_size : int, optional
        Smallest instance kept (default: the model's training config, else 100).
    device : str
        Where to compute.
    block : tuple of int
        Classes are turned into instances block by block (:func:`decode_in_blocks`).
    **options
        Tiling options of :func:`predict_probabilities`.

    Returns
    -------
    instances : ndarray of int32
        Instance labels.
    semantic : ndarray of uint8
        The predicted classes.
    """
    cfg: dict[str, Any] = {}
    if isinstance(model, str | Path):
        from cascope.models import load_model

        folder = Path(model)
        model, cfg = load_model(folder, device="cpu")
        if cfg.get("task") != "segmentation":
            raise InputError("the model folder does not hold a segmentation model", folder)
        options.setdefault("tile", tuple(cfg.get("patch", (16, 64, 64))))
    trained = cfg.get("segmenter", {})
    if min_size is None:
        min_size = int(trained.get("min_size", 100))
    # the border the model was trained to predict tells contacts from rings
    semantic_rule = trained.get("semantic", {})
    sem = predict_semantic(model, volume, device=device, **options)
    # decoded block by block (bounded memory); objects crossing a block border are merged
    inst = decode_in_blocks(
        sem,
        method="border",
        block=block,
        min_size=min_size,
        border=int(semantic_rule.get("border", 1)),
        planes=semantic_rule.get("planes", "yz"),
    )
    log.info("segmented %d instances", int(inst.max()))
    return inst, sem
