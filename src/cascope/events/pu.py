"""Positive-unlabeled training data and risk for event detection.

Expert labels of calcium events are incomplete: an unlabeled voxel may be an event nobody
annotated. :class:`PUSampler` draws positive crops around annotated events and unlabeled crops
at foreground pixels and uniform times (a chosen number per positive, or uniformly over the whole
movie); :func:`nnpu_loss` is the non-negative PU risk of Kiryo et al. (2017) at the voxel level,
so unlabeled voxels are not simply taken as negatives.

With ``L`` labelled event voxels and ``U`` unlabeled ones in a batch, of which ``n_up = prior * U``
are (hidden) events, the risk of a voxel classifier ``f`` with loss ``l`` is::

    R = [ sum_L l(f, +) + n_up * mean_L l(f, +)
          + max(0, sum_U l(f, -) - n_up * mean_L l(f, -)) ] / N

i.e. Kiryo's ``pi R_p^+ + max(0, R_u^- - pi R_p^-)`` for unlabeled data that also contains the
labelled events (the hidden events are assumed to look like the labelled ones). ``prior`` is the
*voxel* prior of events among the unlabeled voxels the sampler draws; it is tiny for mSCTs and
must not be estimated per batch, because positive crops are centred on labelled events and hold
far more labelled voxels than an unbiased draw (:meth:`PUSampler.class_prior` estimates it from
the labelled fraction). When the bracketed negative risk drops below ``-beta`` the step instead
increases it (``-gamma`` times it is minimised), as in Kiryo's algorithm.
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


def _instances(labels: NDArray[Any]) -> NDArray[Any]:
    """Instance ids of event labels; binary labels (only 0/1) become 26-connected components."""
    lab = np.asarray(labels)
    if lab.size and lab.max() <= 1:
        import cc3d

        lab = cc3d.connected_components(np.ascontiguousarray(lab > 0), connectivity=26)
    return lab


def _events(labels: NDArray[Any]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    from scipy import ndimage

    inst = _instances(labels)
    rows, ids = [], []
    for i, box in enumerate(ndimage.find_objects(inst), start=1):
        if box is not None:
            rows.append([(sl.start + sl.stop - 1) // 2 for sl in box])
            ids.append(i)
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3), np.asarray(ids, dtype=np.int64)


def event_centres(labels: NDArray[Any]) -> NDArray[np.int64]:
    """Integer centre ``(t, y, x)`` of each labelled event's bounding box.

    Binary labels (only 0/1) are split into events by 26-connected components first.
    """
    return _events(labels)[0]


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
        events = [_events(np.asarray(lab)) for _, lab, _ in self.items]
        self.centres = [c for c, _ in events]
        self.event_ids = [i for _, i in events]
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

    def _window(self, *, positive: bool) -> tuple[int, tuple[slice, ...], int]:
        # (movie, window, id of the event the window is centred on or 0)
        eid = 0
        if positive:
            k = int(self.rng.choice(len(self.items), p=self.n_pos / self.n_pos.sum()))
            j = int(self.rng.integers(len(self.centres[k])))
            eid = int(self.event_ids[k][j])
            starts = self._start(self.centres[k][j], self.items[k][0].shape, jitter=True)
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
        return k, tuple(slice(s, s + w) for s, w in zip(starts, self.window, strict=True)), eid

    def _crop(self, positive: bool) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        k, win, _ = self._window(positive=positive and self.p_positive > 0)
        movie, lab, _ = self.items[k]
        x_crop = np.asarray(movie[win], dtype=np.float32)
        y_crop = (np.asarray(lab[win]) > 0).astype(np.float32)
        if self.augment:
            x_crop, y_crop = random_transform(
                [x_crop, y_crop], self.rng, stack=False, square=self.window[1] == self.window[2]
            )
        return x_crop, y_crop

    def _n_positive(self, batch_size: int) -> int:
        # stratified: every batch holds the expected share of positive crops (random rounding),
        # so the PU risk always sees labelled events next to unlabeled voxels
        expected = batch_size * self.p_positive
        n = int(np.floor(expected))
        return n + int(self.rng.random() < expected - n)

    def label_density(self, *, n_crops: int = 512, seed: int = 0) -> tuple[float, float]:
        """Label densities of the crops this sampler draws (Monte-Carlo, ``n_crops`` crops).

        Crops are drawn by the sampler's own rules (positive and unlabeled in its proportion) from
        a separate generator, so its sequence of batches is unchanged.

        Returns
        -------
        labelled : float
            Fraction of the crop voxels that are labelled event voxels.
        independent : float
            Fraction that are labelled voxels of events the crop was *not* centred on: placed
            independently of the crop, these sample the density of events around the crops.
        """
        rng, self.rng = self.rng, np.random.default_rng(seed)
        instances = [_instances(np.asarray(lab)) for _, lab, _ in self.items]
        try:
            labelled = other = total = 0
            for _ in range(n_crops):
                positive = self.p_positive > 0 and self.rng.random() < self.p_positive
                k, win, eid = self._window(positive=positive)
                inst = instances[k][win]
                n_lab = int(np.count_nonzero(inst))
                labelled += n_lab
                other += n_lab - (int(np.count_nonzero(inst == eid)) if eid else 0)
                total += inst.size
        finally:
            self.rng = rng
        return labelled / max(total, 1), other / max(total, 1)

    def class_prior(self, label_coverage: float, **kwargs: Any) -> float:
        """Voxel prior of hidden events among the unlabeled voxels of the crops drawn.

        If a fraction ``c`` of the events is labelled at random, the events a crop was not
        centred on are labelled with probability ``c`` independently of the crop, so hidden
        events fill ``rho_o (1 - c) / c`` of the crops, where ``rho_o`` is the density of labelled
        voxels of those events; divided by the unlabeled share ``1 - rho_l`` (``rho_l``: all
        labelled voxels) this is the prior among unlabeled voxels (:meth:`label_density`).

        Parameters
        ----------
        label_coverage : float
            Fraction ``c`` of the events that are labelled, in ``(0, 1]``.
        **kwargs
            Passed to :meth:`label_density`.

        Returns
        -------
        float
            The prior, in ``[0, 1)``.
        """
        if not 0 < label_coverage <= 1:
            raise ValueError("label_coverage must lie in (0, 1]")
        rho_l, rho_o = self.label_density(**kwargs)
        prior = rho_o * (1 - label_coverage) / (label_coverage * max(1 - rho_l, 1e-12))
        return float(min(prior, 0.999))

    def sample(self, batch_size: int) -> Batch:
        """Draw a batch: input ``(B, 1, T, Y, X)``, binary target of labelled event voxels.

        Positive crops come first; their number is ``batch_size / (1 + ratio)`` rounded at random.
        """
        n_pos = self._n_positive(batch_size)
        xs, ys = zip(*(self._crop(k < n_pos) for k in range(batch_size)), strict=True)
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
    surrogate: Literal["logistic", "sigmoid"] = "logistic",
) -> Loss:
    """Non-negative PU risk on voxel logits (see the module notes).

    Parameters
    ----------
    prior : float, optional
        Fraction of unlabeled voxels that are (hidden) events, e.g. from
        :meth:`PUSampler.class_prior`. Without it, each batch's estimate is
        ``L (1 - c) / (c U)`` with ``c = label_coverage``, which is biased upwards when positive
        crops are centred on labelled events.
    label_coverage : float
        Fraction of events assumed labelled (1: the unlabeled voxels are negatives).
    beta, gamma : float
        Kiryo's slack and step size of the non-negative correction.
    pos_weight : float
        Weight of the positive terms (events are rare).
    surrogate : {"logistic", "sigmoid"}
        Voxel loss: the logistic loss ``log(1 + exp(-y z))`` (with ``prior = 0``, weighted binary
        cross-entropy) or the bounded ``sigmoid(-y z)`` of Kiryo et al.

    Returns
    -------
    callable
        ``loss(logits, target, mask=None)`` with ``target`` 1 on labelled event voxels.

    Notes
    -----
    A batch without labelled voxels has no estimate of ``mean_L l(f, -)``; the last one seen in
    training is used there (detached), so the negative risk stays corrected.
    """
    if not 0 < label_coverage <= 1:
        raise ValueError("label_coverage must lie in (0, 1]")
    if prior is not None and not 0 <= prior < 1:
        raise ValueError("prior must lie in [0, 1)")
    if surrogate not in ("sigmoid", "logistic"):
        raise ValueError(f"surrogate must be 'sigmoid' or 'logistic', got {surrogate!r}")

    def voxel_loss(z: torch.Tensor) -> torch.Tensor:
        # loss of the label "event"; that of "no event" is voxel_loss(-z)
        return torch.sigmoid(-z) if surrogate == "sigmoid" else F.softplus(-z)

    running: dict[str, torch.Tensor] = {}

    def loss(
        logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        z = logits.float()
        valid = torch.ones_like(z) if mask is None else mask.float().expand_as(z)
        pos = (target > 0.5).float() * valid
        unl = valid - pos
        n = valid.sum().clamp_min(1.0)
        n_l, n_u = pos.sum(), unl.sum()
        l_pos = voxel_loss(z)
        l_neg = voxel_loss(-z)
        neg_u = (l_neg * unl).sum()
        if prior is not None:
            n_up = prior * n_u
        else:
            n_up = n_l * (1 - label_coverage) / label_coverage
        if n_l >= 1:
            mean_ln = (l_neg * pos).sum() / n_l
            pos_risk = (l_pos * pos).sum() + n_up * (l_pos * pos).sum() / n_l
            if torch.is_grad_enabled():
                running["mean_ln"] = mean_ln.detach()
        else:
            mean_ln = running.get("mean_ln", torch.zeros((), device=z.device)).to(z.device)
            pos_risk = torch.zeros((), device=z.device)
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
