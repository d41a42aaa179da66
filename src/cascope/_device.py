"""Where and how networks compute: the device, mixed precision, memory layout and seeding.

One home for what training (:mod:`cascope.training`) and prediction (:mod:`cascope.tiling`)
both decide, so neither imports the other.
"""

from __future__ import annotations

import functools
import logging
import random

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, otherwise the CPU; else ``cpu``, ``cuda[:N]``.

    Any other device (a typo, ``meta``, ``mps``) is refused with
    :class:`~cascope.errors.InputError`: networks are tested on the CPU and on CUDA only, and
    ``meta`` tensors hold no values at all.
    """
    from cascope.errors import InputError

    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise InputError(f"--device {device!s}: use auto, cpu or cuda (or cuda:N)")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device cuda was requested but no CUDA device is available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise InputError(f"--device {device!s}: this machine has {count} CUDA device(s)")
    return dev


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX tiles).

    Without them PyTorch emulates bfloat16. With them (two cores, torch 2.13), ``amp="bf16"``
    trained the default temporal network 1.7-2.0x and denoised about 2x as fast as float32,
    both in channels-last, to the same SI-PSNR within 0.1 dB
    (``benchmarks/results/precision_cpu.md``). float32 stays the CPU's default: bfloat16
    convolution kernels on the CPU have had faults (see
    :func:`cascope.models.unet.float32_where_bf16_faults`), and a faulty weight gradient can be
    finite and wrong, which no check at run time can see.
    """
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def autocast_dtype(device: torch.device, amp: str) -> torch.dtype | None:
    """Choose the mixed-precision type for a device (``None``: full precision).

    ``"auto"``: bfloat16 on CUDA where supported (float16 otherwise), float32 on the CPU.
    ``"bf16"`` asks for bfloat16 on either (on the CPU it can pay only where
    :func:`cpu_has_native_bf16`); ``"fp16"`` is CUDA only (the CPU stays in
    float32); ``"off"`` is float32 everywhere. Losses are computed in float32 whatever the
    choice.
    """
    if amp == "off":
        return None
    if device.type == "cuda":
        if amp == "fp16":
            return torch.float16
        if amp == "bf16" or torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16
    if device.type == "cpu" and amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        _fp16_off_cuda(device.type)
    return None


@functools.cache
def _fp16_off_cuda(device_type: str) -> None:
    """Say once per process that fp16 runs in float32 off CUDA (training, then prediction)."""
    log.warning("fp16 is for CUDA only: the %s computes in float32", device_type.upper())


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), NumPy's global generator and Python's ``random``.

    The legacy global NumPy generator is seeded because third-party code may draw from it.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002
    torch.manual_seed(seed)


def channels_last_format(
    model: nn.Module, device: torch.device, *, wanted: bool = True
) -> torch.memory_format | None:
    """Choose the channels-last memory format for a 2D or 3D network (``None``: keep the default).

    Channels-last speeds convolutions up on CUDA and on the CPU. On a 2-core CPU
    (``benchmarks/precision_cpu.py``) the default temporal network trained 1.7-2.0x and
    denoised about 2x as fast in bfloat16 with channels-last as in float32 with it, while
    bfloat16 in the default layout gained at most 1.24x; float32 itself trained in 180 s with
    channels-last against 267 s without (``deepcad_compare.py``, two runs).
    """
    if not wanted or device.type not in ("cuda", "cpu"):
        return None
    ndim = getattr(model, "ndim", None)
    if ndim == 3:
        return torch.channels_last_3d
    if ndim == 2:
        return torch.channels_last
    return None
