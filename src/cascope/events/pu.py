"""Positive-unlabeled training data and risk for event detection.

Expert labels of calcium events are incomplete: an unlabeled voxel may be an event nobody
annotated. :class:`PUSampler` draws positive crops around annotated events and unlabeled crops
at foreground pixels and uniform times (a chosen number per positive, or uniformly over the whole
movie); :func:`nnpu_loss` is the non-negative PU risk of Kiryo et al. (2017) at the voxel level,
so unlabeled voxels are not simply taken as negatives.

With ``L`` labelled event voxels and ``U`` unlabeled ones in a batch, of which an estimated
``n_up = prior * U`` are events, the risk of a voxel classifier ``f`` with loss ``l`` is::

    R = [ sum_L l(f, +) + n_up * mean_L l(f, +)
          + max(0, sum_U l(f, -) - n_up * mean_L l(f, -)) ] / N

(the hidden events among the unlabeled voxels are assumed to look like the labelled ones). When
the bracketed negative risk drops below ``-beta`` the step instead increases it (``-gamma`` times
it is minimised), as in Kiryo's algorithm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from cascope.training import Batch, Loss
from cascope.training.augment import random_transform
from cascope.training.samplers import rng_from_json, rng_state_json


def event_centres(labels: NDArray[Any]) -> NDArray[np.int64]:
    """Integer centre ``(t, y, x)`` of each labelled event's bounding box.

    Binary labels (only 0/1) are split into events by 26-connected components first.
    """
    from scipy import ndimage

    lab = np.asarray(labels)
    if lab.size and lab.max() <= 1:
        import cc3d

        lab = cc3d.connected_components(np.ascontiguousarray(lab > 0), connectivity=26)
    rows = [
        [(sl.start + sl.stop - 1) // 2 for sl in box]
        for box in ndimage.find_objects(lab)
        if box is not None
    ]
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


class PUSampler:
    """Crops ``(T, Y, X)`` of preprocessed movies with binary targets from partial labels.

    Parameters
    ----------
    items : sequence of (movie, labels, foreground)
        Preprocessed movie ``(T, Y, X)`` float32, its (partial) event labels ``(T, Y, X)`` (any
        integers, 0 = unlabeled) and a foreground mask ``(Y, X)``.
    window : tuple of int
        Crop size ``(T, Y, X)`` (clipped to the smallest movie).
    cache : tuple of int
        A positive crop lies at a uniformly random place inside this box centred on an event.
    unlabeled_ratio : float or "complete"
        Unlabeled crops per positive one; ``"complete"``: every crop is a uniform window.
    augment : bool
        Random rotation by 90° steps / flips in (Y, X) (time is never reversed).
    seed : int
        Seed of the sampler's generator.
    """

    def __init__(
        self,
        items: Sequence[tuple[Any, Any, Any]],
        *,
        window: Sequence[int] = (32, 32, 32),
        cache: Sequence[int] = (64, 64, 64),
        unlabeled_ratio: float | Literal["complete"] = 1.0,
        augment: bool = True,
        seed: int = 0,
    ) -> None:
        if not items:
            raise ValueError("a sampler needs at least one movie")
        self.items = [(m, lab, np.asarray(fg, bool)) for m, lab, fg in items]
        shapes = np.array([m.shape for m, _, _ in self.items])
        self.window = tuple(int(min(w, shapes[:, i].min())) for i, w in enumerate(window))
        self.cache = tuple(max(int(c), w) for c, w in zip(cache, self.window, strict=True))
        self.centres = [event_centres(np.asarray(lab)) for _, lab, _ in self.items]
        self.fg_pixels = [np.argwhere(fg) for _, _, fg in self.items]
        self.complete = unlabeled_ratio == "complete"
        ratio = 0.0 if self.complete else float(unlabeled_ratio)
        if ratio < 0:
            raise ValueError("unlabeled_ratio must be >= 0 or 'complete'")
        self.n_pos = np.array([len(c) for c in self.centres], dtype=float)
        self.p_positive = 0.0 if self.complete or self.n_pos.sum() == 0 else 1.0 / (1.0 + ratio)
        self.augment = augment
        self.rng = np.random.default_rng(seed)

    def _start(self, centre: Sequence[int], shape: Sequence[int], jitter: bool) -> list[int]:
        starts = []
        for c, w, cw, s in zip(centre, self.window, self.cache, shape, strict=True):
            lo = c - w // 2
            if jitter:
                half = (cw - w) // 2
                lo += int(self.rng.integers(-half, half + 1))
            starts.append(int(np.clip(lo, 0, s - w)))
        return starts

    def _crop(self) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        if self.rng.random() < self.p_positive:
            k = int(self.rng.choice(len(self.items), p=self.n_pos / self.n_pos.sum()))
            c = self.centres[k][int(self.rng.integers(len(self.centres[k])))]
            starts = self._start(c, self.items[k][0].shape, jitter=True)
        else:
            sizes = np.array(
                [
                    m.shape[0] * max(len(f), 1)
                    for (m, _, _), f in zip(self.items, self.fg_pixels, strict=True)
                ],
                dtype=float,
            )
            k = int(self.rng.choice(len(self.items), p=sizes / sizes.sum()))
            shape = self.items[k][0].shape
            if self.complete or len(self.fg_pixels[k]) == 0:
                starts = [
                    int(self.rng.integers(0, s - w + 1))
                    for s, w in zip(shape, self.window, strict=True)
                ]
            else:
                y, x = self.fg_pixels[k][int(self.rng.integers(len(self.fg_pixels[k])))]
                t = int(self.rng.integers(shape[0]))
                starts = self._start((t, y, x), shape, jitter=False)
        win = tuple(slice(s, s + w) for s, w in zip(starts, self.window, strict=True))
        movie, lab, _ = self.items[k]
        x_crop = np.asarray(movie[win], dtype=np.float32)
        y_crop = (np.asarray(lab[win]) > 0).astype(np.float32)
        if self.augment:
            x_crop, y_crop = random_transform(
                [x_crop, y_crop], self.rng, stack=False, square=self.window[1] == self.window[2]
            )
        return x_crop, y_crop

    def sample(self, batch_size: int) -> Batch:
        """Draw a batch: input ``(B, 1, T, Y, X)``, binary target of labelled event voxels."""
        xs, ys = zip(*(self._crop() for _ in range(batch_size)), strict=True)
        return Batch(
            torch.from_numpy(np.stack(xs)[:, None].copy()),
            torch.from_numpy(np.stack(ys)[:, None].copy()),
            None,
        )

    def state_dict(self) -> dict[str, Any]:
        """Return the generator state (JSON text)."""
        return {"rng": rng_state_json(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved generator state."""
        rng_from_json(self.rng, state["rng"])


def nnpu_loss(
    *,
    prior: float | None = None,
    label_coverage: float = 1.0,
    beta: float = 0.0,
    gamma: float = 1.0,
    pos_weight: float = 1.0,
) -> Loss:
    """Non-negative PU risk on voxel logits with the logistic loss (see the module notes).

    Parameters
    ----------
    prior : float, optional
        Fraction of unlabeled voxels that are events. Without it, each batch's estimate is
        ``L (1 - c) / (c U)`` with ``c = label_coverage``.
    label_coverage : float
        Fraction of events assumed labelled (1: the unlabeled voxels are negatives).
    beta, gamma : float
        Kiryo's slack and step size of the non-negative correction.
    pos_weight : float
        Weight of the positive terms (events are rare).

    Returns
    -------
    callable
        ``loss(logits, target, mask=None)`` with ``target`` 1 on labelled event voxels.
    """
    if not 0 < label_coverage <= 1:
        raise ValueError("label_coverage must lie in (0, 1]")

    def loss(
        logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        z = logits.float()
        valid = torch.ones_like(z) if mask is None else mask.float().expand_as(z)
        pos = (target > 0.5).float() * valid
        unl = valid - pos
        n = valid.sum().clamp_min(1.0)
        n_l, n_u = pos.sum(), unl.sum()
        l_pos = F.softplus(-z)  # loss of calling a voxel an event wrongly not: label +1
        l_neg = F.softplus(z)  # label -1
        neg_u = (l_neg * unl).sum()
        if n_l < 1:
            return neg_u / n
        n_up = prior * n_u if prior is not None else n_l * (1 - label_coverage) / label_coverage
        mean_lp = (l_pos * pos).sum() / n_l
        mean_ln = (l_neg * pos).sum() / n_l
        pos_risk = (l_pos * pos).sum() + n_up * mean_lp
        neg_risk = neg_u - n_up * mean_ln
        if neg_risk < -beta * n:
            return -gamma * neg_risk / n
        return (pos_weight * pos_risk + neg_risk) / n

    return loss


def bce_loss(*, pos_weight: float = 1.0) -> Loss:
    """Weighted binary cross-entropy with unlabeled voxels as negatives (PU by sampling only)."""

    def loss(
        logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        z = logits.float()
        t = (target > 0.5).float()
        err = pos_weight * t * F.softplus(-z) + (1 - t) * F.softplus(z)
        if mask is None:
            return err.mean()
        m = mask.float().expand_as(err)
        return (err * m).sum() / m.sum().clamp_min(1.0)

    return loss
