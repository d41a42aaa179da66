"""``cascope denoise``: denoise a recording file into a new file, streaming blocks of frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cascope.cli._apps import dask_client, on_dask, reads_recordings, validated
from cascope.cli.train_denoiser import AMP_HELP, LOSS_HELP, STEPS_HELP
from cascope.config.denoise import SELF_SUPERVISED, DenoiseRequest
from cascope.config.denoise_classical import CLASSICAL_METHODS

#: Methods this command runs without a model.
CLASSICAL = CLASSICAL_METHODS
#: Self-supervised networks trained on the input itself when no --model is given.
DEEP = SELF_SUPERVISED

#: ``--scheduler`` and ``--cluster`` of ``cascope denoise``.
_ON_DASK = on_dask(
    "Classical filters: run the blocks on this Dask scheduler (tcp://HOST:8786 or "
    "a scheduler file); each worker writes its blocks into the OUTPUT OME-Zarr.",
    "Classical filters: as --scheduler, on a cluster.yaml queue.",
)


def build_classical_config(options: dict[str, Any]) -> Any:
    """Turn the command's options into a :class:`ClassicalDenoiseConfig` (None = default)."""
    from cascope.config.denoise_classical import ClassicalDenoiseConfig

    fields = {k: v for k, v in options.items() if v is not None}
    gain = fields.pop("gain", None)
    read_noise = fields.pop("read_noise", None)
    offset = fields.pop("offset", None)
    if gain is not None:
        fields["vst"] = {
            "gain": gain,
            "read_noise": read_noise or 0.0,
            "offset": offset or 0.0,
        }
    elif read_noise is not None or offset is not None:
        raise typer.BadParameter("--read-noise/--offset need --gain (variance stabilisation)")
    return validated(ClassicalDenoiseConfig, fields, options="denoise options")


def denoise(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="Recording to denoise."),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Output file (.tif, .ome.zarr, .h5); never the input."
    ),
    method: str | None = typer.Option(
        None,
        "--method",
        "-m",
        help=f"Denoiser: {', '.join(CLASSICAL)} (default gaussian); or {', '.join(DEEP)} "
        "(trains a network on INPUT first). Not with --model, whose method it is.",
    ),
    model: Path | None = typer.Option(
        None,
        "--model",
        help="Trained denoising model folder (cascope train denoiser), or a bioimage.io "
        "0.5 package (model.zip or rdf.yaml) whose axes fit INPUT.",
    ),
    steps: int | None = typer.Option(
        None,
        "--steps",
        min=1,
        help=f"deepcad/n2v/n2v3d without --model: training steps ({STEPS_HELP}).",
    ),
    loss: str | None = typer.Option(
        None, "--loss", help=f"deepcad/n2v/n2v3d without --model: {LOSS_HELP}"
    ),
    patch: tuple[int, int, int] = typer.Option(
        (16, 64, 64), "--patch", help="deepcad/n2v/n2v3d: training patch T Y X."
    ),
    device: str = typer.Option("auto", "--device", help="Networks: auto, cpu or cuda."),
    mode: str = typer.Option(
        "2d", "--mode", help="2d: each frame alone; 3d: frames together (Z, else T)."
    ),
    sigma: float | None = typer.Option(
        None, "--sigma", help="gaussian: kernel standard deviation in pixels (default 1)."
    ),
    sigma_stack: float | None = typer.Option(
        None, "--sigma-stack", help="gaussian 3d: standard deviation along T or Z, planes."
    ),
    size: int | None = typer.Option(
        None, "--size", help="median: window width in pixels, odd (default 3)."
    ),
    noise_sigma: float | None = typer.Option(
        None,
        "--noise-sigma",
        help="bilateral/bm3d/bm4d: noise std in input units (estimated when omitted).",
    ),
    gain: float | None = typer.Option(
        None,
        "--gain",
        help="Variance-stabilise Poisson–Gaussian data first: gain in ADU per electron.",
    ),
    read_noise: float | None = typer.Option(
        None, "--read-noise", help="With --gain: read noise std in ADU."
    ),
    offset: float | None = typer.Option(
        None, "--offset", help="With --gain: camera offset in ADU."
    ),
    axes: str | None = typer.Option(
        None, "--axes", help="Axes of the input when the file does not say, e.g. TYX."
    ),
    dataset: str | None = typer.Option(None, "--dataset", help="Dataset path in an HDF5 file."),
    block: int = typer.Option(64, "--block", min=1, help="Frames processed at once."),
    dtype: str = typer.Option(
        "float32",
        "--dtype",
        help="float32: the denoised values as computed; same: the input's type (integers "
        "rounded and clipped: smaller files, but rounding costs ~1 dB at a few photons/pixel).",
    ),
    amp: str = typer.Option("auto", "--amp", help=f"Networks. {AMP_HELP}"),
    tta: bool = typer.Option(
        False,
        "--tta",
        help="Networks: average the predictions of flipped tiles (8x the prediction time).",
    ),
    tile: tuple[int, int, int] | None = typer.Option(
        None,
        "--tile",
        help="Networks: tile T|Z Y X fed to the network (default 32 128 128); larger tiles "
        "and batches keep a GPU busier.",
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", min=1, help="Networks: tiles per network call (default 2)."
    ),
    compile_network: bool = typer.Option(
        False, "--compile", help="Networks on CUDA: torch.compile the network first."
    ),
    blend_on: str | None = typer.Option(
        None,
        "--blend-on",
        help="Networks: where blocks are normalised, blended and cast: device (the "
        "default on CUDA: the host only reads and writes) or host (the default on the CPU).",
    ),
    serial_io: bool = typer.Option(
        False,
        "--serial-io",
        help="Read, compute and write one block after the other, instead of reading and "
        "writing in background threads while the filter or network computes (two blocks "
        "less memory).",
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing output file."),
    scheduler: str | None = None,
    cluster: Path | None = None,
) -> None:
    """Denoise INPUT into OUTPUT with a filter or a network, block by block (bounded memory)."""
    from rich.console import Console

    from cascope.denoise.stream import denoise_file

    request = validated(
        DenoiseRequest,
        {
            "method": method,
            "model": model,
            "loss": loss,
            "distributed": scheduler is not None or cluster is not None,
            "mode": mode,
            "tta": tta,
            "tile": tile,
            "batch_size": batch_size,
            "compile": compile_network,
            "blend_on": blend_on,
        },
    )
    if request.network:
        _denoise_deep(
            input_path,
            output,
            model=model,
            method=request.method,
            steps=steps,
            loss=loss,
            patch=patch,
            device=device,
            axes=axes,
            dataset=dataset,
            dtype=dtype,
            force=force,
            block=block,
            tta=tta,
            amp=amp,
            predict_options={
                "tile": tile,
                "batch_size": batch_size,
                "compile": compile_network,
                "blend_on": blend_on,
                "background_io": False if serial_io else None,
            },
        )
        return
    cfg = build_classical_config(
        {
            "method": request.method,
            "mode": mode,
            "sigma": sigma,
            "sigma_stack": sigma_stack,
            "size": size,
            "noise_sigma": noise_sigma,
            "gain": gain,
            "read_noise": read_noise,
            "offset": offset,
            "block": block,
            "dtype": dtype,
            "background_io": False if serial_io else None,
        }
    )
    if request.distributed:
        from cascope.study import denoise_distributed

        with dask_client(scheduler, cluster) as client:
            out, _ = denoise_distributed(
                input_path,
                output,
                config=cfg,
                client=client,
                axes=axes,
                dataset=dataset,
                force=force,
                progress=True,
            )
    else:
        out = denoise_file(
            input_path,
            output,
            config=cfg,
            axes=axes,
            dataset=dataset,
            force=force,
            progress=True,
        )
    Console(stderr=True).print(f"wrote {out}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``cascope denoise``."""
    app.command("denoise")(reads_recordings(_ON_DASK(denoise)))


def _denoise_deep(
    input_path: Path,
    output: Path,
    *,
    model: Path | None,
    method: str,
    steps: int | None,
    patch: tuple[int, int, int],
    device: str,
    axes: str | None,
    dtype: str,
    force: bool,
    block: int,
    dataset: str | None = None,
    tta: bool = False,
    amp: str = "auto",
    predict_options: dict[str, Any] | None = None,
    loss: str | None = None,
) -> None:
    """Run a trained model, or train a self-supervised one on the input first, then predict.

    ``predict_options`` holds further :class:`DeepPredictConfig` fields; ``None`` values keep
    the defaults.
    """
    from rich.console import Console

    from cascope.config.denoise import DENOISE_STEPS, DeepDenoiseConfig, DeepPredictConfig
    from cascope.denoise.deep import denoise_deep_file

    if model is None and method not in DEEP:
        raise typer.BadParameter(f"use one of {', '.join(DEEP)} or --model", param_hint="--method")
    train = None
    run: Any = model
    if model is not None and _is_package(model):
        run = _package_denoiser(model, input_path, axes=axes, dataset=dataset, device=device)
    if model is None:
        steps = steps or DENOISE_STEPS
        fields: dict[str, Any] = {
            "method": method,
            "patch": patch,
            "training": {"steps": steps, "val_every": min(100, steps), "amp": amp},
        }
        if loss is not None:
            fields["loss"] = loss
        train = DeepDenoiseConfig.model_validate(fields)
    out = denoise_deep_file(
        input_path,
        output,
        model=run,
        method=method,
        train=train,
        predict=DeepPredictConfig.model_validate(
            {
                "dtype": dtype,
                "block": block,
                "tta": tta,
                "amp": amp,
                **{k: v for k, v in (predict_options or {}).items() if v is not None},
            }
        ),
        axes=axes,
        dataset=dataset,
        device=device,
        force=force,
        progress=True,
    )
    Console(stderr=True).print(f"wrote {out}", highlight=False)


def _is_package(path: Path) -> bool:
    from cascope.models.package import is_package

    return is_package(path)


def _package_denoiser(
    package: Path, input_path: Path, *, axes: str | None, dataset: str | None, device: str
) -> Any:
    """Wrap a bioimage.io package as a denoiser; its sample statistics are INPUT's."""
    from cascope.config.denoise import DeepDenoiseConfig
    from cascope.denoise.deep import DeepDenoiser, read_recording
    from cascope.models.package import open_package

    movie = read_recording(input_path, axes=axes, dataset=dataset)
    pkg = open_package(package, axes=movie.axes)
    task = pkg.cascope.get("task", "denoise")
    if task != "denoise":
        from cascope.errors import InputError

        command = {"events": "detect", "segmentation": "segment"}.get(task, task)
        raise InputError(f"is a {task} package: run it with `cascope {command} --model`", package)
    net = pkg.network(data=movie, device="cuda" if device == "cuda" else "cpu")
    method = pkg.cascope.get("method") if pkg.cascope.get("task") == "denoise" else None
    cfg = DeepDenoiseConfig.model_validate(
        {"method": method or ("n2v" if pkg.ndim == 2 else "n2v3d"), "ndim": pkg.ndim}
    )
    # the package normalises and restores itself: cascope's own normalisation is the identity
    return DeepDenoiser(
        model=net, config=cfg, input_norm=(0.0, 1.0), output_norm=(0.0, 1.0), axes=movie.axes
    )
