"""A monotone piecewise-linear response curve, applied to a network's output.

A denoiser's output can depend on the clean intensity in a way that is not affine (a network
trained at half a photon per pixel may lift bright structures more than dim ones). The curve
that undoes it is measured after training (:mod:`cascope.denoise.calibration`) and travels with
the model: knots ``x_0 < x_1 < ...`` of the output with the corrected value at each, straight
lines between them and straight lines of the given slopes beyond the ends.

The same function is written twice, for NumPy (cascope's prediction on the host) and for torch
(prediction on a GPU, and the exported packages, where it follows the network as
:class:`WithResponse`). The torch form is a sum of ramps, which tracing and ONNX keep as plain
element-wise operations. This module imports torch only, so that a package's architecture file
can carry it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from cascope.models.unet import UNet


@dataclass(frozen=True)
class Curve:
    """``knots`` (increasing) and the value at each; ``slopes`` below the first and above the last.

    Examples
    --------
    >>> c = Curve(knots=(0.0, 1.0), values=(0.0, 2.0), slopes=(1.0, 3.0))
    >>> c(np.array([-1.0, 0.5, 2.0])).tolist()
    [-1.0, 1.0, 5.0]
    """

    knots: tuple[float, ...]
    values: tuple[float, ...]
    slopes: tuple[float, float]

    def __post_init__(self) -> None:
        k, v = self.knots, self.values
        if len(k) < 2 or len(k) != len(v):
            raise ValueError("a response curve needs at least two knots and one value per knot")
        if not all(math.isfinite(x) for x in (*k, *v, *self.slopes)):
            raise ValueError("a response curve needs finite knots, values and slopes")
        if any(b <= a for a, b in zip(k, k[1:], strict=False)):
            raise ValueError("the knots of a response curve must increase")
        if any(b < a for a, b in zip(v, v[1:], strict=False)) or min(self.slopes) <= 0:
            raise ValueError("a response curve must increase")

    def __call__(self, x: NDArray[Any]) -> NDArray[np.float64]:
        """Evaluate the curve at ``x`` (NumPy)."""
        k = np.asarray(self.knots)
        v = np.asarray(self.values)
        a = np.asarray(x, np.float64)
        out = np.interp(a, k, v)
        out = np.where(a < k[0], v[0] + self.slopes[0] * (a - k[0]), out)
        return np.where(a > k[-1], v[-1] + self.slopes[1] * (a - k[-1]), out)

    def ramps(self) -> tuple[float, float, list[float], list[float]]:
        """``value(x) = v0 + s0 * (x - k0) + sum_i d_i * max(x - k_i, 0)``: ``v0, s0, k, d``."""
        k, v = self.knots, self.values
        inner = [(v[i + 1] - v[i]) / (k[i + 1] - k[i]) for i in range(len(k) - 1)]
        slopes = [self.slopes[0], *inner, self.slopes[1]]
        deltas = [b - a for a, b in zip(slopes, slopes[1:], strict=False)]
        return v[0], slopes[0], list(k), deltas

    def affine(self, scale: float, shift: float) -> Curve:
        """Return the curve of ``scale * x + shift`` followed by this one (``scale > 0``)."""
        return Curve(
            knots=tuple((k - shift) / scale for k in self.knots),
            values=self.values,
            slopes=(self.slopes[0] * scale, self.slopes[1] * scale),
        )

    def then_affine(self, scale: float, shift: float) -> Curve:
        """Return this curve followed by ``scale * y + shift`` (``scale > 0``)."""
        return Curve(
            knots=self.knots,
            values=tuple(scale * v + shift for v in self.values),
            slopes=(self.slopes[0] * scale, self.slopes[1] * scale),
        )

    def to_dict(self) -> dict[str, list[float]]:
        """Return what ``model.yaml`` records."""
        return {
            "knots": list(self.knots),
            "values": list(self.values),
            "slopes": list(self.slopes),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Sequence[float]]) -> Curve:
        """Read :meth:`to_dict`'s form (``ValueError`` when it is not a valid curve)."""
        if not isinstance(doc, Mapping) or set(doc) != {"knots", "values", "slopes"}:
            raise ValueError("needs exactly 'knots', 'values' and 'slopes'")
        try:
            knots = tuple(float(x) for x in doc["knots"])
            values = tuple(float(x) for x in doc["values"])
            lo, hi = (float(x) for x in doc["slopes"])
        except (TypeError, ValueError) as err:
            raise ValueError("knots, values and two slopes must be numbers") from err
        return cls(knots=knots, values=values, slopes=(lo, hi))


def apply_ramps(
    x: torch.Tensor, v0: float, s0: float, knots: Sequence[float], deltas: Sequence[float]
) -> torch.Tensor:
    """Evaluate :meth:`Curve.ramps` on a tensor (torch; traceable, ONNX-exportable)."""
    y = (x - knots[0]) * s0 + v0
    for k, d in zip(knots, deltas, strict=True):
        y = y + torch.clamp(x - k, min=0.0) * d
    return y


class WithResponse(nn.Module):
    """A U-Net followed by a response curve on its output (how packages carry a curve).

    Parameters
    ----------
    unet : dict
        The U-Net's ``hparams``.
    knots, values, slopes
        The curve (:class:`Curve`), in the network's output units.
    """

    def __init__(
        self,
        unet: dict[str, Any],
        knots: Sequence[float],
        values: Sequence[float],
        slopes: Sequence[float],
    ) -> None:
        super().__init__()
        self.network = UNet(**unet)
        curve = Curve(tuple(knots), tuple(values), (float(slopes[0]), float(slopes[1])))
        self._ramps = curve.ramps()
        self.hparams: dict[str, Any] = {"unet": dict(unet), **curve.to_dict()}
        self.residual = False  # the network's own residual is inside _forward_core

    @property
    def multiple(self) -> int:
        """Every spatial size the core network sees must be a multiple of this."""
        return int(self.network.multiple)

    def _respond(self, y: torch.Tensor) -> torch.Tensor:
        v0, s0, knots, deltas = self._ramps
        return apply_ramps(y, v0, s0, knots, deltas)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the network and pass its output through the curve."""
        return self._respond(self.network(x))

    def _forward_core(self, x: torch.Tensor) -> torch.Tensor:
        """Do the same on an input whose sizes are multiples already (for tracing)."""
        y = self.network._forward_core(x)
        return self._respond(y + x if self.network.residual else y)
