"""Strict JSON text: a non-finite float (NaN, infinity) becomes ``null``, never ``NaN``."""

from __future__ import annotations

import json
import math
from typing import Any


def _finite(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float (numpy scalars too) replaced by ``None``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "dtype") and hasattr(obj, "tolist"):  # numpy scalar or array
        return _finite(obj.tolist())
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    """:func:`json.dumps` that writes valid JSON: NaN and infinities become ``null``.

    Examples
    --------
    >>> dumps({"a": float("nan"), "b": [1.0, float("inf")]})
    '{"a": null, "b": [1.0, null]}'
    """
    return json.dumps(_finite(obj), allow_nan=False, **kwargs)
