"""A U-Net for 2D images and 3D stacks/movies, with any number of input and output channels.

Convolutions use ``same`` padding, so the only shape constraint is divisibility of each spatial
size by ``2 ** (depth - 1)``; :meth:`UNet.forward` pads the input to that (reflect, or replicate
where the input is too small to reflect) and crops the output back, so any shape works.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

Norm = Literal["batch", "group", "instance", "none"]
Pool = Literal["max", "avg", "blur"]


def _conv(ndim: int) -> type[nn.Conv2d] | type[nn.Conv3d]:
    return nn.Conv3d if ndim == 3 else nn.Conv2d


def _norm(kind: Norm, ndim: int, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm3d(channels) if ndim == 3 else nn.BatchNorm2d(channels)
    if kind == "instance":
        return (nn.InstanceNorm3d if ndim == 3 else nn.InstanceNorm2d)(channels, affine=True)
    if kind == "group":
        groups = math.gcd(8, channels)
        return nn.GroupNorm(groups, channels)
    return nn.Identity()


class DoubleConv(nn.Module):
    """Two ``3^n`` convolutions, each followed by a normalisation and a leaky ReLU."""

    def __init__(
        self, ndim: int, cin: int, cout: int, *, norm: Norm, mid: int | None = None
    ) -> None:
        super().__init__()
        conv = _conv(ndim)
        bias = norm == "none"
        mid = cout if mid is None else mid
        self.block = nn.Sequential(
            conv(cin, mid, 3, padding=1, bias=bias),
            _norm(norm, ndim, mid),
            nn.LeakyReLU(0.1, inplace=True),
            conv(mid, cout, 3, padding=1, bias=bias),
            _norm(norm, ndim, cout),
            nn.LeakyReLU(0.1, inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the two convolutions."""
        return self.block(x)


class BlurPool(nn.Module):
    """Anti-aliased downsampling by 2: a fixed binomial blur, then stride-2 subsampling (N2V2)."""

    def __init__(self, ndim: int, channels: int) -> None:
        super().__init__()
        k1 = torch.tensor([1.0, 2.0, 1.0])
        kernel = k1
        for _ in range(ndim - 1):
            kernel = kernel[..., None] * k1
        kernel = kernel / kernel.sum()
        self.ndim = ndim
        self.channels = channels
        self.register_buffer("kernel", kernel.expand(channels, 1, *kernel.shape).contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Blur each channel and subsample by 2."""
        pad = [1] * (2 * self.ndim)
        x = F.pad(x, pad, mode="replicate")
        conv = F.conv3d if self.ndim == 3 else F.conv2d
        kernel: torch.Tensor = self.kernel  # type: ignore[assignment]
        return conv(x, kernel.to(x.dtype), stride=2, groups=self.channels)


class UNet(nn.Module):
    """U-Net with configurable dimensionality, depth and width.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and of the output.
    ndim : {2, 3}
        Spatial dimensionality: 2 for images ``(B, C, Y, X)``, 3 for stacks/movies
        ``(B, C, T|Z, Y, X)``.
    depth : int
        Number of resolution levels (``depth - 1`` downsamplings).
    base : int
        Channels at the first level; doubled at each level below.
    norm : {"batch", "group", "instance", "none"}
        Normalisation after each convolution. ``"batch"`` (running statistics at prediction) and
        ``"none"`` keep the network translation-equivariant at prediction, so tiled and whole-image
        predictions agree; ``"group"``/``"instance"`` depend on the tile content.
    pool : {"max", "avg", "blur"}
        Downsampling; ``"blur"`` is the anti-aliased pooling of N2V2.
    top_skip : bool
        Keep the skip connection of the first level (N2V2 removes it against checkerboard
        artefacts of blind-spot training).
    residual : bool
        Add the input to the output (only when ``in_channels == out_channels``).

    Examples
    --------
    >>> net = UNet(1, 1, ndim=3, depth=2, base=4)
    >>> net(torch.zeros(1, 1, 5, 9, 7)).shape
    torch.Size([1, 1, 5, 9, 7])
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        *,
        ndim: int = 3,
        depth: int = 4,
        base: int = 16,
        norm: Norm = "batch",
        pool: Pool = "max",
        top_skip: bool = True,
        residual: bool = False,
    ) -> None:
        super().__init__()
        if ndim not in (2, 3):
            raise ValueError(f"ndim must be 2 or 3, got {ndim}")
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        if residual and in_channels != out_channels:
            raise ValueError("residual=True needs in_channels == out_channels")
        self.hparams: dict[str, Any] = {
            "in_channels": in_channels,
            "out_channels": out_channels,
            "ndim": ndim,
            "depth": depth,
            "base": base,
            "norm": norm,
            "pool": pool,
            "top_skip": top_skip,
            "residual": residual,
        }
        self.ndim = ndim
        self.depth = depth
        self.top_skip = top_skip
        self.residual = residual
        widths = [base * 2**i for i in range(depth)]
        self.encoders = nn.ModuleList()
        self.pools = nn.ModuleList()
        cin = in_channels
        for i, w in enumerate(widths):
            # half-width first convolution in the encoder (as in DeepCAD-RT's 3D U-Net): the
            # default depth-4, base-16 network then has its budget of about one million weights
            mid = max(w // 2, cin)
            self.encoders.append(DoubleConv(ndim, cin, w, norm=norm, mid=mid))
            if i < depth - 1:
                self.pools.append(self._make_pool(pool, w))
            cin = w
        self.decoders = nn.ModuleList()
        for i in reversed(range(depth - 1)):
            skip = widths[i] if (i > 0 or top_skip) else 0
            self.decoders.append(DoubleConv(ndim, widths[i + 1] + skip, widths[i], norm=norm))
        self.head = _conv(ndim)(widths[0], out_channels, 1)

    def _make_pool(self, kind: Pool, channels: int) -> nn.Module:
        if kind == "blur":
            return BlurPool(self.ndim, channels)
        if kind == "avg":
            return nn.AvgPool3d(2) if self.ndim == 3 else nn.AvgPool2d(2)
        return nn.MaxPool3d(2) if self.ndim == 3 else nn.MaxPool2d(2)

    @property
    def multiple(self) -> int:
        """Every spatial size the core network sees must be a multiple of this."""
        return int(2 ** (self.depth - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predict; input of any spatial size, output of the same size.

        Parameters
        ----------
        x : Tensor
            ``(B, C, *spatial)`` with ``len(spatial) == ndim``.

        Returns
        -------
        Tensor
            ``(B, out_channels, *spatial)``.
        """
        if x.ndim != self.ndim + 2:
            raise ValueError(f"expected a {self.ndim + 2}-D tensor (B, C, ...), got {x.ndim}-D")
        padded, crop = pad_to_multiple(x, self.multiple)
        with float32_where_bf16_faults(padded, self.depth):
            y = self._forward_core(padded)
        y = y[crop]
        if self.residual:
            y = y + x
        return y

    def _forward_core(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, enc in enumerate(self.encoders):
            x = enc(x)
            if i < self.depth - 1:
                skips.append(x)
                x = self.pools[i](x)
        mode = "trilinear" if self.ndim == 3 else "bilinear"
        for dec, i in zip(self.decoders, reversed(range(self.depth - 1)), strict=True):
            x = F.interpolate(x, scale_factor=2.0, mode=mode, align_corners=False)
            if i > 0 or self.top_skip:
                x = torch.cat([x, skips[i]], dim=1)
            x = dec(x)
        # the 1x1 output layer computes in float32: under bfloat16 autocast its output would
        # keep 8 significant bits (0.4 %), which is then all the precision of the result
        with torch.autocast(x.device.type, enabled=False):
            return self.head(x.float())


def float32_where_bf16_faults(
    x: torch.Tensor, levels: int
) -> contextlib.AbstractContextManager[Any]:
    """Turn CPU bfloat16 autocast off for a 3D network whose levels would meet a faulty kernel.

    With torch 2.13 the CPU's bfloat16 3D convolution computes wrong weight gradients when its
    input is exactly two planes deep along the first spatial axis: non-finite in most backward
    passes, finite but unrelated (relative error about 1) in others, for either memory layout.
    Its forward values and input gradients are right, as are all three for depths 1, 3, 5, 6
    and for two rows or columns (relative error 0.003, bfloat16's rounding). So when gradients
    are recorded, a level ``l`` of depth ``x.shape[2] // 2**l == 2`` makes the whole pass run in
    float32.

    Parameters
    ----------
    x : Tensor
        The network's (padded) input, ``(B, C, D, Y, X)`` for a 3D network.
    levels : int
        Resolution levels (each halves the depth).
    """
    if (
        x.ndim != 5
        or x.device.type != "cpu"
        or not torch.is_grad_enabled()
        or not torch.is_autocast_enabled("cpu")
        or torch.get_autocast_dtype("cpu") != torch.bfloat16
        or all(x.shape[2] // 2**level != 2 for level in range(levels))
    ):
        return contextlib.nullcontext()
    return torch.autocast("cpu", enabled=False)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """Pad the spatial dimensions of ``(B, C, *spatial)`` up to a multiple; return the crop back.

    Reflect padding is used where possible (it hides the border best); replicate where a
    dimension is too short to reflect.

    Parameters
    ----------
    x : Tensor
        The batch.
    multiple : int
        Each spatial size is padded to the next multiple of this.

    Returns
    -------
    padded : Tensor
        The padded batch (``x`` itself when nothing is needed).
    crop : tuple of slice
        Index that cuts the padded result back to the input's extent.
    """
    spatial = x.shape[2:]
    before, after = [], []
    for s in spatial:
        total = (-s) % multiple
        before.append(total // 2)
        after.append(total - total // 2)
    crop = (slice(None), slice(None)) + tuple(
        slice(b, b + s) for b, s in zip(before, spatial, strict=True)
    )
    if not any(before) and not any(after):
        return x, crop
    pad: list[int] = []
    for b, a in zip(reversed(before), reversed(after), strict=True):
        pad += [b, a]
    can_reflect = all(max(b, a) < s for b, a, s in zip(before, after, spatial, strict=True))
    return F.pad(x, pad, mode="reflect" if can_reflect else "replicate"), crop


def count_parameters(model: nn.Module) -> int:
    """Count the trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
