"""Event commands: ``detect``, ``features``, ``compare`` and ``train events``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cascope.cli._apps import dask_client, on_dask, reads_recordings, train_app, validated

#: ``--scheduler`` and ``--cluster`` of ``cascope detect``.
_ON_DASK = on_dask(
    "Run the blocks on this Dask scheduler (tcp://HOST:8786 or a scheduler file); "
    "the workers write --labels-out, an OME-Zarr, themselves.",
    "As --scheduler, on a cluster.yaml queue (dask-jobqueue).",
)


def _movie(path: Path, axes: str | None = None, dataset: str | None = None) -> Any:
    """Open a (T, Y, X) recording lazily; a simulation folder means its ``noisy.tif``."""
    from cascope.pipeline import read_movie

    return read_movie(path, axes=axes, dataset=dataset)


def _labels(path: Path, *, lazy: bool = False) -> Any:
    """Read a label movie (a simulation folder means its ``labels.tif``); ``lazy``: unread."""
    import numpy as np

    from cascope.io import read

    if path.is_dir() and (path / "labels.tif").is_file():
        path = path / "labels.tif"
    movie = read(path, kind="movie")
    if not np.issubdtype(movie.dtype, np.integer):
        from cascope.errors import InputError

        raise InputError(f"labels must be integers, got {movie.dtype}", path)
    return movie if lazy else np.asarray(movie)


def _detect_on_cluster(
    input_path: Path,
    output: Path,
    *,
    model: Path | None,
    threshold: float | str,
    labels_out: Path | None,
    features: bool,
    block: int,
    device: str,
    axes: str | None,
    dataset: str | None,
    force: bool,
    scheduler: str | None,
    cluster: Path | None,
) -> Any:
    """``cascope detect --scheduler/--cluster``: the movie's blocks on Dask workers."""
    from cascope.config.events import DetectConfig
    from cascope.errors import InputError

    if features:
        raise InputError(
            "--features with --scheduler/--cluster: write --labels-out LABELS.ome.zarr and run "
            "cascope features INPUT LABELS.ome.zarr"
        )
    from cascope.study import detect_distributed

    cfg = DetectConfig.model_validate({"threshold": threshold, "block": block, "device": device})
    with dask_client(scheduler, cluster) as client:
        return detect_distributed(
            input_path,
            output,
            model=model,
            client=client,
            config=cfg,
            labels_path=labels_out,
            axes=axes,
            dataset=dataset,
            force=force,
            progress=True,
        )


def detect(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="(T, Y, X) movie."),
    output: Path = typer.Option(..., "--output", "-o", help="Event table (.csv or .parquet)."),
    model: Path | None = typer.Option(
        None,
        "--model",
        help="Event model folder, or a bioimage.io package of one (cascope export); "
        "without it the intensity-threshold detector runs.",
    ),
    threshold: str = typer.Option(
        "auto", "--threshold", help="'auto' (the model's) or a probability / z-score."
    ),
    labels_out: Path | None = typer.Option(None, "--labels-out", help="Event label movie."),
    features: bool = typer.Option(False, "--features", help="Add every event feature."),
    frame_rate: float | None = typer.Option(None, "--frame-rate", help="Hz (for seconds)."),
    block: int = typer.Option(256, "--block", min=1, help="Frames per streamed block."),
    axes: str | None = typer.Option(None, "--axes", help="Axes when the file lacks them."),
    dataset: str | None = typer.Option(None, "--dataset", help="Dataset in an HDF5 file."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    force: bool = typer.Option(False, "--force", help="Replace existing outputs."),
    scheduler: str | None = None,
    cluster: Path | None = None,
) -> None:
    """Detect calcium events; write a table with weighted centroids t, y, x.

    With a model, the movie is streamed in blocks of ``--block`` frames and the label movie
    (for ``--labels-out`` or ``--features``) is kept on disk beside the output, so memory
    does not grow with the length of the movie.
    """
    import math

    from rich.console import Console

    from cascope.config.pipeline import EventsStep
    from cascope.errors import InputError
    from cascope.io import check_outputs
    from cascope.pipeline import detect_to_files

    movie = _movie(input_path, axes, dataset)
    outputs = [("--output", output, "table"), ("--labels-out", labels_out, "image")]
    check_outputs(outputs, inputs=[input_path], force=force)
    step = validated(EventsStep, {"model": model, "threshold": threshold, "features": features})
    thr = step.threshold
    if frame_rate is not None and not (math.isfinite(frame_rate) and frame_rate > 0):
        raise InputError(f"--frame-rate must be a positive number of Hz, got {frame_rate:g}")
    if scheduler is not None or cluster is not None:
        table = _detect_on_cluster(
            input_path,
            output,
            model=model,
            threshold=thr,
            labels_out=labels_out,
            features=features,
            block=block,
            device=device,
            axes=axes,
            dataset=dataset,
            force=force,
            scheduler=scheduler,
            cluster=cluster,
        )
        Console().print(f"{len(table)} events -> {output}")
        return
    table = detect_to_files(
        movie,
        output,
        model=model,
        threshold=thr,
        labels_path=labels_out,
        features=features,
        frame_rate=frame_rate,
        block=block,
        device=device,
        inputs=[input_path],
        force=force,
    )
    Console().print(f"{len(table)} events -> {output}")


def features_cmd(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="(T, Y, X) movie."),
    labels_path: Path = typer.Argument(..., metavar="LABELS", help="Event label movie."),
    output: Path = typer.Option(..., "--output", "-o", help="Table (.csv or .parquet)."),
    frame_rate: float | None = typer.Option(None, "--frame-rate", help="Hz."),
    rois: Path | None = typer.Option(
        None, "--rois", help="ROIs: ImageJ .zip/.roi, label image, JSON pixels, stat.npy."
    ),
    offset: float = typer.Option(0.0, "--offset", help="Camera dark level to subtract."),
    condition: str | None = typer.Option(None, "--condition", help="Tag every row."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output."),
) -> None:
    """Measure every event of a label movie (kinetics, size, shape, neighbours)."""
    from rich.console import Console

    from cascope.events.features import event_features, write_table
    from cascope.io import check_outputs
    from cascope.io.rois import read_rois

    check_outputs([("--output", output, "table")], inputs=[input_path, labels_path], force=force)
    from cascope.errors import InputError

    movie = _movie(input_path)
    roi_img = None if rois is None else read_rois(rois, tuple(movie.shape[1:])).labels()
    try:
        table = event_features(
            movie,
            _labels(labels_path, lazy=True),
            frame_rate=frame_rate or movie.frame_rate,
            rois=roi_img,
            offset=offset,
        )
    except InputError as err:
        if err.path is not None:
            raise
        # the movie's problem (NaN planes, a shape unlike the labels'): name its file
        raise InputError(f"{err.problem} (labels: {labels_path.name})", input_path) from err
    if condition is not None:
        table.insert(0, "condition", condition)
    write_table(table, output, force=force, inputs=[input_path, labels_path])
    Console().print(f"{len(table)} events -> {output}")


def compare(
    tables: list[Path] = typer.Argument(..., metavar="TABLES...", help="Event tables."),
    output: Path = typer.Option(..., "--output", "-o", help="Report folder."),
    by: str = typer.Option(
        "condition", "--by", help="Condition column (missing: each file's name)."
    ),
    features: str | None = typer.Option(None, "--features", help="Comma-separated."),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level."),
    correction: str = typer.Option("holm", "--correction", help="holm|bonferroni|fdr_bh|none"),
    paired_by: str | None = typer.Option(None, "--paired-by", help="Unit column (cell)."),
    unit: str | None = typer.Option(
        None,
        "--unit",
        help="Statistical unit column, e.g. recording (each TABLE is one unless it has "
        "the column): features are summarised per unit and units compared. Default: events.",
    ),
) -> None:
    """Compare event features between conditions; write statistics and figures.

    A table without the --by column takes its condition from its file name, or from its
    folder's name when several tables share one file name (a/events.csv, b/events.csv).
    """
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    from cascope.errors import InputError
    from cascope.events.features import read_table
    from cascope.report.comparison import compare_report

    if correction not in ("holm", "bonferroni", "fdr_bh", "none"):
        raise InputError(f"unknown --correction {correction!r}")
    stems = [p.stem for p in tables]
    frames = []
    for p in tables:
        t = read_table(p)
        if by not in t.columns:
            t[by] = p.parent.resolve().name if stems.count(p.stem) > 1 else p.stem
        if "recording" not in t.columns:
            t["recording"] = str(p)
        frames.append(t)
    table = pd.concat(frames, ignore_index=True)
    feats = [f.strip() for f in features.split(",")] if features else None
    summary = compare_report(
        table,
        output,
        by=by,
        features=feats,
        alpha=alpha,
        correction=correction,  # type: ignore[arg-type]
        paired_by=paired_by,
        unit=unit,
    )
    stats = pd.read_csv(output / "statistics.csv")
    view = Table("feature", "test", "p (adjusted)", "effect", "significant")
    for r in stats.itertuples():
        view.add_row(
            str(r.feature),
            str(r.test),
            f"{r.p_adjusted:.3g}",
            f"{r.effect_size:.3g} ({r.effect_measure})",
            "yes" if r.significant else "",
        )
    Console().print(view)
    n = ", ".join(f"{k}: {v}" for k, v in summary["n"].items())
    Console().print(f"unit: {summary['unit']} (n {n})", highlight=False)
    Console().print(f"report -> {output} ({len(summary['figures'])} figures)")


def train_events(
    inputs: list[Path] = typer.Argument(
        None, metavar="INPUT...", help="Movies (or `cascope simulate mscts` folders)."
    ),
    labels: list[Path] = typer.Option(
        [], "--labels", help="Label movie per INPUT (simulation folders bring their own)."
    ),
    hdf5: Path | None = typer.Option(None, "--hdf5", help="mSCT HDF5 training file instead."),
    output: Path = typer.Option(..., "--output", "-o", help="Model folder."),
    steps: int = typer.Option(1000, "--steps", help="Optimiser steps."),
    unlabeled_ratio: str = typer.Option("1", "--unlabeled-ratio", help="0,1,2,4.. or complete"),
    pu: str = typer.Option("nnpu", "--pu", help="nnpu or sampling."),
    label_coverage: float = typer.Option(
        1.0,
        "--label-coverage",
        help="Fraction of events labelled; sets the PU class prior and the threshold tuning.",
    ),
    window: tuple[int, int, int] = typer.Option((32, 32, 32), "--window", help="Crop T Y X."),
    base: int = typer.Option(16, "--base", help="U-Net base width."),
    depth: int = typer.Option(3, "--depth", help="U-Net levels."),
    valid_fraction: float = typer.Option(
        0.0,
        "--valid-fraction",
        help="Hold out this last share of each movie for the threshold.",
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint."),
    seed: int = typer.Option(0, "--seed", help="Seed."),
    force: bool = typer.Option(False, "--force", help="Replace the model folder."),
) -> None:
    """Train the event-detection 3D U-Net with positive-unlabeled learning."""
    from rich.console import Console

    from cascope.config.events import EventTrainConfig
    from cascope.config.training import TrainingConfig
    from cascope.errors import InputError
    from cascope.events.train import train_event_detector, train_from_msct_h5

    cfg = validated(
        EventTrainConfig,
        {
            "window": window,
            "model": {"depth": depth, "base": base},
            "pu": {
                "mode": pu,
                "unlabeled_ratio": unlabeled_ratio,
                "label_coverage": label_coverage,
            },
            "training": TrainingConfig(
                steps=steps, batch_size=4, seed=seed, val_every=max(1, min(100, steps))
            ),
        },
    )
    from cascope.io import check_output
    from cascope.models.checkpoint import CONFIG, WEIGHTS

    sources = [*(inputs or []), *(labels or []), *([hdf5] if hdf5 is not None else [])]
    check_output(output, inputs=sources, force=force, holds=(CONFIG, WEIGHTS))
    common = {
        "output": output,
        "resume": resume,
        "progress": True,
        "device": device,
        "force": force,
    }
    if hdf5 is not None:
        model, result = train_from_msct_h5(hdf5, config=cfg, **common)  # type: ignore[arg-type]
    else:
        if not inputs:
            raise InputError("give INPUT movies with --labels, or --hdf5 FILE")
        if labels and len(labels) != len(inputs):
            raise InputError(f"give one --labels per INPUT ({len(labels)} vs {len(inputs)})")
        import numpy as np

        from cascope.io import check_finite

        movies = [np.asarray(_movie(p)) for p in inputs]
        for movie, path in zip(movies, inputs, strict=True):
            check_finite(movie, path=path, axis="T")  # NaN would train a broken network
        labs = [_labels(p) for p in (labels or inputs)]
        valid = None
        if valid_fraction > 0:
            cut = [int(m.shape[0] * (1 - valid_fraction)) for m in movies]
            valid = (
                [m[c:] for m, c in zip(movies, cut, strict=True)],
                [lab[c:] for lab, c in zip(labs, cut, strict=True)],
            )
            movies = [m[:c] for m, c in zip(movies, cut, strict=True)]
            labs = [lab[:c] for lab, c in zip(labs, cut, strict=True)]
        model, result = train_event_detector(movies, labs, config=cfg, valid=valid, **common)  # type: ignore[arg-type]
    Console().print(
        f"trained {result.steps_done} steps in {result.seconds:.1f} s, threshold "
        f"{model.threshold:.2f} -> {output}"
    )


def register(app: typer.Typer) -> None:
    """Add ``detect``, ``features``, ``compare`` and ``train events``."""
    app.command("detect")(reads_recordings(_ON_DASK(detect)))
    app.command("features")(reads_recordings(features_cmd))
    app.command("compare")(compare)
    train_app.command("events")(reads_recordings(train_events))
