"""Comparison of event features between conditions: tests, effect sizes, clusters, event types.

The figures and report files of a comparison are written by
:func:`cascope.report.comparison.compare_report`.

Per feature, normality of every group is checked by Shapiro–Wilk; normal groups are compared by
one-way ANOVA (Welch's t-test for two groups) with pairwise t-tests post hoc, others by
Kruskal–Wallis (Mann–Whitney U for two) with Dunn's test post hoc. The p-values of all features
are corrected together for multiple comparisons (Holm by default, statsmodels).

Events of one recording are not independent of each other: with ``unit="recording"`` (any column
naming the recording, cell or animal) each feature is first summarised per unit (its median
over the unit's events, plus the unit's event count ``events``), and the tests compare those
per-unit summaries, so ``n`` is the number of units. With ``paired_by`` as well (the subject
measured in every condition), the per-unit summaries are paired by subject.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cascope.errors import InputError

log = logging.getLogger(__name__)

#: Features compared when none are named (those present in the table are used).
DEFAULT_FEATURES = (
    "area",
    "duration_frames",
    "dff_peak",
    "dff_mean",
    "rise_time_frames",
    "decay_tau_frames",
    "profile_integral",
    "major_axis_length",
    "minor_axis_length",
    "solidity",
    "spatial_aspect",
)

Correction = Literal["holm", "bonferroni", "fdr_bh", "none"]


def _cohen_d(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    sa, sb = a.var(ddof=1), b.var(ddof=1)
    pooled = np.sqrt(((len(a) - 1) * sa + (len(b) - 1) * sb) / max(len(a) + len(b) - 2, 1))
    return float((b.mean() - a.mean()) / pooled) if pooled > 0 else 0.0


def feature_values(table: pd.DataFrame, by: str, feature: str) -> dict[Any, NDArray[np.float64]]:
    """Finite values of one feature per group of ``by`` (groups in sorted order).

    Parameters
    ----------
    table : pandas.DataFrame
        Events with a ``by`` column and the feature (non-numeric values count as missing).
    by : str
        Grouping column.
    feature : str
        Column read.

    Returns
    -------
    dict
        Group name to the group's finite values (float64).
    """
    out = {}
    for name, g in table.groupby(by, sort=True):
        v = pd.to_numeric(g[feature], errors="coerce").to_numpy(np.float64)
        out[name] = v[np.isfinite(v)]
    return out


def compare_feature(
    table: pd.DataFrame, feature: str, *, by: str = "condition", alpha: float = 0.05
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Test whether one feature differs between the conditions of an event table.

    Parameters
    ----------
    table : pandas.DataFrame
        Events with a ``by`` column and the feature.
    feature : str
        Column compared.
    by : str
        Grouping column.
    alpha : float
        Level of the Shapiro normality check.

    Returns
    -------
    summary : dict
        ``feature, test, statistic, p, effect_size, effect_measure, normal, n_<group>,
        median_<group>``.
        With two groups the effect size is signed: second minus first condition in sorted
        order (Cohen's d; rank-biserial correlation for Mann–Whitney).
    posthoc : pandas.DataFrame
        Pairwise comparisons ``feature, a, b, test, p`` (Holm-corrected within the feature).
    """
    import scikit_posthocs as sp
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    groups = {k: v for k, v in feature_values(table, by, feature).items() if len(v) >= 3}
    if len(groups) < 2:
        raise InputError(f"feature {feature!r}: fewer than two conditions with >= 3 values")
    names = list(groups)
    vals = [groups[k] for k in names]
    normal = all(stats.shapiro(v[:5000]).pvalue > alpha if np.ptp(v) > 0 else False for v in vals)
    summary: dict[str, Any] = {"feature": feature, "normal": normal}
    for k in names:
        summary[f"n_{k}"] = len(groups[k])
        summary[f"median_{k}"] = float(np.median(groups[k]))
    pairs = list(itertools.combinations(range(len(names)), 2))
    if normal:
        if len(vals) == 2:
            res = stats.ttest_ind(vals[0], vals[1], equal_var=False)
            test = "welch t-test"
        else:
            res = stats.f_oneway(*vals)
            test = "anova"
        stat, p = float(res.statistic), float(res.pvalue)
        if len(vals) == 2:
            effect, measure = _cohen_d(vals[0], vals[1]), "cohen_d"
        else:
            allv = np.concatenate(vals)
            ss_b = sum(len(v) * (v.mean() - allv.mean()) ** 2 for v in vals)
            ss_t = ((allv - allv.mean()) ** 2).sum()
            effect, measure = float(ss_b / ss_t) if ss_t > 0 else 0.0, "eta_squared"
        raw_p = [float(stats.ttest_ind(vals[i], vals[j], equal_var=False).pvalue) for i, j in pairs]
        post_test = "welch t-test"
    else:
        if len(vals) == 2:
            res = stats.mannwhitneyu(vals[0], vals[1], alternative="two-sided")
            test = "mann-whitney u"
            u = float(res.statistic)
            effect, measure = 1.0 - 2.0 * u / (len(vals[0]) * len(vals[1])), "rank_biserial"
        else:
            res = stats.kruskal(*vals)
            test = "kruskal-wallis"
            n = sum(len(v) for v in vals)
            effect, measure = float(res.statistic) / (n - 1), "epsilon_squared"
        stat, p = float(res.statistic), float(res.pvalue)
        long = pd.DataFrame(
            {
                "v": np.concatenate(vals),
                "g": np.repeat(np.arange(len(vals)), [len(v) for v in vals]),
            }
        )
        dunn = sp.posthoc_dunn(long, val_col="v", group_col="g", p_adjust=None)
        raw_p = [float(dunn.loc[i, j]) for i, j in pairs]
        post_test = "dunn"
    summary.update(
        {"test": test, "statistic": stat, "p": p, "effect_size": effect, "effect_measure": measure}
    )
    adj = multipletests(raw_p, method="holm")[1] if raw_p else []
    posthoc = pd.DataFrame(
        [
            {"feature": feature, "a": names[i], "b": names[j], "test": post_test, "p": float(q)}
            for (i, j), q in zip(pairs, adj, strict=True)
        ]
    )
    return summary, posthoc


#: Name of the per-unit event count in unit summaries.
EVENT_COUNT = "events"


def unit_summaries(
    table: pd.DataFrame,
    *,
    unit: str,
    by: str = "condition",
    features: Sequence[str] | None = None,
    paired_by: str | None = None,
) -> pd.DataFrame:
    """Summarise an event table per statistical unit: feature medians and the event count.

    Parameters
    ----------
    table : pandas.DataFrame
        Events with ``unit`` and ``by`` columns (and ``paired_by`` when given).
    unit : str
        Column naming the unit (``recording``, cell, animal).
    by : str
        Condition column; each unit must belong to one condition.
    features : sequence of str, optional
        Features summarised (default: :data:`DEFAULT_FEATURES` present in the table).
    paired_by : str, optional
        Column kept beside each unit (the subject), constant within a unit.

    Returns
    -------
    pandas.DataFrame
        One row per unit: ``unit``, ``by`` (and ``paired_by``), the median of each feature and
        :data:`EVENT_COUNT`.

    Examples
    --------
    >>> t = pd.DataFrame({"recording": list("aabb"), "condition": list("xxyy"),
    ...                   "area": [1.0, 3.0, 5.0, 7.0]})
    >>> unit_summaries(t, unit="recording", features=["area"])["area"].tolist()
    [2.0, 6.0]
    """
    for col in (unit, by, paired_by):
        if col is not None and col not in table.columns:
            raise InputError(
                f"the event table has no {col!r} column (columns: {list(table.columns)})"
            )
    keys = [unit, by] + ([paired_by] if paired_by not in (None, unit, by) else [])
    feats = [f for f in (features or DEFAULT_FEATURES) if f in table.columns]
    per_unit = table.groupby(unit, sort=True)
    mixed = per_unit[by].nunique(dropna=False)
    if (mixed > 1).any():
        bad = [str(u) for u in mixed.index[mixed > 1][:3]]
        raise InputError(
            f"unit {unit!r}: {', '.join(bad)} appear in more than one {by!r}; a unit must "
            "belong to one condition"
        )
    values = table[feats].apply(pd.to_numeric, errors="coerce")
    summary = values.groupby([table[k] for k in keys], sort=True).median()
    summary[EVENT_COUNT] = table.groupby(keys, sort=True).size().astype(np.float64)
    return summary.reset_index()


def compare_conditions(
    table: pd.DataFrame,
    *,
    by: str = "condition",
    features: Sequence[str] | None = None,
    alpha: float = 0.05,
    correction: Correction = "holm",
    paired_by: str | None = None,
    unit: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare every feature between conditions, with multiple-comparison correction.

    Parameters
    ----------
    table : pandas.DataFrame
        Events from all conditions, with a ``by`` column.
    by : str
        Condition column.
    features : sequence of str, optional
        Features to test (default: :data:`DEFAULT_FEATURES` present in the table).
    alpha : float
        Significance level (after correction) and the Shapiro level.
    correction : {"holm", "bonferroni", "fdr_bh", "none"}
        Correction across features.
    paired_by : str, optional
        Column naming the unit measured in every condition (cell, field). With exactly two
        conditions, the per-unit medians are compared by the paired Wilcoxon signed-rank test
        instead of the unpaired tests.
    unit : str, optional
        Column naming the statistical unit (``recording``). The tests then compare per-unit
        summaries (:func:`unit_summaries`, which adds the event count ``events``), never events
        pooled as if independent; ``n_<condition>`` counts units. None: every event is a unit.

    Returns
    -------
    results : pandas.DataFrame
        One row per feature: test, statistic, ``p``, ``p_adjusted``, ``significant``, effect size,
        and ``unit`` (what ``n`` counts: ``event``, the ``unit`` column or ``paired_by``).
    posthoc : pandas.DataFrame
        Pairwise comparisons.
    """
    from statsmodels.stats.multitest import multipletests

    if by not in table.columns:
        raise InputError(f"the event table has no {by!r} column (columns: {list(table.columns)})")
    feats = [f for f in (features or DEFAULT_FEATURES) if f in table.columns]
    if not feats:
        raise InputError("none of the requested features is in the table")
    counted = "event" if paired_by is None and unit is None else (paired_by or unit)
    if unit is not None:
        table = unit_summaries(table, unit=unit, by=by, features=feats, paired_by=paired_by)
        feats = [*feats, EVENT_COUNT] if features is None else feats
    rows, posts = [], []
    for f in feats:
        if paired_by is not None:
            rows.append(_paired(table, f, by=by, unit=paired_by))
            continue
        try:
            s, ph = compare_feature(table, f, by=by, alpha=alpha)
        except InputError as err:
            log.warning("%s", err)
            continue
        rows.append(s)
        posts.append(ph)
    results = pd.DataFrame(rows)
    if results.empty:
        what = "events" if unit is None else f"{unit}s"
        raise InputError(f"no feature could be compared (too few {what} per condition)")
    results["unit"] = counted
    p = results["p"].to_numpy(np.float64)
    ok = np.isfinite(p)
    adj = np.full_like(p, np.nan)
    if correction == "none":
        adj[ok] = p[ok]
    elif ok.any():
        adj[ok] = multipletests(p[ok], method=correction)[1]
    results["p_adjusted"] = adj
    results["significant"] = adj < alpha
    results["alpha"] = alpha
    results["correction"] = correction
    return results, (pd.concat(posts, ignore_index=True) if posts else pd.DataFrame())


def _paired(table: pd.DataFrame, feature: str, *, by: str, unit: str) -> dict[str, Any]:
    from scipy import stats

    conds = sorted(table[by].unique())
    if len(conds) != 2:
        raise InputError(f"paired comparison needs exactly two conditions, got {conds}")
    med = table.groupby([unit, by])[feature].median().unstack(by).dropna()
    a, b = med[conds[0]].to_numpy(), med[conds[1]].to_numpy()
    res = stats.wilcoxon(a, b)
    n = len(a)
    d = b - a
    # matched-pairs rank-biserial correlation
    ranks = stats.rankdata(np.abs(d[d != 0]))
    pos, neg = ranks[d[d != 0] > 0].sum(), ranks[d[d != 0] < 0].sum()
    rbc = float((pos - neg) / (pos + neg)) if pos + neg > 0 else 0.0
    return {
        "feature": feature,
        "test": "wilcoxon signed-rank (paired)",
        "statistic": float(res.statistic),
        "p": float(res.pvalue),
        "effect_size": rbc,
        "effect_measure": "rank_biserial_paired",
        "normal": False,
        f"n_{conds[0]}": n,
        f"n_{conds[1]}": n,
        f"median_{conds[0]}": float(np.median(a)),
        f"median_{conds[1]}": float(np.median(b)),
    }


# ---------------------------------------------------------------- clustering
def cluster_events(
    table: pd.DataFrame,
    *,
    features: Sequence[str] | None = None,
    k_range: Sequence[int] = range(2, 9),
    seed: int = 0,
) -> tuple[NDArray[np.int64], pd.DataFrame, NDArray[np.float64]]:
    """KMeans on standardised features for several ``k``; the ``k`` with the best silhouette.

    Returns
    -------
    labels : ndarray of int, (N,)
        Cluster of each event (rows with missing features get -1).
    scores : pandas.DataFrame
        ``k, inertia, silhouette`` per candidate (elbow and silhouette curves).
    embedding : ndarray, (N, 2)
        First two principal components of the standardised features (NaN rows: NaN).
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    feats = [f for f in (features or DEFAULT_FEATURES) if f in table.columns]
    x = table[feats].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    ok = np.isfinite(x).all(axis=1)
    z = StandardScaler().fit_transform(x[ok])
    ks = [k for k in k_range if 2 <= k < ok.sum()]
    if not ks:
        raise InputError("too few complete events to cluster")
    rows, fits = [], {}
    for k in ks:
        km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(z)
        fits[k] = km.labels_
        rows.append(
            {
                "k": k,
                "inertia": float(km.inertia_),
                "silhouette": float(silhouette_score(z, km.labels_)),
            }
        )
    scores = pd.DataFrame(rows)
    best = int(scores["k"].iloc[int(np.argmax(scores["silhouette"].to_numpy()))])
    labels = np.full(len(table), -1, np.int64)
    labels[ok] = fits[best]
    emb = np.full((len(table), 2), np.nan)
    emb[ok] = PCA(n_components=2, random_state=seed).fit_transform(z)
    return labels, scores, emb


# ---------------------------------------------------------------- event types
def event_types(
    before: pd.DataFrame, after: pd.DataFrame, *, max_distance: float = 6.0
) -> tuple[pd.Series, pd.Series]:
    """Classify events of two recordings of one field as new, silenced or recurrent.

    A site is where events occur in the plane. An event of ``after`` within ``max_distance``
    pixels (y, x) of any event of ``before`` is ``recurrent``, otherwise ``new``; an event of
    ``before`` with no event of ``after`` within that distance is ``silenced`` (else
    ``recurrent``).

    Returns
    -------
    types_before, types_after : pandas.Series of str
        Indexed like the input tables.
    """
    from scipy.spatial import cKDTree

    a = before[["y", "x"]].to_numpy(np.float64)
    b = after[["y", "x"]].to_numpy(np.float64)

    def near(src: NDArray[np.float64], ref: NDArray[np.float64]) -> NDArray[np.bool_]:
        if len(ref) == 0 or len(src) == 0:
            return np.zeros(len(src), bool)
        d, _ = cKDTree(ref).query(src, k=1)
        return np.asarray(d < max_distance)

    ta = np.where(near(a, b), "recurrent", "silenced")
    tb = np.where(near(b, a), "recurrent", "new")
    return pd.Series(ta, index=before.index), pd.Series(tb, index=after.index)
