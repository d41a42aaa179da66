"""One trainer for every network: Adam, mixed precision on CUDA, validation, checkpoints, resume.

A checkpoint (``last.pt`` in the checkpoint folder) holds the model, optimiser and grad-scaler
states, the torch/NumPy/Python random states, the sampler's state and the loss history, so a run
killed after a checkpoint and resumed continues with exactly the losses it would have had.
With ``divergence`` set (the denoisers set it), the untrained network is validated before the
first step, and a run that blows up (a validation loss that many times the best one, the
untrained network's included, or a loss that is not finite) goes back to its best weights and
optimiser state with the learning rate halved, instead of spending its remaining steps on a
broken network. A run that keeps blowing up, or ends no better than it started after blowing
up, stops with :class:`~cascope.errors.TrainingDiverged`.
Checkpoints contain tensors and plain data only and are read with ``weights_only=True``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cascope._device import (
    autocast_dtype,
    channels_last_format,
    resolve_device,
    seed_everything,
)
from cascope._progress import progress_bar
from cascope.config.training import TrainingConfig
from cascope.training.losses import Loss
from cascope.training.samplers import Batch, Sampler

log = logging.getLogger(__name__)

CHECKPOINT = "last.pt"


@dataclass
class TrainResult:
    """What a training run did.

    Attributes
    ----------
    losses : list of float
        Training loss of every step, ``losses[i]`` for step ``i + 1`` (including steps done
        before a resume).
    val_losses : list of (int, float)
        ``(step, validation loss)`` pairs; step 0 is the untrained network (validated when
        ``divergence`` is set).
    best_step : int or None
        Step of the lowest validation loss.
    best_val : float or None
        That loss.
    steps_done : int
        Last completed step.
    stopped_early : bool
        Whether early stopping ended the run.
    time_limited : bool
        Whether the time budget (``max_seconds``) ended the run before its last step.
    seconds : float
        Wall time of this call (not of earlier interrupted calls).
    rollbacks : list of int
        Steps at which the run diverged and went back to its best state (learning rate halved
        each time).
    float32_steps : list of int
        Steps of a bfloat16 run on the CPU whose gradients came out non-finite and were
        computed again in float32; after :data:`BF16_CPU_RETRIES` of them the run continues in
        float32.
    """

    losses: list[float] = field(default_factory=list)
    val_losses: list[tuple[int, float]] = field(default_factory=list)
    best_step: int | None = None
    best_val: float | None = None
    steps_done: int = 0
    stopped_early: bool = False
    time_limited: bool = False
    seconds: float = 0.0
    rollbacks: list[int] = field(default_factory=list)
    float32_steps: list[int] = field(default_factory=list)


#: Non-finite bfloat16 steps on the CPU after which a run continues in float32.
BF16_CPU_RETRIES = 3

#: Rollbacks without a better validation in between after which a run stops (the learning
#: rate has been halved that many times: 1/256 of the one asked for).
MAX_ROLLBACKS_IN_ROW = 8


class Trainer:
    """Optimise a network on batches from a sampler.

    Parameters
    ----------
    model : Module
        The network; moved to ``device``.
    sampler : Sampler
        Source of training batches (its state is checkpointed).
    loss : callable
        ``loss(prediction, target, mask) -> scalar tensor``.
    config : TrainingConfig, optional
        Optimisation options.
    val_sampler : Sampler, optional
        Source of the fixed validation batches (drawn once, at construction).
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    checkpoint_dir : str or Path, optional
        Folder for ``last.pt``; without it no checkpoints are written and resume is impossible.
    on_step : callable, optional
        Called as ``on_step(step, loss)`` after every step.

    Examples
    --------
    >>> from cascope.models import UNet
    >>> from cascope.training import PatchSampler, supervised_pairing, get_loss
    >>> x = np.random.default_rng(0).normal(size=(16, 16)).astype(np.float32)
    >>> s = PatchSampler([(x, x)], (8, 8), pairing=supervised_pairing())
    >>> t = Trainer(UNet(1, 1, ndim=2, depth=2, base=4), s, get_loss("l2"),
    ...             config=TrainingConfig(steps=2, val_every=10), device="cpu")
    >>> len(t.fit().losses)
    2
    """

    def __init__(
        self,
        model: nn.Module,
        sampler: Sampler,
        loss: Loss,
        *,
        config: TrainingConfig | None = None,
        val_sampler: Sampler | None = None,
        device: str | torch.device = "auto",
        checkpoint_dir: str | Path | None = None,
        on_step: Callable[[int, float], None] | None = None,
    ) -> None:
        self.config = config or TrainingConfig.model_validate({})
        self.device = resolve_device(device)
        self.model = model.to(self.device)
        self.sampler = sampler
        self.loss = loss
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.on_step = on_step
        self.amp_dtype = autocast_dtype(self.device, self.config.amp)
        self.memory_format = channels_last_format(
            model, self.device, wanted=self.config.channels_last
        )
        if self.memory_format is not None:
            self.model = self.model.to(memory_format=self.memory_format)  # type: ignore[call-overload]
        self.forward: Callable[[torch.Tensor], torch.Tensor] = self.model
        if self.config.compile and self.device.type == "cuda":
            self.forward = torch.compile(self.model)  # type: ignore[assignment]
        self.optimizer = torch.optim.Adam(
            self.model.parameters(),
            lr=self.config.lr,
            betas=self.config.betas,
            weight_decay=self.config.weight_decay,
        )
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.amp_dtype == torch.float16 and self.device.type == "cuda"
        )
        self.val_batches: list[Batch] = []
        if val_sampler is not None:
            self.val_batches = [
                val_sampler.sample(self.config.batch_size) for _ in range(self.config.val_batches)
            ]
        self.result = TrainResult()
        self._best_state: dict[str, torch.Tensor] | None = None
        self._best_optimizer: dict[str, Any] | None = None
        self._lr_scale = 1.0
        self._bad_validations = 0
        self._step = 0

    # ---------------------------------------------------------------- core steps
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _prepare(self, batch: Batch) -> Batch:
        batch = batch.to(self.device, non_blocking=True)
        if self.memory_format is not None and batch.input.ndim in (4, 5):
            batch.input = batch.input.contiguous(memory_format=self.memory_format)
        return batch

    def _lr(self, step: int) -> float:
        lr = self.config.lr * self._lr_scale
        if self.config.lr_schedule == "cosine":
            lr *= 0.5 * (1 + math.cos(math.pi * (step - 1) / self.config.steps))
        if step <= self.config.warmup_steps:
            lr *= step / self.config.warmup_steps
        return lr

    def train_step(self, batch: Batch, step: int) -> float:
        """One optimiser step on a batch; returns the loss."""
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr(step)
        batch = self._prepare(batch)
        loss = self._loss_and_gradients(batch)
        if self._bf16_on_cpu() and not (torch.isfinite(loss) and self._gradients_finite()):
            loss = self._loss_and_gradients(batch, reduced=False)
            if torch.isfinite(loss):  # float32 was fine: a bfloat16 fault, not a diverged run
                self._bf16_fault(step)
        if not torch.isfinite(loss):
            if not self._can_roll_back():
                from cascope.errors import TrainingDiverged

                raise TrainingDiverged(
                    f"the training loss became {loss.item()} at step {step}, before a validation "
                    "gave a state to go back to; lower the learning rate (it was "
                    f"{self._lr(step):.3g})"
                )
            self._roll_back(step, f"the training loss became {loss.item()}")
            return float(loss.detach())
        if self.config.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach())

    def _loss_and_gradients(self, batch: Batch, *, reduced: bool = True) -> torch.Tensor:
        """Forward, loss and (when the loss is finite) backward; ``reduced=False``: float32."""
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast() if reduced else contextlib.nullcontext():
            pred = self.forward(batch.input)
        loss = self.loss(pred.float(), batch.target, batch.mask)
        if torch.isfinite(loss):
            self.scaler.scale(loss).backward()
        return loss

    def _bf16_on_cpu(self) -> bool:
        return self.device.type == "cpu" and self.amp_dtype == torch.bfloat16

    def _gradients_finite(self) -> bool:
        return all(bool(torch.isfinite(p.grad).all()) for p in self.model.parameters()
                   if p.grad is not None)  # fmt: skip

    def _bf16_fault(self, step: int) -> None:
        """Record a bfloat16 CPU step redone in float32; after a few, stay in float32.

        The networks already run the one faulty case measured (torch 2.13's bfloat16 3D
        convolution over inputs two planes deep, see
        :func:`cascope.models.unet.float32_where_bf16_faults`) in float32; this catches a
        kernel fault nobody has measured yet before it reaches the weights.
        """
        self.result.float32_steps.append(step)
        if len(self.result.float32_steps) >= BF16_CPU_RETRIES:
            self.amp_dtype = None
            log.warning(
                "bfloat16 gave non-finite gradients at steps %s; continuing in float32",
                ", ".join(map(str, self.result.float32_steps)),
            )

    @torch.no_grad()
    def validate(self) -> float | None:
        """Mean loss over the fixed validation batches (``None`` without validation data)."""
        if not self.val_batches:
            return None
        self.model.eval()
        total = 0.0
        for b in self.val_batches:
            b = self._prepare(b)
            with self._autocast():
                pred = self.forward(b.input)
            total += float(self.loss(pred.float(), b.target, b.mask))
        return total / len(self.val_batches)

    # ---------------------------------------------------------------- the loop
    def fit(
        self, *, resume: bool = False, progress: bool = False, stop_at: int | None = None
    ) -> TrainResult:
        """Train for ``config.steps`` steps (or until early stopping).

        Parameters
        ----------
        resume : bool
            Continue from ``last.pt`` in the checkpoint folder when there is one.
        progress : bool
            Show a rich progress bar with the loss and the remaining time.
        stop_at : int, optional
            Return right after this step without writing anything, as if the process had been
            killed there (used to test resuming).

        Returns
        -------
        TrainResult
        """
        if self.checkpoint_dir is None:
            return self._fit(resume=resume, progress=progress, stop_at=stop_at)
        from cascope.io import output_lock, remove_stale_temporaries

        # one run at a time per checkpoint folder; a killed run's temporaries go
        self.checkpoint_dir.parent.mkdir(parents=True, exist_ok=True)
        with output_lock(self.checkpoint_dir):
            remove_stale_temporaries(self.checkpoint_dir / CHECKPOINT)
            return self._fit(resume=resume, progress=progress, stop_at=stop_at)

    def _fit(self, *, resume: bool, progress: bool, stop_at: int | None) -> TrainResult:
        t0 = time.perf_counter()
        fresh = True
        if resume and self._checkpoint_path() is not None and self._checkpoint_path().is_file():  # type: ignore[union-attr]
            self.load_checkpoint()
            log.info("resumed from step %d", self._step)
            fresh = False
        elif resume:
            log.warning("no checkpoint to resume from; starting a new run")
        total = self.config.steps
        budget = self.config.max_seconds
        fields = ("loss", "val")
        # the bar is up before the first validation, so a long run shows itself from the start
        with progress_bar(
            "training", total, enabled=progress, completed=self._step, fields=fields
        ) as update:
            if fresh:
                seed_everything(self.config.seed)
                if self.config.divergence is not None:  # the guard's first yardstick
                    self._after_validation(0, self.validate())
                    best = self.result.best_val
                    update(0, val="-" if best is None else f"{best:.4g}")
            while self._step < total:
                step = self._step + 1
                loss = self.train_step(self.sampler.sample(self.config.batch_size), step)
                self.result.losses.append(loss)
                self._step = step
                self.result.steps_done = step
                if self.on_step is not None:
                    self.on_step(step, loss)
                stop = False
                out_of_time = budget is not None and time.perf_counter() - t0 >= budget
                validate_now = step % self.config.val_every == 0 or step == total or out_of_time
                if self.val_batches and validate_now:
                    stop = self._after_validation(step, self.validate())
                if out_of_time and step < total:
                    self.result.time_limited = True
                    log.info("time budget of %g s spent at step %d of %d", budget, step, total)
                    stop = True
                if self.checkpoint_dir is not None and (
                    step % self.config.checkpoint_every == 0 or step == total or stop
                ):
                    self.save_checkpoint()
                best = self.result.best_val
                update(step, loss=f"{loss:.4g}", val="-" if best is None else f"{best:.4g}")
                if stop:
                    if not self.result.time_limited:
                        self.result.stopped_early = True
                        log.info("early stop at step %d", step)
                    break
                if stop_at is not None and step >= stop_at:
                    self.result.seconds = time.perf_counter() - t0
                    return self.result
        if self.result.best_step == 0 and self.result.rollbacks:
            self._diverged("and never came back below the untrained network's validation loss")
        if self.result.best_step == 0 and self.config.restore_best:
            log.warning(
                "no validation after training beat the untrained network's (%.4g); the result "
                "is the untrained network: train for more steps",
                self.result.best_val,
            )
        if self.config.restore_best and self._best_state is not None:
            self.model.load_state_dict(self._best_state)
        self.model.eval()
        self.result.seconds = time.perf_counter() - t0
        return self.result

    def _after_validation(self, step: int, val: float | None) -> bool:
        if val is None:
            return False
        self.result.val_losses.append((step, val))
        best = self.result.best_val
        last = self.result.losses[-1] if self.result.losses else float("nan")
        if step == 0:
            log.info("untrained network: validation loss %.4g", val)
        else:
            log.info(
                "step %d/%d: loss %.4g, validation loss %.4g", step, self.config.steps, last, val
            )
        factor = self.config.divergence
        if (
            best is not None
            and factor is not None
            and self._best_state is not None
            and not (math.isfinite(val) and val <= factor * best)
        ):
            self._roll_back(step, f"the validation loss {val:.4g} is over {factor:g}x the best")
            self._bad_validations += 1
        elif best is None or val < best - self.config.min_delta:
            self.result.best_val, self.result.best_step = val, step
            self._best_state = copy.deepcopy(
                {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            )
            if self.config.divergence is not None:
                self._best_optimizer = copy.deepcopy(self.optimizer.state_dict())
            self._bad_validations = 0
        else:
            self._bad_validations += 1
        return self.config.patience > 0 and self._bad_validations >= self.config.patience

    def _diverged(self, how: str) -> None:
        from cascope.errors import TrainingDiverged

        at = ", ".join(map(str, self.result.rollbacks))
        raise TrainingDiverged(
            f"the training blew up (at steps {at}) {how}; lower the learning rate (it was "
            f"{self.config.lr:.3g})"
        )

    def _can_roll_back(self) -> bool:
        return self.config.divergence is not None and self._best_state is not None

    def _roll_back(self, step: int, why: str) -> None:
        """Back to the best weights and optimiser state, with the learning rate halved."""
        assert self._best_state is not None
        self.model.load_state_dict(self._best_state)
        if self._best_optimizer is not None:
            self.optimizer.load_state_dict(copy.deepcopy(self._best_optimizer))
        self._lr_scale *= 0.5
        self.result.rollbacks.append(step)
        log.warning(
            "step %d: %s; back to the weights of step %s, learning rate now %.3g",
            step,
            why,
            self.result.best_step,
            self.config.lr * self._lr_scale,
        )
        best = self.result.best_step or 0
        if sum(s > best for s in self.result.rollbacks) >= MAX_ROLLBACKS_IN_ROW:
            self._diverged(f"{MAX_ROLLBACKS_IN_ROW} times without a better validation between")

    # ---------------------------------------------------------------- checkpoints
    def _checkpoint_path(self) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / CHECKPOINT

    def save_checkpoint(self) -> Path:
        """Write ``last.pt`` atomically (temporary file, then rename)."""
        path = self._checkpoint_path()
        if path is None:
            raise ValueError("the trainer has no checkpoint folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "step": self._step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "rng_torch": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "rng_numpy": json.dumps(_numpy_global_state()),
            "rng_python": json.dumps(random.getstate()),
            "losses": list(self.result.losses),
            "val_losses": [list(v) for v in self.result.val_losses],
            "best_step": self.result.best_step,
            "best_val": self.result.best_val,
            "best_model": self._best_state,
            "best_optimizer": self._best_optimizer,
            "lr_scale": self._lr_scale,
            "rollbacks": list(self.result.rollbacks),
            "float32_steps": list(self.result.float32_steps),
            "bad_validations": self._bad_validations,
            "config": self.config.model_dump_json(),
        }
        from cascope.io import output_fault, temp_path

        # temporary, flushed to the disk, renamed: a failed save keeps the previous checkpoint
        tmp = temp_path(path, "part")
        try:
            with open(tmp, "wb") as f:
                torch.save(state, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException as err:
            tmp.unlink(missing_ok=True)
            if not isinstance(err, (OSError, RuntimeError)):
                raise
            from cascope.errors import OutputError

            fault = output_fault(err, path)
            if fault is None and "write" not in str(err).lower():
                raise
            detail = (
                str(fault).removeprefix(f"{path}: ").removesuffix("; nothing was written")
                if fault is not None
                else " ".join(str(err).split())[:200]
            )
            raise OutputError(
                f"{path}: could not be saved ({detail}); the previous checkpoint is kept"
            ) from err
        return path

    def load_checkpoint(self) -> None:
        """Restore everything from ``last.pt``."""
        path = self._checkpoint_path()
        if path is None or not path.is_file():
            raise FileNotFoundError(f"no checkpoint at {path}")
        from cascope.errors import InputError

        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # truncated, not a checkpoint, or unsafe to load
            detail = " ".join(str(err).split())[:200]
            raise InputError(f"cannot be read as a checkpoint: {detail}", path) from err
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as err:  # other layers or widths: another method or architecture
            raise InputError(
                "was written by a different network (another method, depth or width); resume "
                "with the settings of that run, or start afresh without --resume",
                path,
            ) from err
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.sampler.load_state_dict(state["sampler"])
        torch.set_rng_state(state["rng_torch"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        _set_numpy_global_state(json.loads(state["rng_numpy"]))
        py = json.loads(state["rng_python"])
        random.setstate((py[0], tuple(py[1]), py[2]))
        self._step = int(state["step"])
        self.result.losses = [float(v) for v in state["losses"]]
        self.result.val_losses = [(int(s), float(v)) for s, v in state["val_losses"]]
        self.result.best_step = state["best_step"]
        self.result.best_val = state["best_val"]
        self.result.steps_done = self._step
        self._best_state = state["best_model"]
        self._best_optimizer = state.get("best_optimizer")
        self._lr_scale = float(state.get("lr_scale", 1.0))
        self.result.rollbacks = [int(s) for s in state.get("rollbacks", [])]
        self.result.float32_steps = [int(s) for s in state.get("float32_steps", [])]
        if self._bf16_on_cpu() and len(self.result.float32_steps) >= BF16_CPU_RETRIES:
            self.amp_dtype = None
        self._bad_validations = int(state["bad_validations"])
        old = TrainingConfig.model_validate_json(state["config"])
        same = {"steps", "val_every"}  # the CLI validates every min(100, steps) steps
        if old.model_dump(exclude=same) != self.config.model_dump(exclude=same):
            log.warning("resuming with options that differ from the checkpoint's")


def _numpy_global_state() -> list[Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    return [name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)]


def _set_numpy_global_state(state: list[Any]) -> None:
    name, keys, pos, has_gauss, cached = state
    legacy = (name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached)
    np.random.set_state(legacy)  # noqa: NPY002
