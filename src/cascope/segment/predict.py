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

    sem = np.asarray(semantic)
    if sem.ndim != 3:
        raise InputError(f"expected a (Z, Y, X) class map, got shape {sem.shape}")
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


def predict_semantic(model: nn.Module, volume: ArrayLike, **options: Any) -> NDArray[np.uint8]:
    """Most probable class of every voxel (see :func:`predict_probabilities` for options)."""
    return np.argmax(predict_probabilities(model, volume, **options), axis=0).astype(np.uint8)


def segment_volume(
    model: nn.Module | str | Path,
    volume: ArrayLike,
    *,
    min_size: int | None = None,
    device: str = "auto",
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
    inst = semantic_to_instances(
        sem,
        min_size=min_size,
        connectivity=18,
        border=int(semantic_rule.get("border", 1)),
        planes=semantic_rule.get("planes", "yz"),
    )
    log.info("segmented %d instances", int(inst.max()))
    return inst, sem
