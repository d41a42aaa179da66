"""Condition comparison: planted effects are found, identical distributions are not."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from cascope.events.compare import compare_conditions, compare_report, event_types

ALPHA = 0.05


def _table(rng: np.random.Generator, shift: float, n: int = 200) -> pd.DataFrame:
    rows = []
    for cond, s in (("before", 0.0), ("after", shift)):
        rows.append(
            pd.DataFrame(
                {
                    "condition": cond,
                    "dff_peak": rng.normal(1.0 + s, 0.2, n),  # normal: t-test path
                    "area": rng.lognormal(3.0, 0.5, n),  # skewed: Mann-Whitney path
                    "duration_frames": rng.normal(6.0, 1.0, n),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_planted_effect_is_found() -> None:
    table = _table(np.random.default_rng(7), shift=0.3)
    res = compare_conditions(table, alpha=ALPHA)[0].set_index("feature")
    assert res.loc["dff_peak", "significant"]
    assert res.loc["dff_peak", "test"] == "welch t-test"
    # groups in sorted order (after, before): d = before - after, about -0.3 / 0.2
    assert -2.0 < res.loc["dff_peak", "effect_size"] < -1.0
    assert not res.loc["area", "significant"] and not res.loc["duration_frames", "significant"]
    assert res.loc["area", "test"] == "mann-whitney u"


def test_identical_distributions_are_not_different() -> None:
    res, _ = compare_conditions(_table(np.random.default_rng(11), shift=0.0), alpha=ALPHA)
    assert not res["significant"].any()


def test_three_conditions_kruskal_dunn_and_paired() -> None:
    rng = np.random.default_rng(3)
    table = pd.DataFrame(
        {
            "condition": np.repeat(["a", "b", "c"], 150),
            "area": np.concatenate(
                [
                    rng.lognormal(3.0, 0.5, 150),
                    rng.lognormal(3.0, 0.5, 150),
                    rng.lognormal(3.6, 0.5, 150),
                ]
            ),
        }
    )
    res, post = compare_conditions(table, features=["area"])
    assert res.loc[0, "test"] == "kruskal-wallis" and res.loc[0, "significant"]
    sig = {(r.a, r.b) for r in post.itertuples() if r.p < ALPHA}
    assert sig == {("a", "c"), ("b", "c")}
    cells = np.repeat(np.arange(20), 10)
    paired = pd.concat(
        [
            pd.DataFrame(
                {"cell": cells, "condition": "before", "dff_peak": rng.normal(1, 0.1, 200)}
            ),
            pd.DataFrame(
                {
                    "cell": cells,
                    "condition": "after",
                    "dff_peak": rng.normal(1, 0.1, 200) + 0.1 + 0.02 * cells % 3,
                }
            ),
        ]
    )
    res, _ = compare_conditions(paired, features=["dff_peak"], paired_by="cell")
    assert res.loc[0, "test"].startswith("wilcoxon") and res.loc[0, "significant"]


def test_event_types() -> None:
    before = pd.DataFrame({"y": [10.0, 40.0], "x": [10.0, 40.0]})
    after = pd.DataFrame({"y": [12.0, 80.0], "x": [13.0, 5.0]})
    ta, tb = event_types(before, after)
    assert list(ta) == ["recurrent", "silenced"] and list(tb) == ["recurrent", "new"]


def test_report_writes_tables_and_figures(tmp_path) -> None:
    table = _table(np.random.default_rng(7), shift=0.3, n=60)
    summary = compare_report(table, tmp_path / "rep", formats=("png",))
    assert summary["significant"] == ["dff_peak"]
    for name in (
        "statistics.csv",
        "posthoc.csv",
        "clusters.csv",
        "feature_dff_peak.png",
        "clusters.png",
        "summary.json",
    ):
        assert (tmp_path / "rep" / name).is_file()
    assert json.loads((tmp_path / "rep" / "summary.json").read_text())["conditions"] == [
        "after",
        "before",
    ]
