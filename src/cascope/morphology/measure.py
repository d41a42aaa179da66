"""Per-structure measurements (shape + FRET ratio) as one table (Parquet/CSV) and a figure."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from cascope.errors import InputError
from cascope.io import atomic_output, check_table_path
from cascope.morphology.fret import fret_ratios
from cascope.morphology.skeleton import skeleton_measurements

log = logging.getLogger(__name__)


def measure_structures(
    labels: ArrayLike,
    *,
    donor: ArrayLike | None = None,
    acceptor: ArrayLike | None = None,
    voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
    background: Sequence[float] | None = None,
) -> tuple[pd.DataFrame, dict[int, NDArray[np.float64]]]:
    """Shape measurements of every instance and, with two channels, its FRET ratio.

    Parameters
    ----------
    labels : array-like of int, (Z, Y, X)
        Instance labels.
    donor, acceptor : array-like, optional
        The FRET channels (both or neither).
    voxel_size : sequence of 3 float
        Voxel size (z, y, x) for lengths and volumes.
    background : (float, float), optional
        Donor and acceptor background (estimated when omitted).

    Returns
    -------
    table : DataFrame
        See :func:`~cascope.morphology.skeleton_measurements` and
        :func:`~cascope.morphology.fret_ratios`.
    distributions : dict of int to ndarray
        Per-voxel ratios per label (empty without FRET channels).
    """
    if (donor is None) != (acceptor is None):
        raise InputError("give both FRET channels (donor and acceptor) or neither")
    table = skeleton_measurements(labels, voxel_size=voxel_size)
    dists: dict[int, NDArray[np.float64]] = {}
    if donor is not None and acceptor is not None:
        fret, dists = fret_ratios(donor, acceptor, labels, background=background)
        table = table.merge(fret, on="label", how="left")
    return table, dists


#: Columns of :func:`measure_structures` that carry a length unit, and the power of it.
UNIT_COLUMNS = {"length": 1, "mean_diameter": 1, "volume": 3}


def with_units(table: pd.DataFrame, *, micrometres: bool) -> pd.DataFrame:
    """Name the unit in every column that has one: ``length_um`` or ``length_voxels``.

    Parameters
    ----------
    table : DataFrame
        A table of :func:`measure_structures`.
    micrometres : bool
        Whether its lengths are in µm (the voxel size was known) or in voxels.

    Returns
    -------
    DataFrame
        The same table with ``length``, ``mean_diameter`` and ``volume`` renamed to
        ``*_um`` / ``volume_um3`` or ``*_voxels``.

    Examples
    --------
    >>> t = pd.DataFrame({"label": [1], "length": [2.0], "volume": [8.0]})
    >>> list(with_units(t, micrometres=True).columns)
    ['label', 'length_um', 'volume_um3']
    """
    names = {}
    for col, power in UNIT_COLUMNS.items():
        if micrometres:
            names[col] = f"{col}_um" + (str(power) if power > 1 else "")
        else:
            names[col] = f"{col}_voxels"
    return table.rename(columns=names)


def write_table(table: pd.DataFrame, path: str | Path, *, force: bool = False) -> Path:
    """Write a table as Parquet (``.parquet``) or CSV (``.csv``), atomically."""
    out = check_table_path(path)
    suffix = out.suffix.lower()
    with atomic_output(out, force=force) as tmp:
        if suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)
    return out


def plot_measurements(
    table: pd.DataFrame,
    path: str | Path,
    *,
    distributions: dict[int, NDArray[np.float64]] | None = None,
    force: bool = False,
) -> Path:
    """Figure: length and diameter histograms, and FRET ratio distributions per structure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 3 if distributions else 2
    fig, axes = plt.subplots(1, panels, figsize=(4 * panels, 3.2), constrained_layout=True)
    axes[0].hist(table["length"].dropna(), bins=20, color="tab:blue")
    axes[0].set(xlabel="length", ylabel="structures", title="Skeleton length")
    axes[1].hist(table["mean_diameter"].dropna(), bins=20, color="tab:green")
    axes[1].set(xlabel="mean diameter", title="Diameter")
    if distributions:
        labels = sorted(distributions)[:30]
        data = [distributions[k] for k in labels]
        axes[2].boxplot(data, showfliers=False)
        axes[2].set_xticks(range(1, len(labels) + 1), [str(k) for k in labels], fontsize=6)
        axes[2].set(xlabel="structure", ylabel="acceptor / donor", title="FRET ratio")
    with atomic_output(path, force=force) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return Path(path)
