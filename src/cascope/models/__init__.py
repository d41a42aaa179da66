"""Networks (``nn.Module`` only) and their file format.

One U-Net family serves denoising, event detection and segmentation: :class:`UNet` (2D/3D, any
channels, depth and width configurable). A model folder holds ``weights.safetensors`` and
``model.yaml``; :func:`load_model` never executes code from it.
"""

from cascope.models.checkpoint import (
    build_model,
    export_onnx,
    load_model,
    register_architecture,
    save_model,
)
from cascope.models.unet import UNet, count_parameters, pad_to_multiple

__all__ = [
    "UNet",
    "build_model",
    "count_parameters",
    "export_onnx",
    "load_model",
    "pad_to_multiple",
    "register_architecture",
    "save_model",
]

from cascope.models.vgg_unet import VGGUNet

register_architecture("vgg16-unet", VGGUNet)
__all__ += ["VGGUNet"]
