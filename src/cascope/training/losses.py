"""Losses with one signature, ``loss(prediction, target, mask=None) -> scalar tensor``.

A mask (same shape as the prediction, or broadcastable) restricts the loss to selected voxels, as
blind-spot training (N2V) and partially labelled data need.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Loss = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def _reduce(err: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return err.mean()
    mask = mask.to(err.dtype).expand_as(err)
    return (err * mask).sum() / mask.sum().clamp_min(1.0)


def l1_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean absolute error (over masked voxels when a mask is given)."""
    return _reduce((pred.float() - target.float()).abs(), mask)


def l2_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared error (over masked voxels when a mask is given)."""
    return _reduce((pred.float() - target.float()) ** 2, mask)


def l1_l2_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Sum of L1 and L2 (the DeepCAD-RT objective)."""
    return l1_loss(pred, target, mask) + l2_loss(pred, target, mask)


LOSSES: dict[str, Loss] = {"l1": l1_loss, "l2": l2_loss, "l1+l2": l1_l2_loss}


def get_loss(name: str) -> Loss:
    """Look a loss up by name (``"l1"``, ``"l2"``, ``"l1+l2"``)."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose from {sorted(LOSSES)}") from None
