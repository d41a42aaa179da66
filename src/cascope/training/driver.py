"""One training driver and the one bundle it returns, for denoisers, event detectors, segmenters.

:func:`train_model` is the run every trained network of cascope goes through: seed, build the
network, train it with :class:`~cascope.training.Trainer` (checkpoints beside the model folder
by default), and wrap it as a :class:`ModelBundle`: the network, the configuration it was
trained with, the normalisation prediction must apply, the provenance (training facts and
versions) and the loss history. Each task's bundle (:class:`cascope.denoise.DeepDenoiser`,
:class:`cascope.events.EventModel`, the segmenter's) subclasses :class:`ModelBundle` and only
says how its model folder's ``model.yaml`` is laid out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from pydantic import BaseModel
from torch import nn

from cascope._device import seed_everything
from cascope._json import versions
from cascope.config.training import TrainingConfig
from cascope.training.losses import Loss
from cascope.training.samplers import Sampler
from cascope.training.trainer import Trainer, TrainResult

log = logging.getLogger(__name__)


@dataclass
class ModelBundle:
    """A trained network with everything needed to apply it again.

    Attributes
    ----------
    model : torch.nn.Module
        The network (evaluation mode).
    config : pydantic.BaseModel or None
        The configuration it was trained with (``None`` when a model folder does not record it).
    normalization : dict
        What prediction applies to inputs (and inverts on outputs), as saved in ``model.yaml``.
    provenance : dict
        Training facts (steps, losses, time, device, precision) and versions.
    history : TrainResult or None
        The training run's losses (``None`` for a bundle read from a model folder).
    """

    #: ``task`` of the model folder (``model.yaml``).
    task: ClassVar[str] = "model"

    model: nn.Module
    config: BaseModel | None
    normalization: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    history: TrainResult | None = None

    def __post_init__(self) -> None:
        self.provenance = dict(self.provenance or {})

    def document(self) -> dict[str, Any]:
        """Return what ``model.yaml`` holds besides the architecture (subclasses: their layout)."""
        return {
            "task": self.task,
            "normalization": self.normalization,
            "training": {
                "config": None if self.config is None else self.config.model_dump(mode="json")
            },
            "provenance": self.provenance,
        }

    def save(self, path: str | Path, *, force: bool = False) -> Path:
        """Write the model folder (``weights.safetensors`` + ``model.yaml``, atomically)."""
        from cascope.models import save_model

        return save_model(path, self.model, extra=self.document(), force=force)


B = TypeVar("B", bound=ModelBundle)


def training_provenance(trainer: Trainer, result: TrainResult) -> dict[str, Any]:
    """Return the facts of a finished training run, with the versions that produced it."""
    cfg = trainer.config
    return {
        "steps": result.steps_done,
        "final_loss": result.losses[-1] if result.losses else None,
        "best_val_loss": result.best_val,
        "best_step": result.best_step,
        "rollbacks": result.rollbacks,
        "seconds": round(result.seconds, 2),
        "patches_seen": result.steps_done * cfg.batch_size,
        "device": str(trainer.device),
        "precision": str(trainer.amp_dtype or torch.float32).removeprefix("torch."),
        "float32_steps": result.float32_steps,
        **versions(("cascope", "torch")),
    }


def train_model(
    build: Callable[[], nn.Module],
    sampler: Sampler,
    loss: Loss,
    *,
    training: TrainingConfig,
    bundle: Callable[..., B],
    val_sampler: Sampler | None = None,
    output: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = False,
    device: str | torch.device = "auto",
    **fields: Any,
) -> B:
    """Build a network, train it on batches from a sampler, and return it as a bundle.

    Parameters
    ----------
    build : callable
        ``build() -> Module``; called after seeding with ``training.seed``, so the initial
        weights (drawn from torch's global generator) repeat whatever ran before in the process.
    sampler : Sampler
        Training batches.
    loss : callable
        ``loss(prediction, target, mask) -> scalar tensor``.
    training : TrainingConfig
        Optimisation options (steps, learning rate, seed, validation, checkpoints...).
    bundle : type
        The :class:`ModelBundle` (sub)class to return; called with ``model``, ``history``,
        ``provenance`` (:func:`training_provenance`) and ``fields``.
    val_sampler : Sampler, optional
        Validation batches (drawn once).
    output : str or Path, optional
        The model folder the caller will write: checkpoints go to ``<output>.ckpt`` unless
        ``checkpoint_dir`` says otherwise.
    checkpoint_dir : str or Path, optional
        Folder of the resumable checkpoint.
    resume : bool
        Continue from the checkpoint.
    progress : bool
        Show the trainer's progress bar.
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``...
    **fields
        Further arguments of ``bundle`` (``config``, ``normalization``...).

    Returns
    -------
    ModelBundle
        The trained network (best validation weights, evaluation mode, on ``device``).
    """
    from cascope.models import count_parameters

    seed_everything(training.seed)
    network = build()
    if checkpoint_dir is None and output is not None:
        checkpoint_dir = Path(f"{output}.ckpt")
    trainer = Trainer(
        network,
        sampler,
        loss,
        config=training,
        val_sampler=val_sampler,
        device=device,
        checkpoint_dir=checkpoint_dir,
    )
    result = trainer.fit(resume=resume, progress=progress)
    model = trainer.model.eval()
    log.info(
        "trained %s (%d parameters) for %d steps in %.1f s",
        bundle.__name__ if isinstance(bundle, type) else "a network",
        count_parameters(model),
        result.steps_done,
        result.seconds,
    )
    return bundle(
        model=model, history=result, provenance=training_provenance(trainer, result), **fields
    )
