"""``cascope evaluate denoise|segmentation|events``: score a result against ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cascope.cli._apps import evaluate_app, reads_recordings

_JSON = typer.Option(None, "--json", help="Also write the scores as JSON here.")
_FORCE = typer.Option(False, "--force", help="Replace an existing JSON file.")


def _read_array(path: Path, axes: str | None, kind: Any = None) -> Any:
    import numpy as np

    from cascope.io import check_finite, read

    data = np.asarray(read(path, axes=axes, kind=kind).to_numpy())
    check_finite(data, path=path)  # a NaN would make every score NaN
    return data


def _same_shape(a: Any, b: Any, pa: Path, pb: Path) -> None:
    from cascope.errors import InputError

    if a.shape != b.shape:
        raise InputError(f"shape {a.shape} differs from {pb.name}'s {b.shape}", pa)


def _emit(
    title: str,
    rows: list[tuple[str, str]],
    payload: dict[str, Any],
    json_out: Path | None,
    inputs: list[Path],
    force: bool,
) -> None:
    from rich.console import Console
    from rich.table import Table

    from cascope import _json as strict_json
    from cascope.io import atomic_output, check_output

    if json_out is not None:
        check_output(json_out, inputs=inputs, force=force)
    table = Table(title=title)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
    if json_out is not None:
        with atomic_output(json_out, inputs=inputs, force=force) as tmp:
            tmp.write_text(strict_json.dumps(payload, indent=2))


def _read_events(path: Path) -> Any:
    import numpy as np
    import pandas as pd

    from cascope.errors import InputError

    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read the event table: {err}", path) from err
    missing = [c for c in ("t", "y", "x") if c not in table.columns]
    if missing:
        raise InputError(f"event table lacks column(s) {missing}", path)
    for column in ("t", "y", "x", "score"):
        if column not in table.columns:
            continue
        values = pd.to_numeric(table[column], errors="coerce")
        bad = ~np.isfinite(values.to_numpy(dtype=np.float64))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"column {column!r} holds {int(bad.sum())} value(s) that are not finite numbers "
                f"(first: {table[column].iloc[row]!r} on data row {row + 1})",
                path,
            )
        table[column] = values.astype(np.float64)
    return table


def denoise(
    pred: Path = typer.Argument(..., help="Denoised recording."),
    reference: Path = typer.Option(..., "--reference", "-r", help="Clean ground truth."),
    noisy: Path | None = typer.Option(
        None, "--input", help="The noisy input, for the SI-PSNR improvement."
    ),
    data_range: float | None = typer.Option(
        None, "--data-range", help="PSNR/SSIM data range (default: the reference's range)."
    ),
    axes: str | None = typer.Option(None, "--axes", help="Axes when the files do not say."),
    json_out: Path | None = _JSON,
    force: bool = _FORCE,
) -> None:
    """PSNR, SSIM and SI-PSNR (per frame, mean ± std) of a denoised recording."""
    import numpy as np

    from cascope import metrics
    from cascope.errors import InputError

    p = _read_array(pred, axes, "movie").astype(np.float64)
    r = _read_array(reference, axes, "movie").astype(np.float64)
    _same_shape(p, r, pred, reference)
    rng = float(np.ptp(r)) if data_range is None else data_range
    if not rng > 0:
        what = f"--data-range {data_range:g}" if data_range is not None else "the reference"
        raise InputError(
            f"{what}: PSNR and SSIM need a positive data range (a constant reference has "
            "none: give --data-range)",
            reference,
        )
    frames = p.ndim >= 3
    si = (
        metrics.si_psnr_per_frame(p, r)
        if frames
        else metrics.FrameScores.of([metrics.si_psnr(p, r)])
    )
    payload: dict[str, Any] = {
        "prediction": str(pred),
        "reference": str(reference),
        "data_range": rng,
        "psnr": metrics.psnr(p, r, data_range=rng),
        "ssim": metrics.ssim(p, r, data_range=rng),
        "si_psnr": si.to_dict(),
    }
    rows = [
        ("PSNR (dB)", f"{payload['psnr']:.3f}"),
        ("SSIM", f"{payload['ssim']:.4f}"),
        ("SI-PSNR (dB, per frame)", str(si)),
    ]
    inputs = [pred, reference]
    if noisy is not None:
        n = _read_array(noisy, axes, "movie").astype(np.float64)
        _same_shape(n, r, noisy, reference)
        imp = metrics.si_psnr_improvement(p, n, r, axis=0 if frames else None)
        payload["input"] = str(noisy)
        payload["input_psnr"] = metrics.psnr(n, r, data_range=rng)
        payload["si_psnr_improvement"] = imp.to_dict()
        rows += [
            ("input PSNR (dB)", f"{payload['input_psnr']:.3f}"),
            ("SI-PSNR improvement (dB)", str(imp)),
        ]
        inputs.append(noisy)
    _emit(f"denoising: {pred.name} vs {reference.name}", rows, payload, json_out, inputs, force)


def segmentation(
    pred: Path = typer.Argument(..., help="Predicted class or instance labels."),
    reference: Path = typer.Option(..., "--reference", "-r", help="True labels."),
    instances: bool = typer.Option(
        False, "--instances", help="Labels are instances: match them one-to-one by IoU."
    ),
    iou: float = typer.Option(0.5, "--iou", help="IoU threshold of an instance match."),
    n_classes: int | None = typer.Option(
        None, "--classes", help="Number of classes (default: largest label + 1)."
    ),
    axes: str | None = typer.Option(None, "--axes", help="Axes when the files do not say."),
    json_out: Path | None = _JSON,
    force: bool = _FORCE,
) -> None:
    """Per-class precision/recall/F1/IoU, or instance matching F1 with --instances."""
    import numpy as np

    from cascope import metrics
    from cascope.errors import InputError

    p = _read_array(pred, axes, "volume")
    t = _read_array(reference, axes, "volume")
    _same_shape(p, t, pred, reference)
    for arr, path in ((p, pred), (t, reference)):
        if not np.issubdtype(arr.dtype, np.integer):
            raise InputError(f"labels must be integers, got {arr.dtype}", path)
    if instances and not 0 < iou <= 1:
        raise InputError(f"--iou {iou:g} must be in (0, 1]", pred)
    if n_classes is not None and n_classes < 2:
        raise InputError(f"--classes {n_classes} must be at least 2", pred)
    for arr, path in ((p, pred), (t, reference)):
        if arr.size and arr.min() < 0:
            raise InputError("labels must not be negative (relabel the image)", path)
    payload: dict[str, Any] = {"prediction": str(pred), "reference": str(reference)}
    if instances:
        m = metrics.match_instances(p, t, iou_threshold=iou)
        payload["instances"] = m.to_dict()
        rows = [
            ("true instances", str(m.tp + m.fn)),
            ("predicted instances", str(m.tp + m.fp)),
            (f"matched (IoU ≥ {iou:g})", str(m.tp)),
            ("precision", f"{m.precision:.4f}"),
            ("recall", f"{m.recall:.4f}"),
            ("F1", f"{m.f1:.4f}"),
            ("mean matched IoU", f"{m.mean_score:.4f}"),
        ]
    else:
        top = int(max(p.max(initial=0), t.max(initial=0)))
        k = n_classes or top + 1
        if k > metrics.MAX_CLASSES:
            raise InputError(
                f"{k} classes (largest label {top}): a class map holds at most "
                f"{metrics.MAX_CLASSES}; score instance labels with --instances",
                pred if int(p.max(initial=0)) == top else reference,
            )
        try:
            rep = metrics.classification_report(p, t, n_classes=k)
        except ValueError as err:
            raise InputError(str(err), pred) from err
        payload["classes"] = rep.to_dict()
        rows = [
            (
                f"class {name}: P / R / F1 / IoU",
                " / ".join(
                    "—" if not np.isfinite(v) else f"{v:.3f}"
                    for v in (rep.precision[i], rep.recall[i], rep.f1[i], rep.iou[i])
                ),
            )
            for i, name in enumerate(rep.names)
        ]
        rows += [("mean IoU", f"{rep.mean_iou:.4f}"), ("accuracy", f"{rep.accuracy:.4f}")]
    _emit(
        f"segmentation: {pred.name} vs {reference.name}",
        rows,
        payload,
        json_out,
        [pred, reference],
        force,
    )


def events(
    pred: Path = typer.Argument(..., help="Detected events, CSV with t, y, x (and score)."),
    reference: Path = typer.Option(..., "--reference", "-r", help="True events (CSV)."),
    max_distance: float = typer.Option(
        6.0, "--max-distance", help="A match is closer than this (frames/pixels)."
    ),
    json_out: Path | None = _JSON,
    force: bool = _FORCE,
) -> None:
    """Event matching by centroid distance (P/R/F1), and AP when PRED has a score column."""
    import math

    from cascope import metrics
    from cascope.errors import InputError

    if not (math.isfinite(max_distance) and max_distance > 0):
        raise InputError(f"--max-distance {max_distance:g} must be a positive number")
    p = _read_events(pred)
    t = _read_events(reference)
    try:
        m = metrics.match_events(p, t, max_distance=max_distance)
    except ValueError as err:  # too many candidate pairs for this distance
        raise InputError(f"{err} (--max-distance)", pred) from err
    payload: dict[str, Any] = {
        "prediction": str(pred),
        "reference": str(reference),
        "max_distance": max_distance,
        "matching": m.to_dict(),
    }
    rows = [
        ("true events", str(m.tp + m.fn)),
        ("detected events", str(m.tp + m.fp)),
        (f"matched (< {max_distance:g})", str(m.tp)),
        ("precision", f"{m.precision:.4f}"),
        ("recall", f"{m.recall:.4f}"),
        ("F1", f"{m.f1:.4f}"),
    ]
    if "score" in p.columns:
        ap = metrics.average_precision(p, p["score"], t, max_distance=max_distance)
        payload["average_precision"] = ap.to_dict()
        rows.append(("average precision", f"{ap.ap:.4f}"))
    _emit(
        f"events: {pred.name} vs {reference.name}",
        rows,
        payload,
        json_out,
        [pred, reference],
        force,
    )


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` commands to the ``evaluate`` group."""
    del app  # the commands belong to the evaluate group, already attached to the app
    evaluate_app.command("denoise")(reads_recordings(denoise))
    evaluate_app.command("segmentation")(reads_recordings(segmentation))
    evaluate_app.command("events")(events)
