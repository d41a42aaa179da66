"""A 3D U-Net whose encoder is the VGG16 convolution stack (64-128-256-512-512).

The reference axon pipeline used a VGG16-encoder U-Net with ImageNet weights; no pretrained 3D
weights exist offline, so this network is always trained from scratch. Batch normalisation
follows each convolution (the VGG16-BN variant) because training from scratch without it is
unstable.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cascope.models.unet import float32_where_bf16_faults, pad_to_multiple

#: Convolutions per VGG16 block and the block widths.
VGG16_BLOCKS: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


def _conv_bn(ndim: int, cin: int, cout: int) -> list[nn.Module]:
    conv = nn.Conv3d if ndim == 3 else nn.Conv2d
    norm = nn.BatchNorm3d if ndim == 3 else nn.BatchNorm2d
    return [conv(cin, cout, 3, padding=1, bias=False), norm(cout), nn.ReLU(inplace=True)]


class VGGUNet(nn.Module):
    """U-Net with a VGG16 encoder (13 convolutions in 5 blocks) and a light decoder.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and of the output (e.g. 3 classes).
    ndim : {2, 3}
        Spatial dimensionality.
    width : float
        Multiplier of the VGG16 widths (1.0 gives 64-128-256-512-512; tests use small values).
    blocks : int
        Number of VGG16 blocks used (1–5); the input is pooled ``blocks - 1`` times.

    Examples
    --------
    >>> net = VGGUNet(1, 3, width=1 / 16, blocks=3)
    >>> net(torch.zeros(1, 1, 6, 10, 9)).shape
    torch.Size([1, 3, 6, 10, 9])
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 3,
        *,
        ndim: int = 3,
        width: float = 1.0,
        blocks: int = 5,
    ) -> None:
        super().__init__()
        if ndim not in (2, 3):
            raise ValueError(f"ndim must be 2 or 3, got {ndim}")
        if not 1 <= blocks <= len(VGG16_BLOCKS):
            raise ValueError(f"blocks must be in 1..{len(VGG16_BLOCKS)}, got {blocks}")
        if width <= 0:
            raise ValueError("width must be positive")
        self.hparams: dict[str, Any] = {
            "in_channels": in_channels,
            "out_channels": out_channels,
            "ndim": ndim,
            "width": width,
            "blocks": blocks,
        }
        self.ndim = ndim
        self.blocks = blocks
        widths = [max(1, round(w * width)) for _, w in VGG16_BLOCKS[:blocks]]
        self.encoders = nn.ModuleList()
        cin = in_channels
        for (n_conv, _), w in zip(VGG16_BLOCKS[:blocks], widths, strict=True):
            layers: list[nn.Module] = []
            for _ in range(n_conv):
                layers += _conv_bn(ndim, cin, w)
                cin = w
            self.encoders.append(nn.Sequential(*layers))
        self.pool = nn.MaxPool3d(2) if ndim == 3 else nn.MaxPool2d(2)
        self.decoders = nn.ModuleList()
        for i in reversed(range(blocks - 1)):
            self.decoders.append(
                nn.Sequential(
                    *_conv_bn(ndim, widths[i + 1] + widths[i], widths[i]),
                    *_conv_bn(ndim, widths[i], widths[i]),
                )
            )
        conv = nn.Conv3d if ndim == 3 else nn.Conv2d
        self.head = conv(widths[0], out_channels, 1)

    @property
    def multiple(self) -> int:
        """Every spatial size the core network sees must be a multiple of this."""
        return int(2 ** (self.blocks - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predict ``(B, out_channels, *spatial)`` for any spatial size (padded and cropped)."""
        if x.ndim != self.ndim + 2:
            raise ValueError(f"expected a {self.ndim + 2}-D tensor (B, C, ...), got {x.ndim}-D")
        padded, crop = pad_to_multiple(x, self.multiple)
        with float32_where_bf16_faults(padded, self.blocks):
            return self._forward_core(padded)[crop]

    def _forward_core(self, h: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, enc in enumerate(self.encoders):
            if i > 0:
                h = self.pool(h)
            h = enc(h)
            skips.append(h)
        mode = "trilinear" if self.ndim == 3 else "bilinear"
        for dec, i in zip(self.decoders, reversed(range(self.blocks - 1)), strict=True):
            h = F.interpolate(h, scale_factor=2.0, mode=mode, align_corners=False)
            h = dec(torch.cat([h, skips[i]], dim=1))
        return self.head(h)
