"""The report of a condition comparison: statistics and cluster tables, figures, a summary.

:func:`compare_report` runs :func:`cascope.events.compare.compare_conditions` (and the
clustering of :func:`cascope.events.compare.cluster_events`) and writes what they found into a
folder: the tables as CSV, one violin/box figure per feature, the clustering curves and
embedding, and ``summary.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cascope.errors import InputError
from cascope.events.compare import (
    Correction,
    cluster_events,
    compare_conditions,
    feature_values,
    unit_summaries,
)

log = logging.getLogger(__name__)


def _save(fig: Any, path: Path, formats: Sequence[str]) -> list[Path]:
    out = []
    for fmt in formats:
        p = path.with_suffix(f".{fmt}")
        fig.savefig(p, dpi=120, bbox_inches="tight")
        out.append(p)
    return out


def plot_features(
    table: pd.DataFrame,
    features: Sequence[str],
    out_dir: Path,
    *,
    by: str = "condition",
    formats: Sequence[str] = ("png", "svg"),
) -> list[Path]:
    """Violin + box plot per feature and condition; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for f in features:
        groups = feature_values(table, by, f)
        names = [k for k, v in groups.items() if len(v) > 1]
        if not names:
            continue
        fig, ax = plt.subplots(figsize=(1.6 + 1.2 * len(names), 3.2))
        data = [groups[k] for k in names]
        ax.violinplot(data, showextrema=False)
        ax.boxplot(data, widths=0.15, showfliers=False)
        ax.set_xticks(range(1, len(names) + 1), [str(n) for n in names])
        ax.set_ylabel(f)
        written += _save(fig, out_dir / f"feature_{f}", formats)
        plt.close(fig)
    return written


def plot_clusters(
    scores: pd.DataFrame,
    embedding: NDArray[np.float64],
    labels: NDArray[np.int64],
    out_dir: Path,
    *,
    formats: Sequence[str] = ("png", "svg"),
) -> list[Path]:
    """Elbow (inertia) and silhouette curves, and the PCA embedding coloured by cluster."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(11, 3.2))
    a1.plot(scores["k"], scores["inertia"], "o-")
    a1.set(xlabel="k", ylabel="inertia", title="elbow")
    a2.plot(scores["k"], scores["silhouette"], "o-")
    a2.set(xlabel="k", ylabel="silhouette", title="silhouette")
    ok = labels >= 0
    a3.scatter(embedding[ok, 0], embedding[ok, 1], c=labels[ok], s=8, cmap="tab10")
    a3.set(xlabel="PC 1", ylabel="PC 2", title="clusters")
    written = _save(fig, out_dir / "clusters", formats)
    plt.close(fig)
    return written


def compare_report(
    table: pd.DataFrame,
    out_dir: str | Path,
    *,
    by: str = "condition",
    features: Sequence[str] | None = None,
    alpha: float = 0.05,
    correction: Correction = "holm",
    paired_by: str | None = None,
    unit: str | None = None,
    cluster: bool = True,
    formats: Sequence[str] = ("png", "svg"),
) -> dict[str, Any]:
    """Run :func:`compare_conditions` (and clustering) and write tables and figures to a folder.

    Writes ``statistics.csv``, ``posthoc.csv``, ``clusters.csv`` (cluster and embedding per
    event), ``cluster_scores.csv``, ``summary.json`` and the figures. With ``unit`` the feature
    figures show one value per unit, ``units.csv`` holds the per-unit summaries, and
    ``summary.json`` says what the unit was and ``n`` per condition in units.

    Returns
    -------
    dict
        The summary written to ``summary.json``.
    """
    from cascope import _json as strict_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results, posthoc = compare_conditions(
        table,
        by=by,
        features=features,
        alpha=alpha,
        correction=correction,
        paired_by=paired_by,
        unit=unit,
    )
    results.to_csv(out / "statistics.csv", index=False)
    posthoc.to_csv(out / "posthoc.csv", index=False)
    feats = list(results["feature"])
    shown = table
    if unit is not None:
        shown = unit_summaries(table, unit=unit, by=by, features=features, paired_by=paired_by)
        shown.to_csv(out / "units.csv", index=False)
    figures = plot_features(shown, feats, out, by=by, formats=formats)
    counted = str(results["unit"].iloc[0])
    if counted == "event":
        n = table.groupby(by).size()
    elif unit is not None and paired_by is None:
        n = shown.groupby(by)[unit].nunique()
    else:
        n = (shown if unit is not None else table).groupby(by)[counted].nunique()
    summary: dict[str, Any] = {
        "by": by,
        "conditions": [str(c) for c in sorted(table[by].unique())],
        "unit": counted,
        "n": {str(k): int(v) for k, v in n.items()},
        "paired_by": paired_by,
        "alpha": alpha,
        "correction": correction,
        "significant": [str(f) for f in results.loc[results["significant"], "feature"]],
    }
    measured = [f for f in feats if f in table.columns]
    if cluster and len(measured) < 2:
        log.info("no clustering: it needs two features or more")
    elif cluster:
        try:
            labels, scores, emb = cluster_events(table, features=measured)
        except InputError as err:
            log.warning("no clustering: %s", err)
        else:
            pd.DataFrame(
                {by: table[by].to_numpy(), "cluster": labels, "pc1": emb[:, 0], "pc2": emb[:, 1]}
            ).to_csv(out / "clusters.csv", index=False)
            scores.to_csv(out / "cluster_scores.csv", index=False)
            figures += plot_clusters(scores, emb, labels, out, formats=formats)
            summary["best_k"] = int(labels.max() + 1)
    summary["figures"] = [p.name for p in figures]
    (out / "summary.json").write_text(strict_json.dumps(summary, indent=2))
    return summary
