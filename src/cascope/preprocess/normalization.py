"""Intensity normalisation that remembers how to undo itself."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field

from cascope.io import as_movie


class Normalization(BaseModel):
    """An affine map ``normalised = (raw - offset) / scale`` and its inverse.

    Record it beside anything trained or computed on normalised data (it serialises to a plain
    dict / YAML) so results can be brought back to the input's units with :meth:`invert`.

    Examples
    --------
    >>> import numpy as np
    >>> n = Normalization(offset=100.0, scale=50.0)
    >>> x = np.array([100.0, 150.0, 200.0])
    >>> n.apply(x).tolist()
    [0.0, 1.0, 2.0]
    >>> np.allclose(n.invert(n.apply(x)), x)
    True
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    offset: float = Field(..., description="Value subtracted first, in input units.")
    scale: float = Field(..., gt=0, description="Divisor applied after the offset, input units.")
    method: Literal["percentile", "meanstd", "fixed"] = Field(
        "fixed", description="How offset and scale were chosen."
    )
    params: dict[str, float] = Field(
        default_factory=dict, description="The settings of the method (e.g. the percentiles)."
    )

    def apply(self, data: ArrayLike) -> NDArray[np.float32]:
        """Normalise: ``(data - offset) / scale`` as float32 (the input is not changed)."""
        out = np.asarray(data, dtype=np.float32) - np.float32(self.offset)
        out /= np.float32(self.scale)
        return out

    def invert(self, data: ArrayLike) -> NDArray[np.float32]:
        """Return to input units: ``data * scale + offset`` as float32."""
        out = np.asarray(data, dtype=np.float32) * np.float32(self.scale)
        out += np.float32(self.offset)
        return out


def _sample(data: Any, axes: str | None, max_values: int) -> NDArray[np.float64]:
    """Read evenly spaced planes of a (possibly lazy) recording, about ``max_values`` values."""
    if isinstance(data, np.ndarray) and data.size <= max_values:
        return np.asarray(data, dtype=np.float64).ravel()
    movie = as_movie(data, axes if axes is not None else _default_axes(data))
    lead = movie.shape[0]
    per_plane = max(1, math.prod(movie.shape[1:]))
    n = int(min(lead, max(1, max_values // per_plane)))
    idx = np.unique(np.linspace(0, lead - 1, n).round().astype(int))
    return np.concatenate([np.asarray(movie[int(i)], dtype=np.float64).ravel() for i in idx])


def _default_axes(data: Any) -> str:
    # Normalisation does not care about axis meaning; any valid string of the right length works.
    return {2: "YX", 3: "TYX", 4: "TZYX", 5: "TCZYX"}[len(data.shape)]


def percentile_normalization(
    data: Any,
    *,
    low: float = 1.0,
    high: float = 99.8,
    axes: str | None = None,
    max_values: int = 10_000_000,
) -> Normalization:
    """Map the ``low`` percentile to 0 and the ``high`` percentile to 1.

    Parameters
    ----------
    data : Movie or array-like
        The recording; a lazy one is sampled plane by plane (evenly spaced along its first axis),
        never read whole.
    low, high : float
        Percentiles (0–100), ``low < high``.
    axes : str, optional
        Axes of a bare array (only used to sample it).
    max_values : int
        About how many values to read for the estimate.

    Returns
    -------
    Normalization
        ``offset`` = the low percentile, ``scale`` = their difference (1 for a constant image).

    Examples
    --------
    >>> import numpy as np
    >>> n = percentile_normalization(np.arange(101.0), low=0, high=100)
    >>> n.offset, n.scale
    (0.0, 100.0)
    """
    if not 0 <= low < high <= 100:
        raise ValueError(f"need 0 <= low < high <= 100, got low={low}, high={high}")
    values = _sample(data, axes, max_values)
    lo, hi = np.percentile(values, [low, high])
    scale = float(hi - lo) if hi > lo else 1.0
    return Normalization(
        offset=float(lo), scale=scale, method="percentile", params={"low": low, "high": high}
    )


def meanstd_normalization(
    data: Any, *, axes: str | None = None, max_values: int = 10_000_000
) -> Normalization:
    """Map the mean to 0 and one standard deviation to 1 (sampled like the percentile version).

    Parameters
    ----------
    data : Movie or array-like
        The recording.
    axes : str, optional
        Axes of a bare array (only used to sample it).
    max_values : int
        About how many values to read for the estimate.

    Returns
    -------
    Normalization
        ``offset`` = mean, ``scale`` = standard deviation (1 for a constant image).
    """
    values = _sample(data, axes, max_values)
    std = float(values.std())
    return Normalization(
        offset=float(values.mean()), scale=std if std > 0 else 1.0, method="meanstd"
    )
