"""Centreline Dice (clDice) for tubular structures (Shit et al., CVPR 2021).

``Tprec`` = fraction of the predicted skeleton inside the true mask, ``Tsens`` = fraction of the
true skeleton inside the predicted mask; clDice is their harmonic mean. Unlike voxel Dice it
punishes broken or merged tubes much more than a slightly wrong thickness.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def _skeleton(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    from skimage.morphology import skeletonize

    if not mask.any():
        return mask
    return np.asarray(skeletonize(mask), dtype=bool)


def cldice(truth: ArrayLike, pred: ArrayLike) -> float:
    """Centreline Dice of two binary masks (2D or 3D).

    Parameters
    ----------
    truth, pred : array-like
        Masks of the same shape (nonzero = structure; instance or class maps work too).

    Returns
    -------
    float
        clDice in [0, 1]; 1 when both masks are empty, 0 when exactly one is.

    Examples
    --------
    >>> m = np.zeros((9, 9), bool)
    >>> m[4, 1:8] = True
    >>> cldice(m, m)
    1.0
    """
    t = np.asarray(truth) > 0
    p = np.asarray(pred) > 0
    if t.shape != p.shape:
        raise ValueError(f"masks differ in shape: {t.shape} vs {p.shape}")
    if not t.any() and not p.any():
        return 1.0
    if not t.any() or not p.any():
        return 0.0
    st, sp = _skeleton(t), _skeleton(p)
    tprec = float((sp & t).sum() / max(sp.sum(), 1))
    tsens = float((st & p).sum() / max(st.sum(), 1))
    if tprec + tsens == 0:
        return 0.0
    return 2 * tprec * tsens / (tprec + tsens)
