"""Strict JSON text (a non-finite float becomes ``null``, never ``NaN``) and the provenance in it.

:func:`versions` is the one record of what produced a result (Python, platform and package
versions) that the pipeline, the trained models and the simulations write beside their outputs.
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

#: Packages whose versions shape cascope's results.
PACKAGES = ("cascope", "numpy", "scipy", "scikit-image", "torch", "tifffile", "zarr", "pandas")


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


def versions(packages: Sequence[str] = PACKAGES) -> dict[str, str]:
    """Versions of Python, the platform and ``packages``: the provenance saved beside results.

    Parameters
    ----------
    packages : sequence of str
        Distribution names; one that is not installed is recorded as ``"not installed"``.

    Returns
    -------
    dict
        ``{"python": ..., "platform": ..., package: version, ...}``.

    Examples
    --------
    >>> sorted(versions(("numpy",)))
    ['numpy', 'platform', 'python']
    """
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in packages:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
