"""``cascope train denoiser``: train a denoising network and save it as a model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cascope.cli._apps import reads_recordings, train_app, validated
from cascope.config.denoise import DEEP_METHODS

METHODS = DEEP_METHODS
AMP_HELP = (
    "Precision: auto (bfloat16 on CUDA, float32 on the CPU), bf16 (also on the CPU: about 2x "
    "faster on one with bfloat16 instructions, see cascope.training.cpu_has_native_bf16), fp16 "
    "(CUDA) or off (float32)."
)
#: Help of ``--loss``, shared by the commands that train a denoiser.
LOSS_HELP = (
    "training loss: l2 (default: keeps the mean intensity at any photon count), l1 or l1+l2 "
    "(the DeepCAD-RT objective: at a few photons per pixel they estimate the median of the "
    "noise, and the output's mean falls below the input's)."
)


def _steps_help() -> str:
    from cascope.config.denoise import DENOISE_STEPS

    return f"default {DENOISE_STEPS}, the same for every command"


STEPS_HELP = _steps_help()


def train_denoiser_cmd(
    inputs: list[Path] = typer.Argument(..., metavar="INPUT...", help="Noisy recordings."),
    output: Path = typer.Option(..., "--output", "-o", help="Model folder to write."),
    method: str = typer.Option("deepcad", "--method", "-m", help=f"{', '.join(METHODS)}."),
    target: list[Path] | None = typer.Option(
        None,
        "--target",
        help="n2n: second noisy recording; care: high-SNR recording (one per INPUT).",
    ),
    steps: int | None = typer.Option(
        None, "--steps", min=1, help=f"Training steps, batches ({STEPS_HELP})."
    ),
    loss: str | None = typer.Option(None, "--loss", help=LOSS_HELP[0].upper() + LOSS_HELP[1:]),
    patch: tuple[int, int, int] = typer.Option(
        (32, 64, 64), "--patch", help="Patch T Y X (deepcad crops 2T frames)."
    ),
    batch_size: int = typer.Option(2, "--batch-size", min=1, help="Patches per step."),
    depth: int = typer.Option(4, "--depth", min=1, help="U-Net levels."),
    base: int = typer.Option(16, "--base", min=1, help="U-Net channels at the first level."),
    lr: float | None = typer.Option(None, "--lr", help="Adam learning rate (default 1e-3)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    axes: str | None = typer.Option(None, "--axes", help="Axes when the file does not say."),
    dataset: str | None = typer.Option(
        None, "--dataset", help="Dataset in HDF5 inputs (and targets)."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    amp: str = typer.Option("auto", "--amp", help=AMP_HELP),
    checkpoint_every: int = typer.Option(
        100, "--checkpoint-every", min=1, help="Steps between resumable checkpoints."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted run from its last checkpoint."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing model folder."),
) -> None:
    """Train a denoiser on INPUT recordings and write MODEL_DIR (weights + model.yaml).

    Checkpoints go to MODEL_DIR.ckpt/; after an interruption run the same command with
    --resume to continue with identical losses.
    """
    from rich.console import Console

    from cascope.config.denoise import DeepDenoiseConfig
    from cascope.denoise.deep import read_recording, train_denoiser
    from cascope.io import check_output

    if method not in METHODS:
        raise typer.BadParameter(f"choose from {', '.join(METHODS)}", param_hint="--method")
    from cascope.config.denoise import DENOISE_STEPS
    from cascope.models.checkpoint import CONFIG, WEIGHTS

    steps = steps or DENOISE_STEPS
    training: dict[str, Any] = {
        "steps": steps,
        "batch_size": batch_size,
        "seed": seed,
        "checkpoint_every": checkpoint_every,
        "val_every": min(100, steps),
        "amp": amp,
    }
    if lr is not None:
        training["lr"] = lr
    fields: dict[str, Any] = {
        "method": method,
        "patch": patch,
        "depth": depth,
        "base": base,
        "training": training,
    }
    if loss is not None:
        fields["loss"] = loss
    cfg = validated(DeepDenoiseConfig, fields)
    # a folder of other files is refused now, not after the training
    check_output(output, inputs=[*inputs, *(target or [])], force=force, holds=(CONFIG, WEIGHTS))
    movies = [read_recording(p, axes=axes, dataset=dataset) for p in inputs]
    targets = [read_recording(p, axes=axes, dataset=dataset) for p in target] if target else None
    ckpt = output.with_name(output.name + ".ckpt")
    model, result = train_denoiser(
        movies,
        config=cfg,
        targets=targets,
        checkpoint_dir=ckpt,
        resume=resume,
        device=device,
        progress=True,
    )
    model.save(output, force=force)
    console = Console(stderr=True)
    best = "" if result.best_val is None else f", best validation loss {result.best_val:.4g}"
    if result.rollbacks:
        at = ", ".join(map(str, result.rollbacks))
        best += f" (diverged at step {at}: went back to the best weights, rate halved)"
    console.print(
        f"trained {method} for {result.steps_done} steps in {result.seconds:.1f} s{best}; "
        f"wrote {output} (its checkpoint {ckpt.name} continues it with --resume and more "
        "--steps; delete it when done)",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``cascope train denoiser`` to the ``train`` group."""
    train_app.command("denoiser")(reads_recordings(train_denoiser_cmd))
