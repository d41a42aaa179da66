"""Patch samplers: random windows of (lazy) arrays made into ``(input, target[, mask])`` batches.

A sampler is anything with ``sample(batch_size) -> Batch``, ``state_dict()`` and
``load_state_dict(state)`` (:class:`Sampler`). :class:`PatchSampler` covers most uses: each *item*
is a tuple of aligned arrays (a noisy movie; two noisy recordings; a low-/high-SNR pair; an image
and its labels); a window is cropped at the same place in every array of an item, augmented with
one element of the rotation/flip group, and handed to a *pairing* function that builds the
training sample. Pairings for supervised pairs, Noise2Noise, temporal interleaving (DeepCAD) and
blind-spot masking (Noise2Void) are provided here; others plug in the same way.

Randomness comes only from the sampler's own :class:`numpy.random.Generator`, whose state is part
of :meth:`PatchSampler.state_dict`, so a resumed training run draws the same patches.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import torch
from numpy.typing import NDArray

from cascope.training.augment import random_transform

Sample = tuple[NDArray[Any], NDArray[Any], "NDArray[Any] | None"]
#: ``pairing(crops, rng) -> (input, target, mask or None)``; arrays with or without a channel axis.
Pairing = Callable[[list[NDArray[Any]], np.random.Generator], Sample]


@dataclass
class Batch:
    """One training batch: tensors ``(B, C, *spatial)``; ``mask`` selects voxels for the loss."""

    input: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor | None = None

    def to(self, device: torch.device | str, *, non_blocking: bool = False) -> Batch:
        """Move all tensors to a device."""
        return Batch(
            self.input.to(device, non_blocking=non_blocking),
            self.target.to(device, non_blocking=non_blocking),
            None if self.mask is None else self.mask.to(device, non_blocking=non_blocking),
        )


class Sampler(Protocol):
    """What the trainer needs from a source of batches."""

    def sample(self, batch_size: int) -> Batch:
        """Draw the next batch."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the same sequence of batches (plain data only)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
        ...


def rng_state_json(rng: np.random.Generator) -> str:
    """Serialise a generator's state as JSON (checkpoints hold plain data only)."""
    return json.dumps(rng.bit_generator.state)


def rng_from_json(rng: np.random.Generator, state: str) -> None:
    """Restore a generator's state from :func:`rng_state_json`."""
    rng.bit_generator.state = json.loads(state)


class PatchSampler:
    """Random aligned windows from items of arrays, augmented, then paired.

    Parameters
    ----------
    items : sequence of sequence of array-like
        Each item is a tuple of aligned arrays (NumPy, memmap, zarr, ``Movie``); the window applies
        to their last ``len(window)`` axes, any leading axes (channels) are taken whole.
    window : tuple of int
        Size of the cropped window, e.g. ``(T, Y, X)``; clipped to the smallest region.
    pairing : callable
        ``pairing(crops, rng) -> (input, target, mask)``; see the ``*_pairing`` factories.
    augment : {"none", "image", "stack"}
        ``"image"``: the 8 dihedral transforms of (Y, X); ``"stack"``: those times a flip of the
        third axis (16-fold).
    regions : sequence of tuple of slice, optional
        Per item, the part windows are drawn from (e.g. the first 90 % of frames for training,
        the rest for validation); axes not named are taken whole.
    squeeze : bool
        Drop window axes of size 1 after cropping (2D training on frames of a movie).
    normalize : sequence of (mean, std) or None, optional
        Per array position in an item, subtract ``mean`` and divide by ``std`` (``None`` leaves the
        array as is, e.g. labels).
    centers : sequence of ndarray, optional
        Per item, an ``(N, len(window))`` array of coordinates; with probability
        ``center_fraction`` a window is centred on a random one (positive sampling of rare events).
    center_fraction : float
        Probability of a centred window when ``centers`` are given.
    seed : int
        Seed of the sampler's generator.
    """

    def __init__(
        self,
        items: Sequence[Sequence[Any]],
        window: Sequence[int],
        *,
        pairing: Pairing,
        augment: Literal["none", "image", "stack"] = "none",
        regions: Sequence[tuple[slice, ...]] | None = None,
        squeeze: bool = False,
        normalize: Sequence[tuple[float, float] | None] | None = None,
        centers: Sequence[NDArray[Any]] | None = None,
        center_fraction: float = 0.0,
        seed: int = 0,
    ) -> None:
        if not items:
            raise ValueError("a sampler needs at least one item")
        self.items = [tuple(item) for item in items]
        nd = len(window)
        shapes = []
        for k, item in enumerate(self.items):
            base = tuple(int(s) for s in item[0].shape[-nd:])
            for arr in item[1:]:
                if tuple(int(s) for s in arr.shape[-nd:]) != base:
                    raise ValueError(f"item {k}: arrays are not aligned ({arr.shape} vs {base})")
            shapes.append(base)
        if regions is None:
            self.regions = [tuple(slice(0, s) for s in shape) for shape in shapes]
        else:
            if len(regions) != len(self.items):
                raise ValueError("give one region per item")
            # a region may name only the first axes; the others are taken whole
            self.regions = [
                tuple(
                    slice(*sl.indices(s)[:2])
                    for sl, s in zip(
                        tuple(reg) + (slice(None),) * (nd - len(reg)), shape, strict=True
                    )
                )
                for reg, shape in zip(regions, shapes, strict=True)
            ]
        extents = np.array([[sl.stop - sl.start for sl in reg] for reg in self.regions])
        if (extents <= 0).any():
            raise ValueError("a sampling region is empty")
        self.window = tuple(int(min(w, extents[:, i].min())) for i, w in enumerate(window))
        weights = extents.prod(axis=1).astype(float)
        self._item_p = weights / weights.sum()
        self.pairing = pairing
        self.augment = augment
        self.squeeze = squeeze
        self.normalize = list(normalize) if normalize is not None else None
        self.centers = (
            [np.asarray(c, dtype=np.int64).reshape(-1, nd) for c in centers] if centers else None
        )
        self.center_fraction = float(center_fraction)
        self.rng = np.random.default_rng(seed)

    def _choose_window(self) -> tuple[int, tuple[slice, ...]]:
        """Pick an item and the window's position inside its region."""
        k = int(self.rng.choice(len(self.items), p=self._item_p))
        reg = self.regions[k]
        centred = (
            self.centers is not None
            and len(self.centers[k]) > 0
            and self.rng.random() < self.center_fraction
        )
        if centred:
            assert self.centers is not None
            c = self.centers[k][int(self.rng.integers(len(self.centers[k])))]
            starts = [
                int(np.clip(ci - w // 2, r.start, r.stop - w))
                for ci, w, r in zip(c, self.window, reg, strict=True)
            ]
        else:
            starts = [
                int(self.rng.integers(r.start, r.stop - w + 1))
                for w, r in zip(self.window, reg, strict=True)
            ]
        return k, tuple(slice(s, s + w) for s, w in zip(starts, self.window, strict=True))

    def _crops(self) -> list[NDArray[Any]]:
        k, win = self._choose_window()
        crops = []
        for pos, arr in enumerate(self.items[k]):
            c = np.asarray(arr[(Ellipsis, *win)], dtype=np.float32)
            if self.normalize is not None and self.normalize[pos] is not None:
                mean, std = self.normalize[pos]  # type: ignore[misc]
                c = (c - np.float32(mean)) / np.float32(std)
            if self.squeeze:
                axes = tuple(c.ndim - len(win) + i for i, w in enumerate(self.window) if w == 1)
                c = np.squeeze(c, axis=axes)
            crops.append(c)
        if self.augment != "none":
            spatial = [w for w in self.window if not (self.squeeze and w == 1)]
            crops = random_transform(
                crops,
                self.rng,
                stack=self.augment == "stack" and len(spatial) >= 3,
                square=spatial[-1] == spatial[-2],
            )
        return crops

    def sample(self, batch_size: int) -> Batch:
        """Draw ``batch_size`` windows and stack their samples into a :class:`Batch`."""
        n_spatial = len([w for w in self.window if not (self.squeeze and w == 1)])
        xs, ys, ms = [], [], []
        for _ in range(batch_size):
            x, y, m = self.pairing(self._crops(), self.rng)
            xs.append(_with_channel(x, n_spatial))
            ys.append(_with_channel(y, n_spatial))
            if m is not None:
                ms.append(_with_channel(m, n_spatial))
        mask = torch.from_numpy(np.stack(ms).astype(np.float32)) if ms else None
        return Batch(torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys)), mask)

    def state_dict(self) -> dict[str, Any]:
        """Return the generator state (as JSON text)."""
        return {"rng": rng_state_json(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved generator state."""
        rng_from_json(self.rng, state["rng"])


def _with_channel(a: NDArray[Any], n_spatial: int) -> NDArray[Any]:
    a = np.asarray(a)
    return np.ascontiguousarray(a[None] if a.ndim == n_spatial else a)


def supervised_pairing() -> Pairing:
    """Input = first array of the item, target = second (CARE, segmentation labels)."""

    def pair(crops: list[NDArray[Any]], rng: np.random.Generator) -> Sample:
        return crops[0], crops[1], None

    return pair


def noise2noise_pairing() -> Pairing:
    """Two independent noisy recordings; which one is the input is drawn at random."""

    def pair(crops: list[NDArray[Any]], rng: np.random.Generator) -> Sample:
        a, b = crops[0], crops[1]
        return (b, a, None) if rng.random() < 0.5 else (a, b, None)

    return pair


def temporal_interleave_pairing(*, axis: int = -3) -> Pairing:
    """DeepCAD-style temporal Noise2Noise: even frames predict the interleaved odd frames.

    The window along ``axis`` should be even (``2 * T``); input and target swap at random.
    """

    def pair(crops: list[NDArray[Any]], rng: np.random.Generator) -> Sample:
        c = crops[0]
        n = c.shape[axis] // 2 * 2
        even = np.take(c, np.arange(0, n, 2), axis=axis)
        odd = np.take(c, np.arange(1, n, 2), axis=axis)
        return (odd, even, None) if rng.random() < 0.5 else (even, odd, None)

    return pair


def blind_spot_pairing(*, fraction: float = 0.02, radius: int = 2) -> Pairing:
    """Noise2Void masking: replace a stratified set of pixels by a random neighbour.

    Parameters
    ----------
    fraction : float
        Fraction of voxels masked (one per grid cell of about ``1 / fraction`` voxels).
    radius : int
        Neighbours are drawn from the cube/square of this radius, never the voxel itself.

    Returns
    -------
    callable
        A pairing whose mask marks the replaced voxels; the target is the unmodified crop.
    """
    if not 0 < fraction < 1:
        raise ValueError("fraction must be in (0, 1)")

    def pair(crops: list[NDArray[Any]], rng: np.random.Generator) -> Sample:
        target = crops[0]
        shape = target.shape
        nd = len(shape)
        cell = max(1, round(fraction ** (-1.0 / nd)))
        grids = [np.arange(0, s, cell) for s in shape]
        mesh = np.stack(np.meshgrid(*grids, indexing="ij"), axis=-1).reshape(-1, nd)
        coords = mesh + rng.integers(0, cell, size=mesh.shape)
        coords = np.minimum(coords, np.array(shape) - 1)
        offsets = rng.integers(-radius, radius + 1, size=coords.shape)
        zero = ~offsets.any(axis=1)
        # a zero offset would leave the pixel visible: push it to a neighbour instead
        offsets[zero, -1] = rng.choice([-1, 1], size=int(zero.sum()))
        src = coords + offsets
        src = np.abs(src)
        src = np.where(src >= np.array(shape), 2 * (np.array(shape) - 1) - src, src)
        src = np.clip(src, 0, np.array(shape) - 1)
        inp = target.copy()
        inp[tuple(coords.T)] = target[tuple(src.T)]
        mask = np.zeros(shape, np.float32)
        mask[tuple(coords.T)] = 1.0
        return inp, target, mask

    return pair
