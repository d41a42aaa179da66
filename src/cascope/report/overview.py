"""A one-page picture of a pipeline run: the field of view, where events are, when they happen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cascope.report.preview import contrast


def events_overview(
    mean_raw: NDArray[Any],
    events: pd.DataFrame,
    path: str | Path,
    *,
    mean_denoised: NDArray[Any] | None = None,
    n_frames: int,
    frame_rate: float | None = None,
    title: str = "",
) -> Path:
    """Save a PNG: temporal mean image(s) with the event centroids, and events over time.

    Parameters
    ----------
    mean_raw : ndarray, (Y, X)
        Temporal mean of the recording.
    events : pandas.DataFrame
        Event table with centroid columns ``t``, ``y``, ``x`` (frames, pixels).
    path : str or Path
        The PNG to write (the caller decides where; it is written directly).
    mean_denoised : ndarray, (Y, X), optional
        Temporal mean of the denoised movie, shown beside the raw one.
    n_frames : int
        Length of the recording (the time axis of the histogram).
    frame_rate : float, optional
        Frames per second; the time axis is in seconds when given.
    title : str
        Figure title.

    Returns
    -------
    Path
        The written file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    images = [("temporal mean (raw)", mean_raw)]
    if mean_denoised is not None:
        images.append(("temporal mean (denoised)", mean_denoised))
    fig, axes = plt.subplots(
        1, len(images) + 1, figsize=(4.2 * (len(images) + 1), 4.2), constrained_layout=True
    )
    for ax, (name, img) in zip(axes, images, strict=False):
        lo, hi = contrast(img, low=1.0, high=99.5)
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi)
        if len(events):
            sc = ax.scatter(
                events["x"],
                events["y"],
                c=events["t"],
                s=14,
                cmap="viridis",
                vmin=0,
                vmax=max(n_frames - 1, 1),
                edgecolors="none",
            )
        ax.set_title(name)
        ax.set_axis_off()
    if len(events):
        fig.colorbar(sc, ax=axes[len(images) - 1], shrink=0.7, label="event frame")
    ax = axes[-1]
    scale = frame_rate if frame_rate else 1.0
    unit = "s" if frame_rate else "frames"
    bins = np.linspace(0, n_frames / scale, min(50, max(n_frames // 4, 1)) + 1)
    ax.hist(
        np.asarray(events["t"], dtype=float) / scale if len(events) else [],
        bins=bins,
        color="tab:orange",
    )
    ax.set_xlabel(f"time ({unit})")
    ax.set_ylabel("events")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{len(events)} events")
    if title:
        fig.suptitle(title)
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
