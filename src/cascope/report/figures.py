"""The static figures of the reports (matplotlib, PNG): one function per figure.

Each function takes arrays or tables, writes one PNG to the path it is given and returns it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cascope.report.preview import contrast

_DPI = 100


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    out = Path(path)
    fig.savefig(out, dpi=_DPI)
    _pyplot().close(fig)
    return out


def _time_axis(n_frames: int, frame_rate: float | None) -> tuple[float, str]:
    return (float(frame_rate), "s") if frame_rate else (1.0, "frames")


def projections(images: Mapping[str, tuple[NDArray[Any], NDArray[Any]]], path: str | Path) -> Path:
    """Temporal mean (top row) and max (bottom row) projections, one column per movie.

    Parameters
    ----------
    images : mapping of str to (mean, max)
        Projections per movie name (e.g. ``raw``, ``denoised``), in column order.
    path : str or Path
        The PNG to write.

    Returns
    -------
    Path

    Notes
    -----
    Every image of a row shares its display range (percentiles of all of them), so raw and
    denoised are compared at the same contrast.
    """
    plt = _pyplot()
    names = list(images)
    n_y, n_x = next(iter(images.values()))[0].shape
    side = 2.8
    fig, axes = plt.subplots(
        2,
        len(names),
        figsize=(side * len(names) * max(n_x / n_y, 0.6) + 0.9, 2 * side),
        squeeze=False,
        constrained_layout=True,
    )
    for row, kind in enumerate(("mean", "max")):
        lo, hi = contrast(*(images[n][row] for n in names))
        for col, name in enumerate(names):
            ax = axes[row][col]
            im = ax.imshow(images[name][row], cmap="gray", vmin=lo, vmax=hi)
            ax.set_title(f"{kind} projection, {name}", fontsize=10)
            ax.set_axis_off()
        fig.colorbar(im, ax=axes[row].tolist(), shrink=0.8, label="intensity")
    return _save(fig, path)


def event_map(
    background: NDArray[Any],
    events: pd.DataFrame,
    path: str | Path,
    *,
    id_map: NDArray[np.int64] | None = None,
    n_frames: int,
    frame_rate: float | None = None,
) -> Path:
    """Events on the field of view, coloured by when they happen.

    With ``id_map`` (the event id at each pixel, :func:`~cascope.report.preview.event_id_map`)
    each event's footprint is painted in its colour; the centroids are marked in any case.

    Parameters
    ----------
    background : ndarray, (Y, X)
        The image under the events (a temporal mean).
    events : pandas.DataFrame
        Event table with ``id``, ``t``, ``y``, ``x``.
    path : str or Path
        The PNG to write.
    id_map : ndarray of int, (Y, X), optional
        Event id per pixel (0: none).
    n_frames : int
        Length of the recording (the colour scale).
    frame_rate : float, optional
        Frames per second; the colour scale is in seconds when given.

    Returns
    -------
    Path
    """
    plt = _pyplot()
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    scale, unit = _time_axis(n_frames, frame_rate)
    norm = Normalize(0, max(n_frames - 1, 1) / scale)
    cmap = colormaps["turbo"]
    n_y, n_x = background.shape
    fig, ax = plt.subplots(figsize=(5.0 * max(n_x / n_y, 0.6) + 1.2, 5.0), constrained_layout=True)
    lo, hi = contrast(background)
    ax.imshow(background, cmap="gray", vmin=lo, vmax=hi)
    if len(events):
        times = events["t"].to_numpy(np.float64) / scale
        if id_map is not None and "id" in events:
            lut = np.full(int(max(id_map.max(), events["id"].max())) + 1, np.nan)
            lut[events["id"].to_numpy(np.int64)] = times
            t_px = lut[id_map]
            rgba = cmap(norm(np.nan_to_num(t_px)))
            rgba[..., 3] = np.where(np.isfinite(t_px) & (id_map > 0), 0.55, 0.0)
            ax.imshow(rgba, interpolation="nearest")
        ax.scatter(
            events["x"],
            events["y"],
            c=times,
            cmap=cmap,
            norm=norm,
            s=16,
            edgecolors="white",
            linewidths=0.5,
        )
    fig.colorbar(
        plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.8, label=f"event time ({unit})"
    )
    ax.set_title(f"{len(events)} events on the field of view", fontsize=11)
    ax.set_axis_off()
    return _save(fig, path)


def raster_and_traces(
    events: pd.DataFrame,
    path: str | Path,
    *,
    n_frames: int,
    frame_rate: float | None = None,
    traces: Mapping[str, NDArray[np.float64]] | None = None,
    strongest: Sequence[int] = (),
) -> Path:
    """Draw every event over time, and the ΔF/F traces of the strongest events.

    Left: each event as a bar over its frames (rows ordered by position), coloured by peak
    ΔF/F, under a histogram of events in time. Right: the traces.

    Parameters
    ----------
    events : pandas.DataFrame
        Event table (``t``, ``y``, ``x``; ``t_start``/``t_end`` and ``dff_peak`` when present).
    path : str or Path
        The PNG to write.
    n_frames : int
        Length of the recording.
    frame_rate : float, optional
        Frames per second (time axes in seconds when given).
    traces : mapping of str to ndarray, (n, T), optional
        ΔF/F traces per movie (e.g. ``raw``, ``denoised``), one row per event of ``strongest``.
    strongest : sequence of int
        Row positions (in ``events``) of the traced events.

    Returns
    -------
    Path
    """
    plt = _pyplot()
    scale, unit = _time_axis(n_frames, frame_rate)
    has_traces = bool(traces) and len(strongest) > 0
    fig = plt.figure(figsize=(12.5 if has_traces else 7.0, 5.6), constrained_layout=True)
    grid = fig.add_gridspec(2, 2 if has_traces else 1, height_ratios=[1, 3.2])
    hist_ax = fig.add_subplot(grid[0, 0])
    ax = fig.add_subplot(grid[1, 0], sharex=hist_ax)
    t = events["t"].to_numpy(np.float64) if len(events) else np.zeros(0)
    bins = np.linspace(0, n_frames / scale, min(60, max(n_frames // 4, 1)) + 1)
    hist_ax.hist(t / scale, bins=bins, color="#2f6fb0")
    hist_ax.set_ylabel("events")
    hist_ax.tick_params(labelbottom=False)
    if len(events):
        order = np.lexsort((events["x"].to_numpy(), events["y"].to_numpy()))
        start = events.get("t_start", events["t"]).to_numpy(np.float64)[order]
        end = events.get("t_end", events["t"] + 1).to_numpy(np.float64)[order]
        peak = events.get("dff_peak", pd.Series(np.ones(len(events)))).to_numpy(np.float64)[order]
        rows = np.arange(len(events))
        lines = ax.hlines(
            rows,
            start / scale,
            np.maximum(end, start + 1) / scale,
            colors=plt.cm.magma_r(
                (peak - np.nanmin(peak)) / max(np.nanmax(peak) - np.nanmin(peak), 1e-12) * 0.85
                + 0.15
            ),
            linewidth=max(0.6, min(4.0, 300.0 / len(events))),
        )
        del lines
        for rank, pos in enumerate(strongest):
            row = int(np.nonzero(order == pos)[0][0])
            ax.annotate(
                str(rank + 1),
                (end[row] / scale, row),
                xytext=(3, 0),
                textcoords="offset points",
                fontsize=8,
                va="center",
                color="#c53030",
            )
        ax.set_ylim(-1, len(events))
    ax.set_xlim(0, n_frames / scale)
    ax.set_xlabel(f"time ({unit})")
    ax.set_ylabel("event (ordered by y, x)")
    ax.set_title("events over time (colour: peak ΔF/F)", fontsize=10)
    if has_traces and traces is not None:
        tax = fig.add_subplot(grid[:, 1])
        time = np.arange(n_frames) / scale
        names = list(traces)
        colours = {names[0]: "#9aa5b1"} | {n: "#2f6fb0" for n in names[1:]}
        step = 0.0
        for name in names:
            if traces[name].size:
                step = max(step, float(np.nanmax(np.abs(traces[name]))) * 1.1)
        step = step or 1.0
        for rank, pos in enumerate(strongest):
            offset = -rank * step
            for name in names:
                tax.plot(
                    time,
                    traces[name][rank] + offset,
                    color=colours[name],
                    lw=0.9,
                    label=name if rank == 0 else None,
                )
            ev = events.iloc[int(pos)]
            t0 = float(ev.get("t_start", ev["t"])) / scale
            t1 = float(ev.get("t_end", ev["t"] + 1)) / scale
            tax.fill_betweenx(
                [offset - 0.25 * step, offset + 0.65 * step],
                t0,
                t1,
                color="#f6ad55",
                alpha=0.3,
                lw=0,
            )
            tax.text(
                time[-1] if len(time) else 0,
                offset,
                f" {rank + 1}",
                fontsize=8,
                va="center",
                color="#c53030",
            )
        tax.set_yticks([])
        tax.set_xlabel(f"time ({unit})")
        tax.set_title(
            f"ΔF/F of the {len(strongest)} strongest events (shaded: the event)", fontsize=10
        )
        tax.legend(loc="upper right", fontsize=8, frameon=False)
        for side in ("left", "right", "top"):
            tax.spines[side].set_visible(False)
    return _save(fig, path)


def feature_by_condition(
    values: Mapping[str, NDArray[np.float64]],
    path: str | Path,
    *,
    feature: str,
    unit_medians: Mapping[str, NDArray[np.float64]] | None = None,
    title: str = "",
) -> Path:
    """Violin and box plot of one feature per condition, with each recording's median as a dot.

    Parameters
    ----------
    values : mapping of str to ndarray
        Every event's value per condition.
    path : str or Path
        The PNG to write.
    feature : str
        The y-axis label.
    unit_medians : mapping of str to ndarray, optional
        Median per recording (the statistical unit) per condition.
    title : str
        Test, p-value, effect size and n.

    Returns
    -------
    Path
    """
    plt = _pyplot()
    names = [k for k, v in values.items() if len(v)]
    fig, ax = plt.subplots(figsize=(1.9 + 1.3 * max(len(names), 1), 3.5), constrained_layout=True)
    if names:
        data = [values[k] for k in names]
        pos = np.arange(1, len(names) + 1)
        multi = [i for i, d in enumerate(data) if len(d) > 1]
        if multi:
            parts = ax.violinplot(
                [data[i] for i in multi], positions=pos[multi], showextrema=False, widths=0.8
            )
            for body in parts["bodies"]:
                body.set_facecolor("#90cdf4")
                body.set_alpha(0.6)
        ax.boxplot(
            data, positions=pos, widths=0.16, showfliers=False, medianprops={"color": "#1f3a5f"}
        )
        if unit_medians:
            rng = np.random.default_rng(0)
            for i, k in enumerate(names):
                m = np.asarray(unit_medians.get(k, []), np.float64)
                ax.scatter(
                    pos[i] + rng.uniform(-0.22, 0.22, len(m)),
                    m,
                    s=18,
                    color="#c05621",
                    zorder=3,
                    edgecolors="white",
                    linewidths=0.5,
                )
        ax.set_xticks(pos, [str(n) for n in names])
    ax.set_ylabel(feature)
    if title:
        ax.set_title(title, fontsize=8.5)
    return _save(fig, path)


def embedding(clusters: pd.DataFrame, path: str | Path, *, by: str = "condition") -> Path:
    """Draw the clustering's 2-D embedding (``pc1``, ``pc2``) by condition and by cluster.

    Parameters
    ----------
    clusters : pandas.DataFrame
        ``comparison/clusters.csv``: a ``by`` column, ``cluster``, ``pc1``, ``pc2``.
    path : str or Path
        The PNG to write.
    by : str
        The condition column.

    Returns
    -------
    Path
    """
    plt = _pyplot()
    ok = clusters[["pc1", "pc2"]].notna().all(axis=1)
    data = clusters[ok]
    panels = [by] + (["cluster"] if "cluster" in data else [])
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5.2 * len(panels), 4.3), squeeze=False, constrained_layout=True
    )
    for ax, column in zip(axes[0], panels, strict=True):
        groups = sorted(data[column].astype(str).unique()) if column in data else ["all"]
        colours = plt.cm.tab10(np.arange(len(groups)) % 10)
        for g, colour in zip(groups, colours, strict=True):
            sel = data[column].astype(str) == g if column in data else slice(None)
            ax.scatter(
                data.loc[sel, "pc1"],
                data.loc[sel, "pc2"],
                s=9,
                alpha=0.7,
                color=colour,
                label=g,
                edgecolors="none",
            )
        ax.set(xlabel="PC 1", ylabel="PC 2", title=f"events coloured by {column}")
        ax.legend(fontsize=8, markerscale=1.6, frameon=False)
    return _save(fig, path)


def volume_planes(
    volume: NDArray[Any], labels: NDArray[Any], path: str | Path, *, axes: str = "ZYX"
) -> Path:
    """Draw the segmentation over the volume's max projections along Z (Y–X) and Y (Z–X).

    Parameters
    ----------
    volume : ndarray, (Z, Y, X)
        Intensities.
    labels : ndarray of int, (Z, Y, X)
        Instance labels (0: background), drawn as coloured outlines.
    path : str or Path
        The PNG to write.
    axes : str
        Must be ``"ZYX"`` (named so a caller states it).

    Returns
    -------
    Path
    """
    if axes != "ZYX":
        raise ValueError(f"volume_planes takes (Z, Y, X) arrays, got axes {axes!r}")
    plt = _pyplot()
    from skimage.segmentation import find_boundaries

    vol = np.asarray(volume, np.float64)
    lab = np.asarray(labels)
    views = [
        ("Y–X (max over Z)", vol.max(axis=0), lab.max(axis=0)),
        ("Z–X (max over Y)", vol.max(axis=1), lab.max(axis=1)),
    ]
    fig, axs = plt.subplots(
        2,
        1,
        figsize=(7, 7),
        constrained_layout=True,
        gridspec_kw={"height_ratios": [vol.shape[1], max(vol.shape[0], 8)]},
    )
    cmap = plt.cm.tab20
    for ax, (title, img, lab2) in zip(axs, views, strict=True):
        lo, hi = contrast(img)
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, aspect="auto")
        edge = find_boundaries(lab2, mode="inner")
        rgba = cmap((lab2 % 20) / 19.0)
        rgba[..., 3] = np.where(lab2 > 0, 0.25, 0.0)
        rgba[edge, 3] = 0.95
        ax.imshow(rgba, interpolation="nearest", aspect="auto")
        ax.set_title(f"segmentation, {title}", fontsize=10)
        ax.set_axis_off()
    return _save(fig, path)


#: Colours of the event types of paired recordings.
EVENT_TYPE_COLOURS = {"new": "#2f855a", "silenced": "#c53030", "recurrent": "#718096"}


def event_type_maps(
    pairs: Sequence[tuple[str, pd.DataFrame, pd.DataFrame, tuple[int, int]]],
    path: str | Path,
    *,
    max_distance: float = 6.0,
) -> tuple[Path, pd.DataFrame]:
    """Draw where events are new, silenced or recurrent between two recordings of a field.

    Parameters
    ----------
    pairs : sequence of (title, before, after, (Y, X))
        Event tables (``y``, ``x``) of the first and second recording of each field, and the
        field's size.
    path : str or Path
        The PNG to write (one panel per pair, four per row).
    max_distance : float
        Pixels within which an event recurs (:func:`cascope.events.compare.event_types`).

    Returns
    -------
    path : Path
    counts : pandas.DataFrame
        ``pair, new, silenced, recurrent`` per pair.
    """
    from cascope.events.compare import event_types

    plt = _pyplot()
    n_cols = min(4, len(pairs))
    n_rows = -(-len(pairs) // n_cols)
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(3.3 * n_cols, 3.3 * n_rows + 0.4),
        squeeze=False,
        constrained_layout=True,
    )
    rows = []
    for ax, (title, before, after, (n_y, n_x)) in zip(axes.ravel(), pairs, strict=False):
        types_before, types_after = event_types(before, after, max_distance=max_distance)
        shown = [
            ("silenced", before[types_before == "silenced"]),
            ("recurrent", after[types_after == "recurrent"]),
            ("new", after[types_after == "new"]),
        ]
        for kind, table in shown:
            ax.scatter(
                table["x"],
                table["y"],
                s=14,
                color=EVENT_TYPE_COLOURS[kind],
                label=kind,
                edgecolors="none",
                alpha=0.85,
            )
        ax.set(xlim=(0, n_x), ylim=(n_y, 0), aspect="equal", xticks=[], yticks=[])
        ax.set_title(title, fontsize=9)
        rows.append(
            {
                "pair": title,
                "new": int((types_after == "new").sum()),
                "silenced": int((types_before == "silenced").sum()),
                "recurrent": int((types_after == "recurrent").sum()),
            }
        )
    for ax in axes.ravel()[len(pairs) :]:
        ax.set_axis_off()
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, frameon=False)
    return _save(fig, path), pd.DataFrame(rows)
