"""Segmentation commands: preprocess, label, semantic, segment, measure, train segmenter."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer

from cascope.cli._apps import reads_recordings, train_app

log = logging.getLogger(__name__)


AXES_HELP = "Axes of the file when it does not say, e.g. ZYX or CZYX."


def _read_volume(
    path: Path, *, channel: int | None = None, axes: str | None = None
) -> tuple[Any, dict[str, float] | None]:
    """Read a (Z, Y, X) volume (one channel) and its voxel size."""
    import numpy as np

    from cascope.errors import InputError
    from cascope.io import check_finite, read

    movie = read(path, axes=axes, channel=channel, kind="volume")
    axes = movie.axes
    if "C" in axes and channel is None:
        raise InputError(f"the file has channels (axes {axes}); choose one with --channel", path)
    if "T" in axes and movie.shape[axes.index("T")] == 1:
        movie = movie.with_data(
            np.asarray(movie)[(slice(None),) * axes.index("T") + (0,)], axes.replace("T", "")
        )
        axes = movie.axes
    if axes not in ("ZYX", "YX"):
        raise InputError(
            f"expected a Z, Y, X volume, got axes {axes!r} (give --axes when the file does not "
            "record them)",
            path,
        )
    data = np.asarray(movie)
    if axes == "YX":
        data = data[None]
    check_finite(data, path=path, axis="Z")  # here the message can name the file
    return data, movie.voxel_size


#: Suffixes of the figures ``measure --figure`` writes (matplotlib, by suffix).
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def _write(path: Path, data: Any, *, inputs: list[Path], force: bool, voxel: Any = None) -> None:
    from cascope.io import write

    write(path, data, axes="ZYX", voxel_size=voxel, inputs=inputs, force=force)


def preprocess(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="Raw (Z, Y, X) stack."),
    output: Path = typer.Option(..., "--output", "-o", help="Preprocessed stack (same dtype)."),
    channel: int | None = typer.Option(None, help="Channel to use in a multichannel file."),
    axes: str | None = typer.Option(None, help=AXES_HELP),
    slice_denoiser: str = typer.Option("bm3d", help="bm3d, gaussian, median or none."),
    stack: str = typer.Option(
        "auto", help="auto (by foreground density), bm4d, bilateral, gaussian or none."
    ),
    density_threshold: float = typer.Option(
        0.15, help="Foreground fraction above which 'auto' picks bilateral instead of bm4d."
    ),
    tophat: tuple[float, float, float] = typer.Option(
        (2.0, 10.0, 10.0), help="Top-hat radii Z Y X in voxels."
    ),
    no_tophat: bool = typer.Option(False, help="Skip background removal."),
    force: bool = typer.Option(False, help="Replace an existing output."),
) -> None:
    """Denoise slice by slice, then as a stack (BM4D or bilateral), then top-hat."""
    from rich.console import Console

    from cascope.config.segment import SegmentPreprocessConfig
    from cascope.segment import preprocess_volume

    cfg = SegmentPreprocessConfig.model_validate(
        {
            "slice_denoiser": slice_denoiser,
            "stack": stack,
            "density_threshold": density_threshold,
            "tophat_radius": None if no_tophat else tophat,
        }
    )
    vol, voxel = _read_volume(input_path, channel=channel, axes=axes)
    out, info = preprocess_volume(vol, config=cfg)
    _write(output, out, inputs=[input_path], force=force, voxel=voxel)
    Console().print(
        f"{output}: {info['slice_denoiser']} per slice, {info['stack']} over the stack "
        f"(foreground density {info['density']:.3f})"
    )


def label(
    input_path: Path = typer.Argument(
        ..., metavar="INPUT", help="Raw stack (or a preprocessed one with --method otsu)."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Instance labels (.tif)."),
    channel: int | None = typer.Option(None, help="Channel to use in a multichannel file."),
    axes: str | None = typer.Option(None, help=AXES_HELP),
    method: str = typer.Option(
        "seed",
        help="seed (the default chain for a raw stack: denoise, recipe by foreground "
        "fraction, top-hat, threshold), or a plain threshold: constant, otsu, triangle, li.",
    ),
    value: float | None = typer.Option(None, help="Threshold for --method constant."),
    connectivity: int = typer.Option(26, help="6, 18 or 26."),
    min_size: int = typer.Option(1000, min=0, help="Smallest component kept (voxels)."),
    stats: Path | None = typer.Option(
        None, help="Also write per-label statistics (.csv or .parquet)."
    ),
    edges: Path | None = typer.Option(None, help="Also write the Sobel edge map."),
    force: bool = typer.Option(False, help="Replace existing outputs."),
) -> None:
    """Semi-automatic labels: (seed chain,) threshold, 3D connected components, minimum size."""
    from rich.console import Console

    from cascope.config.segment import LabelConfig
    from cascope.io import check_outputs
    from cascope.morphology import write_table
    from cascope.segment import label_statistics, label_volume, seed_labels, sobel_edges

    cfg = LabelConfig.model_validate(
        {"method": method, "value": value, "connectivity": connectivity, "min_size": min_size}
    )
    outputs = [("--output", output, "image"), ("--stats", stats, "table")]
    outputs.append(("--edges", edges, "image"))
    check_outputs(outputs, inputs=[input_path], force=force)
    vol, voxel = _read_volume(input_path, channel=channel, axes=axes)
    recipe = ""
    if cfg.method == "seed":
        known = voxel is not None and all(a in voxel for a in "ZYX")
        size = tuple(float(voxel[a]) for a in "ZYX") if known and voxel else None
        lab, info = seed_labels(
            vol,
            voxel_size=size,  # type: ignore[arg-type]
            connectivity=cfg.connectivity,
            min_size=cfg.min_size,
        )
        recipe = (
            f" ({info['recipe']} field: foreground fraction {info['density']:.3f}; "
            f"{info['stack']} over the stack; lengths in {'µm' if size else 'voxels'})"
        )
    else:
        lab = label_volume(
            vol,
            method=cfg.method,
            value=cfg.value,
            connectivity=cfg.connectivity,
            min_size=cfg.min_size,
        )
    _write(output, lab, inputs=[input_path], force=force, voxel=voxel)
    if stats is not None:
        write_table(label_statistics(lab, vol), stats, force=force)
    if edges is not None:
        _write(edges, sobel_edges(vol), inputs=[input_path], force=force, voxel=voxel)
    Console().print(f"{output}: {int(lab.max())} labels{recipe}")


def semantic(
    labels: Path = typer.Argument(..., metavar="LABELS", help="Instance labels."),
    output: Path = typer.Option(..., "--output", "-o", help="Classes 0/1/2 (.tif)."),
    border: int = typer.Option(1, help="Border thickness (voxels)."),
    planes: str = typer.Option("yz", help="yz (ring within y-z planes) or all."),
    axes: str | None = typer.Option(None, help=AXES_HELP),
    force: bool = typer.Option(False, help="Replace an existing output."),
) -> None:
    """Convert instance labels into background (0) / axon (1) / border (2)."""
    import numpy as np
    from rich.console import Console

    from cascope.config.segment import SemanticConfig
    from cascope.segment import instances_to_semantic

    cfg = SemanticConfig.model_validate({"border": border, "planes": planes})
    lab, voxel = _read_volume(labels, axes=axes)
    sem = instances_to_semantic(lab, border=cfg.border, planes=cfg.planes)
    _write(output, sem, inputs=[labels], force=force, voxel=voxel)
    counts = np.bincount(sem.ravel(), minlength=3)
    Console().print(f"{output}: background {counts[0]}, axon {counts[1]}, border {counts[2]}")


def segment(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="Raw (Z, Y, X) stack."),
    model: Path = typer.Option(
        ...,
        "--model",
        help="Model folder from 'train segmenter', or its bioimage.io package.",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Instance labels (.tif)."),
    semantic_out: Path | None = typer.Option(None, help="Also write the classes 0/1/2."),
    channel: int | None = typer.Option(None, help="Channel to use in a multichannel file."),
    axes: str | None = typer.Option(None, help=AXES_HELP),
    min_size: int | None = typer.Option(None, min=0, help="Smallest instance kept (voxels)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    force: bool = typer.Option(False, help="Replace existing outputs."),
) -> None:
    """Predict classes with blended sliding windows, then instances."""
    from rich.console import Console

    from cascope.io import check_outputs
    from cascope.segment import segment_volume

    outputs = [("--output", output, "image"), ("--semantic-out", semantic_out, "image")]
    check_outputs(outputs, inputs=[input_path, model], force=force)
    vol, voxel = _read_volume(input_path, channel=channel, axes=axes)
    inst, sem = segment_volume(model, vol, min_size=min_size, device=device)
    _write(output, inst, inputs=[input_path], force=force, voxel=voxel)
    if semantic_out is not None:
        _write(semantic_out, sem, inputs=[input_path], force=force, voxel=voxel)
    Console().print(f"{output}: {int(inst.max())} instances")


def measure(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="The image (1 or 2 channels)."),
    labels: Path = typer.Option(..., "--labels", help="Instance labels."),
    output: Path = typer.Option(..., "--output", "-o", help="Table (.parquet or .csv)."),
    axes: str | None = typer.Option(None, help=AXES_HELP),
    fret_channels: tuple[int, int] | None = typer.Option(
        None, help="Donor and acceptor channel indices (FRET ratio readout)."
    ),
    figure: Path | None = typer.Option(None, help="Also write a figure (.png, .pdf)."),
    force: bool = typer.Option(False, help="Replace existing outputs."),
) -> None:
    """Per-structure length, branches, volume, diameter, tortuosity (and FRET ratio).

    Columns with a unit name it: ``length_um`` when the labels record their voxel size,
    ``length_voxels`` when they do not.
    """
    import numpy as np
    from rich.console import Console

    from cascope.errors import InputError
    from cascope.io import check_outputs
    from cascope.morphology import measure_structures, plot_measurements, write_table
    from cascope.morphology.measure import with_units

    if figure is not None and figure.suffix.lower() not in FIGURE_SUFFIXES:
        raise InputError(
            f"a figure is written as {', '.join(FIGURE_SUFFIXES)}; choose one of them for --figure",
            figure,
        )
    outputs = [("--output", output, "table"), ("--figure", figure, "file")]
    check_outputs(outputs, inputs=[input_path, labels], force=force)

    lab, voxel = _read_volume(labels, axes=axes)
    if not np.issubdtype(lab.dtype, np.integer):
        raise InputError(f"labels must be integers, got {lab.dtype}", labels)
    if lab.size and lab.min() < 0:
        raise InputError("labels must not be negative (relabel the image)", labels)
    if lab.size and int(lab.max()) > 2**31 - 1:
        top = int(lab.max())
        raise InputError(f"label id {top} is absurdly large (relabel the image)", labels)
    vs = tuple((voxel or {}).get(a, 1.0) for a in "ZYX")
    donor = acceptor = None
    if fret_channels is not None:
        donor, _ = _read_volume(input_path, channel=fret_channels[0], axes=axes)
        acceptor, _ = _read_volume(input_path, channel=fret_channels[1], axes=axes)
        image = donor
    else:
        # the image is read (and checked) whatever is measured: the intensities in each
        # structure are part of the table, and a junk image must not pass unnoticed
        from cascope.io import read

        opened = read(input_path, axes=axes, kind="volume")
        first = 0 if "C" in opened.axes else None
        image, _ = _read_volume(input_path, channel=first, axes=axes)
    if image.shape != lab.shape:
        raise InputError(
            f"the labels {labels.name} have shape {lab.shape}, the image {image.shape}: "
            "give the labels of this image",
            input_path,
        )
    table, dists = measure_structures(lab, donor=donor, acceptor=acceptor, voxel_size=vs)
    if len(table):
        from scipy import ndimage

        ids = table["label"].to_numpy()
        table["mean_intensity"] = ndimage.mean(image, labels=lab, index=ids)
    known = voxel is not None and all(a in voxel for a in "ZYX")
    write_table(with_units(table, micrometres=known), output, force=force)
    if figure is not None:
        plot_measurements(table, figure, distributions=dists, force=force)
    unit = "µm (from the voxel size)" if known else "voxels (the file records no voxel size)"
    Console().print(f"{output}: {len(table)} structures measured; lengths in {unit}")


def train_segmenter_cmd(
    images: list[Path] = typer.Argument(..., metavar="IMAGES", help="Training volumes."),
    labels: list[Path] = typer.Option(..., "--labels", help="Label volume per image."),
    output: Path = typer.Option(..., "--output", "-o", help="Model folder to write."),
    arch: str = typer.Option("unet", help="unet or vgg16-unet."),
    label_kind: str = typer.Option("auto", help="auto, semantic (0/1/2) or instance."),
    steps: int = typer.Option(500, help="Optimiser steps."),
    patch: tuple[int, int, int] = typer.Option((16, 64, 64), help="Patch Z Y X."),
    planes: str = typer.Option("yz", help="Border ring of instance labels: yz or all."),
    no_augment: bool = typer.Option(False, help="Switch augmentation off."),
    channel: int | None = typer.Option(None, help="Channel to use in multichannel images."),
    axes: str | None = typer.Option(None, help=AXES_HELP),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    resume: bool = typer.Option(False, help="Continue from the last checkpoint."),
    force: bool = typer.Option(False, help="Replace an existing model folder."),
) -> None:
    """Train a 3-class (background / axon / border) segmenter."""
    from rich.console import Console

    from cascope.config.segment import SegmenterConfig
    from cascope.errors import InputError
    from cascope.models import count_parameters
    from cascope.segment import train_segmenter

    if len(labels) != len(images):
        raise InputError(f"give one --labels per image ({len(images)} images, {len(labels)})")
    from cascope.io import check_output
    from cascope.models.checkpoint import CONFIG, WEIGHTS

    check_output(output, inputs=[*images, *labels], force=force, holds=(CONFIG, WEIGHTS))
    cfg = SegmenterConfig.model_validate(
        {
            "arch": arch,
            "patch": patch,
            "semantic": {"planes": planes},
            "augment": {"enabled": not no_augment},
            "training": {"steps": steps},
        }
    )
    vols = [_read_volume(p, channel=channel, axes=axes)[0] for p in images]
    labs = [_read_volume(p, axes=axes)[0] for p in labels]
    model, result = train_segmenter(
        vols,
        labs,
        config=cfg,
        label_kind=label_kind,  # type: ignore[arg-type]
        output=output,
        resume=resume,
        progress=True,
        device=device,
        force=force,
    )
    Console().print(
        f"{output}: {arch}, {count_parameters(model)} parameters, {result.steps_done} steps "
        f"in {result.seconds:.1f} s, final loss {result.losses[-1]:.4f}"
    )


def register(app: typer.Typer) -> None:
    """Add the segmentation commands and ``train segmenter``."""
    app.command("preprocess")(reads_recordings(preprocess))
    app.command("label")(reads_recordings(label))
    app.command("semantic")(reads_recordings(semantic))
    app.command("segment")(reads_recordings(segment))
    app.command("measure")(reads_recordings(measure))
    train_app.command("segmenter")(reads_recordings(train_segmenter_cmd))
