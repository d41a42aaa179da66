"""Intensity normalisation that remembers how to undo itself: global, or per frame."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator

from cascope.io import as_movie
from cascope.preprocess.sampling import sample_planes


def _array_field(dtype: type, description: str) -> Any:
    """Return a field holding an ndarray of ``dtype`` (empty by default)."""
    return Field(
        default_factory=lambda: np.zeros(0, dtype),
        description=description + " Empty: not measured (a global normalisation).",
    )


def _as_float64(value: Any) -> NDArray[np.float64]:
    return np.asarray(value, dtype=np.float64)


def _as_bool(value: Any) -> NDArray[np.bool_]:
    return np.asarray(value, dtype=np.bool_)


def _as_lists(value: NDArray[Any]) -> Any:
    return np.asarray(value).tolist()


_Float64Array = Annotated[
    NDArray[np.float64], PlainValidator(_as_float64), PlainSerializer(_as_lists)
]
_BoolArray = Annotated[NDArray[np.bool_], PlainValidator(_as_bool), PlainSerializer(_as_lists)]


class Normalization(BaseModel):
    """An affine map ``normalised = (raw - offset - baseline[t]) / scale`` and its inverse.

    Record it beside anything trained or computed on normalised data (it serialises to a plain
    dict / YAML) so results can be brought back to the input's units with :meth:`invert`.

    A normalisation is global (one ``offset``, from :func:`percentile_normalization` or
    :func:`meanstd_normalization`), or follows the recording in time: event detection's
    :func:`~cascope.events.preprocess.preprocess` subtracts a per-frame ``baseline`` ``b(t)``
    (the slow drift of the foreground, bleaching) and divides by the mean foreground intensity
    ``F``, so ``(x - b(t)) / F`` gives inputs of different brightness and bleaching one scale.
    Frames of a long movie are normalised block by block (``apply(block, start)``) or lazily
    through :meth:`view`.

    Examples
    --------
    >>> import numpy as np
    >>> n = Normalization(offset=100.0, scale=50.0)
    >>> x = np.array([100.0, 150.0, 200.0])
    >>> n.apply(x).tolist()
    [0.0, 1.0, 2.0]
    >>> np.allclose(n.invert(n.apply(x)), x)
    True
    >>> drift = Normalization(offset=0.0, scale=10.0, baseline=[10.0, 20.0])
    >>> drift.apply(np.array([[30.0], [30.0]])).ravel().tolist()
    [2.0, 1.0]
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    offset: float = Field(..., description="Value subtracted first, in input units.")
    scale: float = Field(..., gt=0, description="Divisor applied after the offset, input units.")
    method: Literal["percentile", "meanstd", "fixed", "baseline"] = Field(
        "fixed",
        description="How offset and scale were chosen ('baseline': a per-frame baseline and "
        "the mean foreground intensity, for event detection).",
    )
    params: dict[str, float] = Field(
        default_factory=dict, description="The settings of the method (e.g. the percentiles)."
    )
    baseline: _Float64Array = _array_field(
        np.float64,
        "Per-frame offset b(t) along the first axis (one value per frame of the recording), "
        "subtracted after ``offset``.",
    )
    foreground: _BoolArray = _array_field(
        np.bool_, "Pixels (Y, X) where ``baseline`` and ``scale`` were measured."
    )
    trace: _Float64Array = _array_field(
        np.float64, "Per-frame mean foreground intensity that ``baseline`` follows."
    )
    mean_image: _Float64Array = _array_field(
        np.float64, "Temporal mean (Y, X) of the recording the foreground was found on."
    )

    def __eq__(self, other: object) -> bool:
        # field by field, arrays by value (the default comparison of arrays is ambiguous)
        if not isinstance(other, Normalization):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    def __hash__(self) -> int:
        return hash((self.offset, self.scale, self.method))

    @property
    def f(self) -> float:
        """The scale under the name of event detection's ``(x - b(t)) / F``."""
        return self.scale

    def _frame_offset(self, start: int, n: int, ndim: int) -> NDArray[np.float32] | None:
        if self.baseline.size == 0:
            return None
        b = self.baseline[start : start + n]
        if start < 0 or len(b) != n:
            raise ValueError(
                f"frames {start}..{start + n} lie outside the {len(self.baseline)} frames "
                "this normalisation was measured on"
            )
        return b.astype(np.float32).reshape(n, *([1] * (ndim - 1)))

    def apply(self, data: ArrayLike, start: int = 0) -> NDArray[np.float32]:
        """Normalise as float32 (the input is not changed).

        Parameters
        ----------
        data : array-like
            Values in input units; with a per-frame ``baseline``, frames ``start,
            start + 1, ...`` of the recording along the first axis.
        start : int
            Index of the first frame of ``data`` in the recording (per-frame baseline only).

        Returns
        -------
        ndarray of float32
            ``(data - offset - baseline[t]) / scale``.
        """
        out = np.asarray(data, dtype=np.float32) - np.float32(self.offset)
        b = self._frame_offset(start, out.shape[0] if out.ndim else 1, out.ndim)
        if b is not None:
            out -= b
        out /= np.float32(self.scale)
        return out

    def invert(self, data: ArrayLike, start: int = 0) -> NDArray[np.float32]:
        """Return to input units: ``data * scale + baseline[t] + offset`` as float32.

        Parameters
        ----------
        data : array-like
            Normalised values (frames ``start, start + 1, ...`` with a per-frame baseline).
        start : int
            Index of the first frame of ``data`` in the recording.

        Returns
        -------
        ndarray of float32
        """
        out = np.asarray(data, dtype=np.float32) * np.float32(self.scale)
        b = self._frame_offset(start, out.shape[0] if out.ndim else 1, out.ndim)
        if b is not None:
            out += b
        out += np.float32(self.offset)
        return out

    def view(self, data: Any) -> NormalizedMovie:
        """Return a lazy normalised view of a (T, ...) ``data`` (sliced along time on access)."""
        return NormalizedMovie(data, self)


class NormalizedMovie:
    """Lazy :meth:`Normalization.apply` of an array-like; a time slice reads only its frames.

    Parameters
    ----------
    data : array-like
        The recording, time (or the baseline's axis) first.
    norm : Normalization
        The normalisation applied on access.
    """

    def __init__(self, data: Any, norm: Normalization) -> None:
        self.data = data
        self.norm = norm
        self.shape = tuple(int(s) for s in data.shape)
        self.ndim = len(self.shape)
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> NDArray[np.float32]:
        key = key if isinstance(key, tuple) else (key,)
        t = key[0]
        if isinstance(t, slice):
            start, stop, step = t.indices(self.shape[0])
            if step != 1:
                raise IndexError("only contiguous time slices are supported")
            frames = self.norm.apply(self.data[start:stop], start)
        else:
            idx = int(t) % self.shape[0]
            frames = self.norm.apply(self.data[idx : idx + 1], idx)[0]
        return frames[(slice(None), *key[1:])] if isinstance(t, slice) else frames[key[1:]]

    def __array__(self, dtype: Any = None, copy: Any = None) -> NDArray[Any]:
        out = self[:]
        return out if dtype is None else out.astype(dtype)


def _sample(data: Any, axes: str | None, max_values: int) -> NDArray[np.float64]:
    """Read evenly spaced planes of a (possibly lazy) recording, about ``max_values`` values."""
    if isinstance(data, np.ndarray) and data.size <= max_values:
        return np.asarray(data, dtype=np.float64).ravel()
    movie = as_movie(data, axes if axes is not None else _default_axes(data))
    lead = movie.shape[0]
    per_plane = max(1, math.prod(movie.shape[1:]))
    n = int(min(lead, max(1, max_values // per_plane)))
    return sample_planes(movie, n, dtype=np.float64).ravel()


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
    data, axes, max_values
        As in :func:`percentile_normalization`.

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
