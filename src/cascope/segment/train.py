"""Train a 3-class (background / axon / border) segmentation network with the shared trainer.

Patches are drawn by :class:`cascope.training.PatchSampler` (a share of them centred on
foreground voxels), augmented with TorchIO (gamma, flips, affine, elastic, noise, bias field;
spatial transforms resample the labels with nearest neighbour so classes stay classes) and
scored by Dice + focal loss with class weights.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike, NDArray
from torch import nn

from cascope.config.segment import AugmentConfig, SegmenterConfig
from cascope.errors import InputError
from cascope.segment.semantic import instances_to_semantic, semantic_to_instances
from cascope.training import Loss, Pairing, PatchSampler, TrainResult
from cascope.training.driver import ModelBundle, train_model

log = logging.getLogger(__name__)

LabelKind = Literal["auto", "semantic", "instance"]
NORM_LOW, NORM_HIGH = 1.0, 99.8


def dice_focal_loss(
    class_weights: Sequence[float], *, gamma: float = 2.0, dice_weight: float = 1.0
) -> Loss:
    """Weighted soft Dice + focal loss on logits ``(B, K, ...)`` against class indices.

    Parameters
    ----------
    class_weights : sequence of float
        One weight per class, used by both terms.
    gamma : float
        Focal exponent (0 gives weighted cross-entropy).
    dice_weight : float
        Weight of the Dice term.

    Returns
    -------
    callable
        ``loss(logits, target, mask=None)``; ``target`` holds class indices ``(B, 1, ...)``
        (any dtype); ``mask`` selects voxels.
    """
    w = torch.as_tensor(list(class_weights), dtype=torch.float32)

    def loss(
        logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        k = logits.shape[1]
        weights = w.to(logits.device)
        tgt = target[:, 0].round().long().clamp(0, k - 1)
        m = torch.ones_like(tgt, dtype=logits.dtype) if mask is None else mask[:, 0].float()
        logp = F.log_softmax(logits.float(), dim=1)
        logpt = logp.gather(1, tgt[:, None])[:, 0]
        focal = -weights[tgt] * (1 - logpt.exp()) ** gamma * logpt
        focal_term = (focal * m).sum() / m.sum().clamp_min(1.0)
        p = logp.exp()
        onehot = F.one_hot(tgt, k).movedim(-1, 1).float()
        dims = (0, *range(2, logits.ndim))
        mm = m[:, None]
        inter = (p * onehot * mm).sum(dims)
        denom = ((p + onehot) * mm).sum(dims)
        dice = (2 * inter + 1.0) / (denom + 1.0)
        dice_term = ((1 - dice) * weights).sum() / weights.sum()
        return focal_term + dice_weight * dice_term

    return loss


def _resolve_kind(arr: NDArray[Any], kind: LabelKind) -> LabelKind:
    """``"semantic"`` or ``"instance"``: labels all in {0, 1, 2} are classes unless told."""
    if kind != "auto":
        return kind
    kind = "semantic" if arr.size and arr.min() >= 0 and arr.max() <= 2 else "instance"
    log.info("labels taken as %s", kind)
    return kind


def as_semantic(
    labels: ArrayLike, *, kind: LabelKind = "auto", border: int = 1, planes: str = "yz"
) -> NDArray[np.uint8]:
    """Training classes from a label image that holds either classes or instances.

    With ``kind="auto"`` labels whose values all lie in {0, 1, 2} are taken as classes
    (0 background, 1 axon, 2 border) and anything else as instance labels, which are converted by
    :func:`~cascope.segment.instances_to_semantic`. An instance image with at most two objects
    is ambiguous: pass ``kind="instance"`` for it.

    Parameters
    ----------
    labels : array-like of int
        Classes or instances.
    kind : {"auto", "semantic", "instance"}
        What the labels are.
    border, planes
        Conversion options for instance labels.

    Returns
    -------
    ndarray of uint8
        Classes 0/1/2.
    """
    arr = np.asarray(labels)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"labels must be integers, got dtype {arr.dtype}")
    kind = _resolve_kind(arr, kind)
    if kind == "semantic":
        if arr.size and (arr.min() < 0 or arr.max() > 2):
            raise InputError("semantic labels must be 0, 1 or 2")
        return arr.astype(np.uint8)
    return instances_to_semantic(arr, border=border, planes=planes)  # type: ignore[arg-type]


def gap_weights(instances: ArrayLike, *, weight: float, sigma: float = 3.0) -> NDArray[np.uint8]:
    """Loss weights that stress the background between neighbouring instances.

    The weight map of the U-Net paper: 1 everywhere, plus
    ``weight * exp(-(d1 + d2)**2 / (2 * sigma**2))`` on background voxels, where ``d1`` and
    ``d2`` are the distances (voxels) to the nearest and the second-nearest instance. A narrow gap
    between two axons weighs up to ``1 + weight``; background near a lone axon stays near 1.
    The weights are rounded to integers: they travel with the labels through the augmentation.

    Parameters
    ----------
    instances : array-like of int
        Instance labels, 0 background.
    weight : float
        The extra weight at a gap of zero width (``w0``).
    sigma : float
        Width of the gap term, in voxels.

    Returns
    -------
    ndarray of uint8
        Weights ``>= 1``, the shape of ``instances``.
    """
    from scipy import ndimage as ndi

    lab = np.asarray(instances)
    if weight < 0 or weight > 254:
        raise InputError(f"gap weight must lie in [0, 254], got {weight}")
    out = np.ones(lab.shape, np.uint8)
    if weight == 0 or lab.max() <= 0:
        return out
    reach = int(np.ceil(3 * sigma)) + 1  # beyond this the term rounds to nothing
    d1 = np.full(lab.shape, np.inf, np.float32)
    d2 = np.full(lab.shape, np.inf, np.float32)
    for i, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None:
            continue
        box = tuple(
            slice(max(s.start - reach, 0), min(s.stop + reach, n))
            for s, n in zip(sl, lab.shape, strict=True)
        )
        d = ndi.distance_transform_edt(lab[box] != i).astype(np.float32)
        a, b = d1[box], d2[box]
        d2[box] = np.minimum(b, np.maximum(a, d))
        d1[box] = np.minimum(a, d)
    extra = weight * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2))
    out += np.where(lab == 0, np.rint(extra), 0).astype(np.uint8)
    return out


def build_segmenter(cfg: SegmenterConfig, *, in_channels: int = 1) -> nn.Module:
    """Build the network a config names, with three output classes."""
    from cascope.models import UNet, VGGUNet

    if cfg.arch == "vgg16-unet":
        return VGGUNet(in_channels, 3, ndim=3, width=cfg.width, blocks=cfg.blocks)
    return UNet(in_channels, 3, ndim=3, depth=cfg.depth, base=cfg.base, norm="batch")


def _augmenter(cfg: AugmentConfig) -> Any:
    import torchio as tio

    return tio.Compose(
        [
            tio.RandomFlip(axes=(0, 1, 2), p=cfg.flip),
            # rotation about Z only: confocal voxels are longer in Z than in the plane
            tio.RandomAffine(scales=0.1, degrees=(180, 0, 0), p=cfg.affine),
            tio.RandomElasticDeformation(num_control_points=5, max_displacement=2, p=cfg.elastic),
            tio.RandomGamma(log_gamma=0.3, p=cfg.gamma),
            tio.RandomNoise(std=(0, 0.1), p=cfg.noise),
            tio.RandomBiasField(coefficients=0.3, order=2, p=cfg.bias_field),
        ]
    )


def segmentation_pairing(augment: AugmentConfig | None = None) -> Pairing:
    """Pair an image crop with its class crop, augmented by TorchIO when enabled.

    A third crop, when the items hold one, is the loss mask (1 where the loss counts); spatial
    transforms move it with the labels. TorchIO draws from torch's global generator, which the
    trainer seeds and checkpoints, so augmented runs stay reproducible and resumable.
    """
    transform = _augmenter(augment) if augment is not None and augment.enabled else None

    def pair(
        crops: list[NDArray[Any]], rng: np.random.Generator
    ) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any] | None]:
        image, classes = crops[0], crops[1]
        mask = crops[2] if len(crops) > 2 else None
        if transform is None:
            return image, classes, mask
        import torchio as tio

        img = image if image.ndim == 4 else image[None]
        maps = {"label": classes} if mask is None else {"label": classes, "mask": mask}
        subject = tio.Subject(
            image=tio.ScalarImage(tensor=torch.from_numpy(np.ascontiguousarray(img))),
            **{
                k: tio.LabelMap(tensor=torch.from_numpy(v[None].astype(np.int64)))
                for k, v in maps.items()
            },
        )
        out = transform(subject)
        x = out["image"].data.numpy().astype(np.float32)
        y = out["label"].data.numpy()[0].astype(np.float32)
        m = None if mask is None else out["mask"].data.numpy()[0].astype(np.float32)
        return (x if image.ndim == 4 else x[0]), y, m

    return pair


def normalize_volume(volume: ArrayLike) -> tuple[NDArray[np.float32], dict[str, float]]:
    """Map the 1st percentile to 0 and the 99.8th to 1 (per volume, as at prediction).

    A volume holding NaN or infinite values is refused (:class:`~cascope.errors.InputError`
    naming the planes): its percentiles, and so every voxel, would be NaN.
    """
    from cascope.io import check_finite
    from cascope.preprocess import percentile_normalization

    arr = np.asarray(volume)
    check_finite(arr, axis="Z")
    norm = percentile_normalization(arr, low=NORM_LOW, high=NORM_HIGH)
    return norm.apply(arr), {"offset": norm.offset, "scale": norm.scale}


def foreground_centres(
    classes: NDArray[Any], *, max_points: int = 50_000, seed: int = 0
) -> NDArray[np.int64]:
    """Coordinates of (at most ``max_points``) foreground voxels, for positive sampling."""
    pts = np.argwhere(classes > 0)
    if len(pts) > max_points:
        pts = pts[np.random.default_rng(seed).choice(len(pts), max_points, replace=False)]
    return pts.astype(np.int64)


def field_centres(
    classes: NDArray[Any],
    field: NDArray[np.bool_],
    *,
    foreground_fraction: float,
    max_points: int = 50_000,
    seed: int = 0,
) -> NDArray[np.int64]:
    """Patch centres inside the imaged field, ``foreground_fraction`` of them on foreground.

    Drawn from with certainty (a sampler's ``center_fraction`` of 1), they keep every patch
    centre off the zero padding while foreground keeps its share of the patches.
    """
    fg = foreground_centres(classes, max_points=max_points, seed=seed)
    rng = np.random.default_rng(seed + 1)
    rest = np.flatnonzero(field & (classes == 0))
    if len(fg) == 0 or foreground_fraction <= 0:
        n_rest, fg = max_points, fg[:0]
    elif foreground_fraction >= 1 or len(rest) == 0:
        return fg
    else:
        n_rest = round(len(fg) * (1 - foreground_fraction) / foreground_fraction)
    pick = rest[rng.choice(len(rest), min(n_rest, len(rest)), replace=False)]
    others = np.stack(np.unravel_index(pick, classes.shape), axis=1)
    return np.concatenate([fg, others]).astype(np.int64)


class Segmenter(ModelBundle):
    """A trained 3-class segmenter: network, config, percentile normalisation, provenance.

    :func:`train_segmenter` returns its network and history (the form the prediction
    functions take); its model folder keeps the segmentation layout of ``model.yaml``.
    """

    task: ClassVar[str] = "segmentation"
    config: SegmenterConfig

    def document(self) -> dict[str, Any]:
        """Return the ``model.yaml`` sections: classes, normalisation, patch, config, training."""
        from cascope.models import count_parameters

        h = self.history or TrainResult()
        return {
            "task": self.task,
            "classes": ["background", "axon", "border"],
            "normalization": self.normalization,
            "patch": list(self.config.patch),
            "segmenter": self.config.model_dump(mode="json"),
            "training": {
                "steps": h.steps_done,
                "seconds": h.seconds,
                "final_loss": h.losses[-1] if h.losses else None,
                "parameters": count_parameters(self.model),
                "volume_normalizations": self.provenance.get("volume_normalizations", []),
            },
        }


def train_segmenter(
    images: Sequence[ArrayLike],
    labels: Sequence[ArrayLike],
    *,
    config: SegmenterConfig | None = None,
    label_kind: LabelKind = "auto",
    output: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = False,
    device: str = "auto",
    force: bool = False,
) -> tuple[nn.Module, TrainResult]:
    """Train a 3-class segmenter on volumes and their labels.

    Parameters
    ----------
    images : sequence of array-like, each (Z, Y, X)
        Raw (or preprocessed) volumes; each is normalised by its own percentiles.
    labels : sequence of array-like of int
        Classes 0/1/2 or instance labels per volume (see :func:`as_semantic`).
    config : SegmenterConfig, optional
        Architecture, loss, sampling, augmentation and training options.
    label_kind : {"auto", "semantic", "instance"}
        What ``labels`` hold.
    output : str or Path, optional
        Model folder to write (weights + ``model.yaml`` with the normalisation and config).
    checkpoint_dir : str or Path, optional
        Folder for resumable checkpoints (default: ``<output>.ckpt`` when ``output`` is given).
    resume : bool
        Continue from the last checkpoint.
    progress : bool
        Show a progress bar.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    force : bool
        Replace an existing model folder.

    Returns
    -------
    model : Module
        The trained network (evaluation mode).
    result : TrainResult
        Losses and timing.
    """
    cfg = config or SegmenterConfig.model_validate({})
    if len(images) != len(labels) or not images:
        raise InputError(f"give one label volume per image ({len(images)} vs {len(labels)})")
    items: list[tuple[NDArray[Any], ...]] = []
    centres, norms = [], []
    for k, (img, lab) in enumerate(zip(images, labels, strict=True)):
        arr = np.asarray(img)
        if arr.ndim != 3:
            raise InputError(f"image {k} must be a (Z, Y, X) volume, got shape {arr.shape}")
        lab_arr = np.asarray(lab)
        kind = _resolve_kind(lab_arr, label_kind)
        sem = as_semantic(
            lab_arr, kind=kind, border=cfg.semantic.border, planes=cfg.semantic.planes
        )
        if sem.shape != arr.shape:
            raise InputError(f"labels {k} have shape {sem.shape}, image {arr.shape}")
        x, norm = normalize_volume(arr)
        weights = None
        if cfg.gap_weight > 0:
            inst = lab_arr if kind == "instance" else semantic_to_instances(sem)
            weights = gap_weights(inst, weight=cfg.gap_weight, sigma=cfg.gap_sigma)
        if cfg.exclude_padding:
            from cascope.segment.preprocess import imaged_field

            field = np.broadcast_to(imaged_field(arr), arr.shape)
            mask = field.astype(np.uint8) if weights is None else weights * field
            items.append((x, sem, mask))
            centres.append(
                field_centres(sem, field, foreground_fraction=cfg.foreground_fraction, seed=k)
            )
        else:
            items.append((x, sem) if weights is None else (x, sem, weights))
            centres.append(foreground_centres(sem, seed=k))
        norms.append(norm)
    sampler = PatchSampler(
        items,
        cfg.patch,
        pairing=segmentation_pairing(cfg.augment),
        centers=centres,
        center_fraction=1.0 if cfg.exclude_padding else cfg.foreground_fraction,
        seed=cfg.training.seed,
    )
    loss = dice_focal_loss(cfg.class_weights, gamma=cfg.focal_gamma, dice_weight=cfg.dice_weight)
    segmenter = train_model(
        lambda: build_segmenter(cfg),
        sampler,
        loss,
        training=cfg.training,
        bundle=Segmenter,
        output=output,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        progress=progress,
        device=device,
        config=cfg,
        normalization={"method": "percentile", "low": NORM_LOW, "high": NORM_HIGH},
    )
    segmenter.provenance["volume_normalizations"] = norms
    if output is not None:
        segmenter.save(output, force=force)
    assert segmenter.history is not None
    return segmenter.model, segmenter.history
