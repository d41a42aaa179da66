"""Training: patch samplers, losses, the rotation/flip augmentation and one trainer.

Every network of cascope (denoising, event detection, segmentation) is trained by one driver,
:func:`train_model`: :class:`Trainer` on batches from a :class:`Sampler` (usually a
:class:`PatchSampler` with a pairing function) against a pluggable loss, returned as a
:class:`ModelBundle` (network, config, normalisation, provenance, loss history).
"""

from cascope._device import autocast_dtype, cpu_has_native_bf16, resolve_device, seed_everything
from cascope.config.training import TrainingConfig
from cascope.training.augment import (
    apply_transform,
    invert_transform,
    n_transforms,
    random_transform,
)
from cascope.training.driver import ModelBundle, train_model, training_provenance
from cascope.training.losses import LOSSES, Loss, get_loss, l1_l2_loss, l1_loss, l2_loss
from cascope.training.samplers import (
    Batch,
    Pairing,
    PatchSampler,
    Sampler,
    blind_spot_pairing,
    noise2noise_pairing,
    supervised_pairing,
    temporal_interleave_pairing,
)
from cascope.training.trainer import Trainer, TrainResult

__all__ = [
    "LOSSES",
    "Batch",
    "Loss",
    "ModelBundle",
    "Pairing",
    "PatchSampler",
    "Sampler",
    "TrainResult",
    "Trainer",
    "TrainingConfig",
    "apply_transform",
    "autocast_dtype",
    "blind_spot_pairing",
    "cpu_has_native_bf16",
    "get_loss",
    "invert_transform",
    "l1_l2_loss",
    "l1_loss",
    "l2_loss",
    "n_transforms",
    "noise2noise_pairing",
    "random_transform",
    "resolve_device",
    "seed_everything",
    "supervised_pairing",
    "temporal_interleave_pairing",
    "train_model",
    "training_provenance",
]
