"""Output types of a denoised recording: which type, and the conversion on the host or device."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from cascope.tiling import BlockWriter


def output_dtype(in_dtype: np.dtype[Any], choice: str) -> np.dtype[Any]:
    """Return the dtype a denoised result is written in.

    Parameters
    ----------
    in_dtype : dtype
        The input's type.
    choice : {"same", "float32"}
        ``"same"`` keeps the input's type (booleans become float32), ``"float32"`` forces float32.

    Returns
    -------
    dtype
    """
    if choice == "float32" or in_dtype == np.bool_:
        return np.dtype(np.float32)
    return np.dtype(in_dtype)


def cast_output(block: NDArray[Any], dtype: np.dtype[Any]) -> NDArray[Any]:
    """Convert a float result to ``dtype``: integers are rounded and clipped, never truncated.

    Parameters
    ----------
    block : ndarray
        Float values in the input's units.
    dtype : dtype
        Target type.

    Returns
    -------
    ndarray
        ``block`` in ``dtype`` (a value of 2.7 becomes 3 and -1 becomes 0 for uint16).

    Examples
    --------
    >>> import numpy as np
    >>> cast_output(np.array([-1.0, 2.5, 2.7, 7e4]), np.dtype(np.uint16)).tolist()
    [0, 2, 3, 65535]
    """
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        out = np.rint(block)
        np.clip(out, info.min, info.max, out=out)
        return out.astype(dtype)
    return block.astype(dtype, copy=False)


def restore_on_device(block: torch.Tensor, dtype: np.dtype[Any]) -> torch.Tensor:
    """Convert a float block to ``dtype`` on its device where that is cheap to copy back.

    As :func:`cast_output`: integers are rounded and clipped. Integers of up to 16 bits are made
    on the device, so only they cross to the host (uint16 as int32, as CUDA has few kernels for
    torch's unsigned types, then narrowed on the host); other types cross as float32 and are
    cast there (:class:`CastOnHost`), as on the host path.
    """
    if np.issubdtype(dtype, np.integer) and dtype.itemsize <= 2:
        info = np.iinfo(dtype)
        if dtype.kind == "u" and dtype.itemsize > 1:
            target = torch.int32
        else:
            target = torch.from_numpy(np.empty(0, dtype.newbyteorder("="))).dtype
        return block.round().clamp_(info.min, info.max).to(target)
    return block


class CastOnHost:
    """A block writer that casts blocks that are not yet of ``dtype`` (see restore_on_device)."""

    def __init__(self, writer: BlockWriter, dtype: np.dtype[Any]) -> None:
        self.writer, self.dtype = writer, dtype

    def write(self, block: NDArray[Any], start: int) -> None:
        """Cast ``block`` (unless already of ``dtype``) and hand it to the writer."""
        if block.dtype == self.dtype:
            pass
        elif block.dtype.kind in "iu" and self.dtype.kind in "iu":  # clamped on the device
            block = block.astype(self.dtype)
        else:
            block = cast_output(block, self.dtype)
        self.writer.write(block, start)
