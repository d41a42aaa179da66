"""Condition comparison: planted effects are found, identical distributions are not."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from cascope.events.compare import compare_conditions, event_types
from cascope.report.comparison import compare_report

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


def _recordings(rng: np.random.Generator, shift: float, per: int = 4) -> pd.DataFrame:
    """Events of ``per`` recordings per condition; recordings differ from each other a lot."""
    rows = []
    for cond, s in (("control", 0.0), ("drug", shift)):
        for r in range(per):
            level = rng.normal(1.0, 0.3)  # recording-to-recording variation
            n = int(rng.integers(40, 80))
            rows.append(
                pd.DataFrame(
                    {
                        "condition": cond,
                        "recording": f"{cond}-{r}",
                        "subject": f"cell{r}",
                        "dff_peak": rng.normal(level + s, 0.1, n),
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def test_recording_as_unit_is_not_fooled_by_pooled_events() -> None:
    # no effect between conditions, strong recording effects: pooled events look "significant"
    # in many seeds; per-recording summaries must not (4 vs 4 units)
    false_pooled, false_unit = 0, 0
    for seed in range(8):
        table = _recordings(np.random.default_rng(seed), shift=0.0)
        pooled = compare_conditions(table, features=["dff_peak"])[0]
        unit = compare_conditions(table, features=["dff_peak"], unit="recording")[0]
        false_pooled += bool(pooled.loc[0, "significant"])
        false_unit += bool(unit.loc[0, "significant"])
        assert unit.loc[0, "unit"] == "recording" and pooled.loc[0, "unit"] == "event"
        assert unit.loc[0, "n_control"] == 4 and unit.loc[0, "n_drug"] == 4
    assert false_pooled >= 5 and false_unit <= 1


def test_recording_unit_finds_a_real_effect_and_reports_n(tmp_path) -> None:
    table = _recordings(np.random.default_rng(1), shift=2.0)
    summary = compare_report(table, tmp_path / "rep", unit="recording", formats=("png",))
    assert summary["unit"] == "recording" and summary["n"] == {"control": 4, "drug": 4}
    assert "dff_peak" in summary["significant"]
    units = pd.read_csv(tmp_path / "rep" / "units.csv")
    assert len(units) == 8 and set(units.columns) >= {"recording", "condition", "events"}
    stats = pd.read_csv(tmp_path / "rep" / "statistics.csv")
    assert set(stats["unit"]) == {"recording"}


def test_recording_unit_paired_by_subject() -> None:
    rng = np.random.default_rng(5)
    rows = []
    for cell in range(8):
        base = rng.normal(1.0, 0.4)
        for cond, s in (("before", 0.0), ("after", 0.3)):
            rows.append(
                pd.DataFrame(
                    {
                        "condition": cond,
                        "recording": f"{cell}-{cond}",
                        "subject": f"cell{cell}",
                        "dff_peak": rng.normal(base + s, 0.05, 30),
                    }
                )
            )
    table = pd.concat(rows, ignore_index=True)
    res = compare_conditions(table, features=["dff_peak"], unit="recording", paired_by="subject")[0]
    assert res.loc[0, "test"].startswith("wilcoxon") and res.loc[0, "significant"]
    assert res.loc[0, "unit"] == "subject" and res.loc[0, "n_before"] == 8


def test_a_recording_in_two_conditions_is_refused() -> None:
    import pytest

    from cascope.errors import InputError

    table = pd.DataFrame({"condition": ["a", "b"], "recording": ["r", "r"], "dff_peak": [1.0, 2.0]})
    with pytest.raises(InputError, match="more than one 'condition'"):
        compare_conditions(table, features=["dff_peak"], unit="recording")


def test_compare_cli_same_file_names_in_two_folders(tmp_path) -> None:
    """The README example: results_a/events.csv results_b/events.csv are two conditions."""
    from typer.testing import CliRunner

    from cascope.cli import app

    rng = np.random.default_rng(2)
    for name, shift in (("results_a", 0.0), ("results_b", 0.4)):
        (tmp_path / name).mkdir()
        pd.DataFrame(
            {"dff_peak": rng.normal(1.0 + shift, 0.2, 80), "area": rng.lognormal(3, 0.5, 80)}
        ).to_csv(tmp_path / name / "events.csv", index=False)
    args = [str(tmp_path / "results_a" / "events.csv"), str(tmp_path / "results_b" / "events.csv")]
    res = CliRunner().invoke(
        app, ["compare", *args, "--by", "condition", "-o", str(tmp_path / "r")]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["conditions"] == ["results_a", "results_b"]
    assert summary["unit"] == "event" and summary["n"] == {"results_a": 80, "results_b": 80}
    assert summary["significant"] == ["dff_peak"]
    assert "unit: event" in res.output
