"""Blended sliding-window prediction of arrays of any shape, and a torch adapter for networks."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from cascope.tiling.cover import Blend, blend_weights, cover

#: ``predict(batch) -> batch``: ``(B, C, *tile)`` float32 in, ``(B, C_out, *tile)`` out.
BatchPredictor = Callable[[NDArray[np.float32]], NDArray[np.float32]]


def predict_tiled(
    predict: BatchPredictor,
    array: Any,
    *,
    tile: Sequence[int],
    overlap: Sequence[int] | int | float = 0.25,
    batch_size: int = 4,
    blend: Blend = "gaussian",
    channel: bool = False,
) -> NDArray[np.float32]:
    """Predict an array tile by tile and blend the overlapping tiles.

    Parameters
    ----------
    predict : callable
        Maps a float32 batch ``(B, C, *tile)`` to ``(B, C_out, *tile)`` (see
        :func:`torch_predictor`).
    array : array-like
        ``(*spatial)`` or, with ``channel=True``, ``(C, *spatial)``. Read tile by tile.
    tile : sequence of int
        Tile size per spatial axis (clipped to the array).
    overlap : int, float or sequence of int
        Minimum overlap per axis in voxels, or (a float < 1) as a fraction of the tile.
    batch_size : int
        Tiles per call of ``predict``.
    blend : {"gaussian", "linear", "constant"}
        Blending weights (see :func:`~cascope.tiling.blend_weights`).
    channel : bool
        Whether ``array`` has a leading channel axis.

    Returns
    -------
    ndarray of float32
        ``(C_out, *spatial)``, or ``(*spatial)`` when ``array`` had no channel axis and the
        prediction has one channel.
    """
    arr = array if channel else _Lead(array)
    spatial = tuple(int(s) for s in arr.shape[1:])

    def read(group: list[tuple[slice, ...]]) -> torch.Tensor:
        tiles = [np.asarray(arr[(slice(None), *t)], dtype=np.float32) for t in group]
        return torch.from_numpy(np.stack(tiles))

    def run(batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.asarray(predict(batch.numpy()), dtype=np.float32))

    out = _blend_tiles(read, run, spatial, tile, overlap, batch_size, blend, torch.device("cpu"))
    if not channel and out.shape[0] == 1:
        return out[0].numpy()
    return out.numpy()


def predict_tiled_tensor(
    predict: Callable[[torch.Tensor], torch.Tensor],
    array: torch.Tensor,
    *,
    tile: Sequence[int],
    overlap: Sequence[int] | int | float = 0.25,
    batch_size: int = 4,
    blend: Blend = "gaussian",
) -> torch.Tensor:
    """:func:`predict_tiled` for a tensor, on the tensor's device.

    Tiles are cut, predicted and blended there; nothing is copied to the host.

    Parameters
    ----------
    predict : callable
        Maps a float32 batch tensor ``(B, C, *tile)`` on the array's device to ``(B, C_out,
        *tile)`` (:meth:`TorchPredictor.tensors`).
    array : Tensor
        ``(C, *spatial)`` float32.
    tile, overlap, batch_size, blend
        As in :func:`predict_tiled`.

    Returns
    -------
    Tensor
        ``(C_out, *spatial)`` float32 on the array's device.
    """
    spatial = tuple(int(s) for s in array.shape[1:])

    def read(group: list[tuple[slice, ...]]) -> torch.Tensor:
        return torch.stack([array[(slice(None), *t)] for t in group])

    return _blend_tiles(read, predict, spatial, tile, overlap, batch_size, blend, array.device)


def _blend_tiles(
    read: Callable[[list[tuple[slice, ...]]], torch.Tensor],
    predict: Callable[[torch.Tensor], torch.Tensor],
    spatial: tuple[int, ...],
    tile: Sequence[int],
    overlap: Sequence[int] | int | float,
    batch_size: int,
    blend: Blend,
    device: torch.device,
) -> torch.Tensor:
    """Cover ``spatial`` with tiles, predict them in batches and blend them on ``device``.

    ``read(tiles)`` returns the batch of those tiles as a float32 tensor on ``device``.
    """
    if len(tile) != len(spatial):
        raise ValueError(f"tile {tuple(tile)} does not match the {len(spatial)} spatial axes")
    tile_c = tuple(min(int(t), s) for t, s in zip(tile, spatial, strict=True))
    tiles = cover(spatial, tile_c, _overlap(overlap, tile_c))
    weights = torch.from_numpy(blend_weights(tile_c, blend)).to(device)
    out: torch.Tensor | None = None
    wsum = torch.zeros(spatial, dtype=torch.float32, device=device)
    for i in range(0, len(tiles), batch_size):
        group = tiles[i : i + batch_size]
        batch = read(group)
        pred = predict(batch)
        if pred.shape[0] != len(group) or tuple(pred.shape[2:]) != tile_c:
            raise ValueError(
                f"predictor returned {tuple(pred.shape)} for a batch {tuple(batch.shape)}"
            )
        if out is None:
            out = torch.zeros((pred.shape[1], *spatial), dtype=torch.float32, device=device)
        for t, p in zip(group, pred, strict=True):
            out[(slice(None), *t)] += p * weights
            wsum[t] += weights
    assert out is not None
    out.div_(wsum)
    # every network output passes here before it is written, cast to integers or turned into
    # labels or events (where a NaN would pass as background or zero): one check per call
    if not bool(torch.isfinite(out).all()):
        from cascope.errors import CascopeError

        raise CascopeError(
            "the network's prediction holds NaN or infinite values: the model (its weights or "
            "normalisation) is broken; nothing was written"
        )
    return out


def _overlap(overlap: Sequence[int] | int | float, tile: tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(overlap, int | float):
        # a float below 1 is a fraction of the tile, anything else a number of voxels
        per = [overlap * t if isinstance(overlap, float) and overlap < 1 else overlap for t in tile]
    else:
        per = list(overlap)
    return tuple(min(int(round(o)), t - 1) if t > 1 else 0 for o, t in zip(per, tile, strict=True))


class _Lead:
    """View an array-like as having a leading channel axis of length 1, lazily."""

    def __init__(self, data: Any) -> None:
        self.data = data
        self.shape = (1, *data.shape)

    def __getitem__(self, key: tuple[Any, ...]) -> NDArray[Any]:
        return np.asarray(self.data[key[1:]])[None]


def torch_predictor(
    model: nn.Module,
    *,
    device: str | torch.device = "cpu",
    amp: str = "auto",
    channels_last: bool = True,
    compile: bool = False,
) -> TorchPredictor:
    """Wrap a network as a NumPy batch predictor for :func:`predict_tiled`.

    A 2D network (``model.ndim == 2``) given 3D tiles ``(B, C, D, Y, X)`` predicts each of the
    ``D`` planes as an image (frames of a movie, slices of a stack).

    Parameters
    ----------
    model : Module
        The network (set to evaluation mode; moved to ``device``).
    device : str or torch.device
        Where to compute.
    amp : {"auto", "bf16", "fp16", "off"}
        Reduced precision (see :func:`cascope.training.autocast_dtype`): bf16 on CUDA by
        default, float32 on the CPU unless ``"bf16"``.
    channels_last : bool
        Use the channels-last memory format
        (:func:`cascope.training.trainer.channels_last_format`).
    compile : bool
        ``torch.compile`` the network on CUDA.

    Returns
    -------
    TorchPredictor
        ``predict(batch) -> batch`` on NumPy arrays; ``predict.tensors`` on tensors already on
        ``predict.device``.
    """
    return TorchPredictor(
        model, device=device, amp=amp, channels_last=channels_last, compile=compile
    )


class TorchPredictor:
    """A network as a batch predictor (see :func:`torch_predictor`)."""

    def __init__(
        self,
        model: nn.Module,
        *,
        device: str | torch.device,
        amp: str,
        channels_last: bool,
        compile: bool,
    ) -> None:
        from cascope._device import autocast_dtype, channels_last_format, resolve_device

        self.device = resolve_device(device)
        model = model.to(self.device).eval()
        self.ndim = int(getattr(model, "ndim", 0))
        self.dtype = autocast_dtype(self.device, amp)
        self.format = channels_last_format(model, self.device, wanted=channels_last)
        if self.format is not None:
            model = model.to(memory_format=self.format)  # type: ignore[call-overload]
        self.forward: Callable[[torch.Tensor], torch.Tensor] = model
        if self.device.type == "cuda" and compile:
            self.forward = torch.compile(model, dynamic=False)  # type: ignore[assignment]

    def __call__(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """Predict a NumPy batch ``(B, C, *tile)``; the result is a NumPy array."""
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        return self.tensors(x).cpu().numpy()

    def tensors(self, x: torch.Tensor) -> torch.Tensor:
        """Predict a float32 batch tensor on :attr:`device`; the result stays there."""
        planes = self.ndim == 2 and x.ndim == 5
        if planes:
            b, c, d = x.shape[:3]
            x = x.permute(0, 2, 1, 3, 4).reshape(b * d, c, *x.shape[3:])
        if self.format is not None and x.ndim == self.ndim + 2:
            x = x.contiguous(memory_format=self.format)
        ctx: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if self.dtype is not None:
            ctx = torch.autocast(self.device.type, dtype=self.dtype)
        with torch.inference_mode(), ctx:
            y = self.forward(x).float()
        if planes:
            y = y.reshape(b, d, y.shape[1], *y.shape[2:]).permute(0, 2, 1, 3, 4)
        return y


def averaged_over_flips(predict: BatchPredictor, axes: Sequence[int]) -> BatchPredictor:
    """Test-time augmentation: average the predictions of every flip of the tiles.

    Each batch is predicted once per combination of flips along ``axes`` (``2 ** len(axes)``
    calls), each prediction is flipped back, and the mean is returned. For a network trained
    with those flips as augmentation this removes part of the variance of its estimate, at
    ``2 ** len(axes)`` times the prediction cost.

    Parameters
    ----------
    predict : callable
        A batch predictor, ``(B, C, *tile) -> (B, C_out, *tile)``.
    axes : sequence of int
        Axes of the batch array to flip (e.g. ``(2, 3, 4)`` for T, Y and X of 3D tiles).

    Returns
    -------
    callable
        A batch predictor with the same signature.

    Examples
    --------
    >>> import numpy as np
    >>> ramp = np.arange(4, dtype=np.float32).reshape(1, 1, 4)
    >>> shift = lambda b: np.roll(b, 1, axis=-1)  # not flip-equivariant
    >>> averaged_over_flips(shift, (2,))(ramp).tolist()
    [[[2.0, 1.0, 2.0, 1.0]]]
    """
    combos = [
        tuple(a for a, on in zip(axes, bits, strict=True) if on)
        for bits in np.ndindex(*(2,) * len(axes))
    ]

    def predict_flipped(batch: NDArray[np.float32]) -> NDArray[np.float32]:
        total: NDArray[np.float32] | None = None
        for flip in combos:
            x = np.flip(batch, flip) if flip else batch
            y = np.asarray(predict(np.ascontiguousarray(x)), dtype=np.float32)
            y = np.flip(y, flip) if flip else y
            total = y.copy() if total is None else total + y
        assert total is not None
        return total / np.float32(len(combos))

    return predict_flipped
